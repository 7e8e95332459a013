"""Consumer start-up checks on Kafka: our topics are created when missing (production clusters
turn auto-creation off), and a missing MCL topic stops the start with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from lambda_trigger_consumer.topics import LEDGER_CONFIG, TopicPlan, TopicSetupError, ensure_topics

from .conftest import Env

pytestmark = pytest.mark.integration


def test_missing_ledger_and_dead_letter_topics_are_created_compacted(env: Env) -> None:
    suffix = uuid.uuid4().hex[:8]
    plan = TopicPlan(
        "MetadataChangeLog_Versioned_v1", f"runs-{suffix}", f"dlq-{suffix}", partitions=2
    )
    config = {"bootstrap.servers": env.stack.kafka_bootstrap}
    assert ensure_topics(config, plan) == 2
    assert ensure_topics(config, plan) == 2  # a second consumer finds them: no error
    admin = AdminClient(config)
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[f"dlq-{suffix}"].partitions) == 2
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource("topic", f"runs-{suffix}")
    described = admin.describe_configs([resource])[resource].result(10)
    assert described["cleanup.policy"].value == LEDGER_CONFIG["cleanup.policy"] == "compact"


def test_a_missing_mcl_topic_stops_the_start_with_one_line(env: Env) -> None:
    missing = f"no-such-mcl-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TopicSetupError, match="does not exist"):
        ensure_topics(
            {"bootstrap.servers": env.stack.kafka_bootstrap},
            TopicPlan(missing, "runs-x", "dlq-x"),
        )
    done = subprocess.run(
        [sys.executable, "-m", "lambda_trigger_consumer"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVER": env.stack.kafka_bootstrap,  # DataHub's own name for it
            "METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME": missing,
            "DATAHUB_GMS_URL": env.gms.url,
            "SCHEMA_REGISTRY_URL": env.gms.schema_registry_url,
            "DATAHUB_INGESTION_LAMBDA_MAPPING": json.dumps(env.mapping),
            "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT": "0",
            **env.moto.env(),
        },
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr.decode()[-2000:]
    lines = [line for line in done.stderr.decode().splitlines() if "not starting" in line]
    assert len(lines) == 1 and f"the MCL topic '{missing}' does not exist" in lines[0]


def _replicas(config: dict[str, str], topic: str) -> list[int]:
    described = AdminClient(config).list_topics(topic=topic, timeout=10).topics[topic]
    return [len(p.replicas) for p in described.partitions.values()]


def test_replication_defaults_to_min_3_and_the_broker_count(env: Env) -> None:
    """The devstack broker is alone, like datahub-helm's prerequisites: unset means 1 here."""
    config = {"bootstrap.servers": env.stack.kafka_bootstrap}
    brokers = len(AdminClient(config).list_topics(timeout=10).brokers)
    assert brokers == 1, "this test expects the one-broker local stack"
    suffix = uuid.uuid4().hex[:8]
    plan = TopicPlan("MetadataChangeLog_Versioned_v1", f"runs-{suffix}", f"dlq-{suffix}")
    assert plan.replication is None
    assert ensure_topics(config, plan) == 3
    assert _replicas(config, f"runs-{suffix}") == [1, 1, 1]
    assert _replicas(config, f"dlq-{suffix}") == [1, 1, 1]


def test_replication_the_cluster_cannot_meet_stops_with_one_clear_line(env: Env) -> None:
    config = {"bootstrap.servers": env.stack.kafka_bootstrap}
    suffix = uuid.uuid4().hex[:8]
    plan = TopicPlan(
        "MetadataChangeLog_Versioned_v1", f"runs-{suffix}", f"dlq-{suffix}", replication=3
    )
    with pytest.raises(TopicSetupError) as raised:
        ensure_topics(config, plan)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        f"LAMBDA_TRIGGER_TOPIC_REPLICATION=3 but the Kafka cluster at {env.stack.kafka_bootstrap}"
        " has 1 broker: "
    )
    assert "Set LAMBDA_TRIGGER_TOPIC_REPLICATION to 1 or less, or unset it" in message
    # Nothing was half-created.
    topics = AdminClient(config).list_topics(timeout=10).topics
    assert f"runs-{suffix}" not in topics and f"dlq-{suffix}" not in topics
    # Existing topics are not re-checked: a setting for creation only matters when creating.
    ensure_topics(config, TopicPlan(plan.mcl_topic, plan.ledger_topic, plan.dead_letter_topic))
    assert ensure_topics(config, plan) == 3


def test_the_consumer_process_says_the_replication_line_once(env: Env) -> None:
    suffix = uuid.uuid4().hex[:8]
    done = subprocess.run(
        [sys.executable, "-m", "lambda_trigger_consumer"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVER": env.stack.kafka_bootstrap,
            "DATAHUB_GMS_URL": env.gms.url,
            "SCHEMA_REGISTRY_URL": env.gms.schema_registry_url,
            "DATAHUB_INGESTION_LAMBDA_MAPPING": json.dumps(env.mapping),
            "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT": "0",
            "LAMBDA_TRIGGER_RUNS_TOPIC": f"runs-{suffix}",
            "LAMBDA_TRIGGER_DEAD_LETTER_TOPIC": f"dlq-{suffix}",
            "LAMBDA_TRIGGER_CONSUMER_GROUP": f"group-{suffix}",
            "LAMBDA_TRIGGER_TOPIC_REPLICATION": "3",
            **env.moto.env(),
        },
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr.decode()[-2000:]
    lines = [line for line in done.stderr.decode().splitlines() if "not starting" in line]
    assert len(lines) == 1, done.stderr.decode()[-2000:]
    assert "LAMBDA_TRIGGER_TOPIC_REPLICATION=3 but the Kafka cluster" in lines[0]
    assert "has 1 broker" in lines[0]


def test_without_topic_creation_a_missing_topic_stops_the_start(env: Env) -> None:
    config = {"bootstrap.servers": env.stack.kafka_bootstrap}
    suffix = uuid.uuid4().hex[:8]
    plan = TopicPlan(
        "MetadataChangeLog_Versioned_v1", f"runs-{suffix}", f"dlq-{suffix}", create=False
    )
    with pytest.raises(TopicSetupError, match="LAMBDA_TRIGGER_CREATE_TOPICS is false"):
        ensure_topics(config, plan)
    assert f"runs-{suffix}" not in AdminClient(config).list_topics(timeout=10).topics
