"""The IAM statements the consumer needs on an MSK cluster with IAM access control, and on the
KMS key of an SSE-KMS completion queue; `iam-policy` (iam_policy.py) adds them to its document.

MSK names a cluster `arn:<p>:kafka:<region>:<account>:cluster/<name>/<uuid>`, and derives its
topics (`.../topic/<name>/<uuid>/<topic>`) and groups (`.../group/<name>/<uuid>/<group>`) from it
(AWS, "IAM access control" / "Resources" in the Amazon MSK developer guide). What the consumer does
with each:

- connects (`Connect`) and produces idempotently (`WriteDataIdempotently`, cluster-level: both the
  ledger producer and the dead-letter producer set `enable.idempotence`);
- reads the MCL topic and the run ledger (`DescribeTopic`, `ReadData`);
- writes the run ledger and the dead-letter topic (`DescribeTopic`, `WriteData`);
- creates those two when missing (`CreateTopic`), unless LAMBDA_TRIGGER_CREATE_TOPICS=false;
- joins and commits in its consumer group (`DescribeGroup`, `AlterGroup`);
- with lineage triggers in the mapping: reads the timeseries MCL topic in `<group>-triggers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_CLUSTER_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):kafka:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"cluster/(?P<name>[A-Za-z0-9-]+)/(?P<uuid>[A-Za-z0-9-]+)$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


class ArnError(ValueError):
    """An ARN setting that is not the kind of ARN it must be."""


@dataclass(frozen=True)
class MskAccess:
    cluster_arn: str
    mcl_topic: str
    ledger_topic: str
    dead_letter_topic: str
    group_id: str
    create_topics: bool = True
    # Lineage triggers (docs/triggers.md): the timeseries MCL topic is read too, in the group
    # `<group_id>-triggers`. None when the mapping has no trigger.
    timeseries_topic: str | None = None

    @classmethod
    def for_cluster(cls, cluster_arn: str, **names: Any) -> MskAccess:
        if not _CLUSTER_ARN.match(cluster_arn):
            raise ArnError(
                "LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN is not an MSK cluster ARN "
                f"(arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>): {cluster_arn!r}"
            )
        return cls(cluster_arn, **names)

    def _child(self, kind: str, name: str) -> str:
        # ".../cluster/<name>/<uuid>" -> ".../<kind>/<name>/<uuid>/<topic or group>"
        prefix, _, rest = self.cluster_arn.partition(":cluster/")
        return f"{prefix}:{kind}/{rest}/{name}"

    def topic_arn(self, topic: str) -> str:
        return self._child("topic", topic)

    def group_arn(self, group: str) -> str:
        return self._child("group", group)


def msk_statements(access: MskAccess) -> list[dict[str, Any]]:
    read = sorted(
        {access.topic_arn(access.mcl_topic), access.topic_arn(access.ledger_topic)}
        | ({access.topic_arn(access.timeseries_topic)} if access.timeseries_topic else set())
    )
    groups = [access.group_arn(access.group_id)]
    if access.timeseries_topic:
        groups.append(access.group_arn(f"{access.group_id}-triggers"))
    written = sorted(
        {access.topic_arn(access.ledger_topic), access.topic_arn(access.dead_letter_topic)}
    )
    statements: list[dict[str, Any]] = [
        {
            "Sid": "MskConnect",
            "Effect": "Allow",
            "Action": ["kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"],
            "Resource": [access.cluster_arn],
        },
        {
            "Sid": "MskReadTopics",
            "Effect": "Allow",
            "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
            "Resource": read,
        },
        {
            "Sid": "MskWriteTopics",
            "Effect": "Allow",
            "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
            "Resource": written,
        },
    ]
    if access.create_topics:
        statements.append(
            {
                "Sid": "MskCreateOwnTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:CreateTopic"],
                "Resource": written,
            }
        )
    statements.append(
        {
            "Sid": "MskConsumerGroup",
            "Effect": "Allow",
            "Action": ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
            "Resource": groups,
        }
    )
    return statements


def kms_statement(key_arn: str) -> dict[str, Any]:
    # IAM authorizes kms:Decrypt against the key's ARN; an alias ARN there never matches.
    if not _KMS_KEY_ARN.match(key_arn):
        raise ArnError(
            "LAMBDA_TRIGGER_COMPLETION_QUEUE_KMS_KEY_ARN must be a key ARN "
            f"(arn:aws:kms:<region>:<account>:key/<key-id>), not an alias or key id: {key_arn!r}"
        )
    return {
        "Sid": "DecryptCompletionQueue",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [key_arn],
    }
