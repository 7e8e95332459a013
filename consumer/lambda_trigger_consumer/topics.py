"""Start-up checks on Kafka: the MCL topic must exist; our own topics are created if missing.

Production clusters (MSK, Confluent Cloud, most self-run ones) turn broker auto-creation off,
so the consumer creates what it owns itself, with the AdminClient:
- the dead-letter topic (plain retention);
- the run ledger (`cleanup.policy=compact`: only unfinished runs stay, see ledger.py).

Replication is `min(3, number of brokers)` unless LAMBDA_TRIGGER_TOPIC_REPLICATION says
otherwise: datahub-helm's prerequisites run one broker, production clusters three or more. A
setting the cluster cannot meet stops the start with one line naming the setting and the count.
With LAMBDA_TRIGGER_CREATE_TOPICS=false nothing is created (no CreateTopic right needed) and a
missing topic stops the start.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

log = logging.getLogger(__name__)

# Compaction settings for the ledger: segments roll hourly so tombstoned runs are cleaned
# within about a day, and tombstones are kept a day so a consumer that was away still sees them.
LEDGER_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(3600 * 1000),
    "delete.retention.ms": str(24 * 3600 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
}


class TopicSetupError(RuntimeError):
    """A one-line reason why the consumer cannot start."""


class KafkaUnreachable(TopicSetupError):
    """Kafka did not answer: not a reason to give up (the consumer waits and says so)."""


# Replicas a created topic gets when the setting is unset, on a cluster with enough brokers.
DEFAULT_REPLICATION = 3
REPLICATION_SETTING = "LAMBDA_TRIGGER_TOPIC_REPLICATION"
CREATE_SETTING = "LAMBDA_TRIGGER_CREATE_TOPICS"


@dataclass(frozen=True)
class TopicPlan:
    mcl_topic: str
    ledger_topic: str
    dead_letter_topic: str
    partitions: int = 3
    # None: min(DEFAULT_REPLICATION, number of brokers).
    replication: int | None = None
    create: bool = True


def replication_for(requested: int | None, brokers: int, where: str, topics: list[str]) -> int:
    """The replication factor to create `topics` with on a cluster of `brokers` brokers."""
    if requested is None:
        return max(1, min(DEFAULT_REPLICATION, brokers))
    if requested > brokers:
        raise TopicSetupError(
            f"{REPLICATION_SETTING}={requested} but the Kafka cluster at {where} has {brokers} "
            f"broker{'s' if brokers != 1 else ''}: a topic cannot have more replicas than "
            f"brokers, so {', '.join(repr(t) for t in topics)} cannot be created. Set "
            f"{REPLICATION_SETTING} to {brokers} or less, or unset it "
            f"(default: min({DEFAULT_REPLICATION}, brokers))"
        )
    return requested


def ensure_topics(admin_config: dict[str, Any], plan: TopicPlan, timeout: float = 15.0) -> int:
    """Check and create; returns the ledger topic's partition count."""
    admin = AdminClient(admin_config)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        # An AdminClient's error callbacks wait for poll(): serve them now, so that a refused
        # login or TLS failure is reported (kafka_logs.py) before "cannot reach Kafka".
        admin.poll(0)
        raise KafkaUnreachable(
            f"cannot reach Kafka at {admin_config.get('bootstrap.servers')}: {exc}"
        ) from exc
    topics = metadata.topics
    mcl = topics.get(plan.mcl_topic)
    if mcl is None or mcl.error is not None:
        raise TopicSetupError(
            f"the MCL topic {plan.mcl_topic!r} does not exist at "
            f"{admin_config.get('bootstrap.servers')}: is this DataHub's Kafka, and is "
            "METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME right?"
        )
    where = str(admin_config.get("bootstrap.servers"))
    configs = {plan.ledger_topic: LEDGER_CONFIG, plan.dead_letter_topic: {}}
    absent = [n for n in configs if n not in topics or topics[n].error is not None]
    if absent and not plan.create:
        raise TopicSetupError(
            f"{', '.join(repr(n) for n in absent)} do not exist at {where} and {CREATE_SETTING} "
            'is false: create them beforehand (docs/deploying-on-aws.md, "Topics") or let the '
            "consumer create them"
        )
    # Only a topic still to be created is held to the setting: existing ones are left as they are.
    replication = (
        replication_for(plan.replication, len(metadata.brokers), where, absent) if absent else 0
    )
    missing = [
        NewTopic(
            name,
            num_partitions=plan.partitions,
            replication_factor=replication,
            config=configs[name],
        )
        for name in absent
    ]
    if missing:
        futures = admin.create_topics(missing, request_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result(timeout)
                log.info("created topic %s (replication %d)", name, replication)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                code = error.code() if isinstance(error, KafkaError) else None
                if code == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # another consumer created it a moment ago
                if code in (
                    KafkaError.TOPIC_AUTHORIZATION_FAILED,
                    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                ):
                    raise TopicSetupError(
                        f"not allowed to create topic {name!r}: create it beforehand and set "
                        f"{CREATE_SETTING}=false, or grant CREATE on it "
                        "(docs/kafka-and-registries.md#topics-and-acls)"
                    ) from exc
                raise TopicSetupError(f"could not create topic {name!r}: {exc}") from exc
    # A new topic's metadata reaches every broker a moment after CreateTopics returns.
    for _ in range(50):
        ledger = admin.list_topics(topic=plan.ledger_topic, timeout=timeout).topics.get(
            plan.ledger_topic
        )
        if ledger is not None and ledger.error is None and ledger.partitions:
            return len(ledger.partitions)
        time.sleep(0.1)
    raise TopicSetupError(f"the ledger topic {plan.ledger_topic!r} has no partitions")
