"""`iam-policy` with MSK IAM auth and an SSE-KMS completion queue: the exact policy documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_trigger import cli
from lambda_trigger.iam_policy import PolicyError, build_policy
from lambda_trigger.kafka_policy import ArnError, MskAccess
from lambda_trigger.mapping import parse_mapping

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:earnings"
CLUSTER = (
    "arn:aws:kafka:eu-west-1:123456789012:cluster/datahub/0b7e2f1c-5d1a-4c43-9b0e-1f2a3b4c5d6e-7"
)
PREFIX = "arn:aws:kafka:eu-west-1:123456789012"
IDS = "datahub/0b7e2f1c-5d1a-4c43-9b0e-1f2a3b4c5d6e-7"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/lambda-trigger-completions"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

INVOKE = {
    "Sid": "InvokeMappedFunctions",
    "Effect": "Allow",
    "Action": [
        "lambda:InvokeFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunctionEventInvokeConfig",
    ],
    "Resource": [FUNCTION],
}
QUEUE_STATEMENT = {
    "Sid": "ReadCompletionQueue",
    "Effect": "Allow",
    "Action": [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    ],
    "Resource": ["arn:aws:sqs:eu-west-1:123456789012:lambda-trigger-completions"],
}


def _msk_statements(create: bool) -> list[dict[str, Any]]:
    mcl = f"{PREFIX}:topic/{IDS}/MetadataChangeLog_Versioned_v1"
    ledger = f"{PREFIX}:topic/{IDS}/DataHubLambdaTrigger_Runs_v1"
    dead = f"{PREFIX}:topic/{IDS}/DataHubLambdaTrigger_DeadLetter_v1"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "MskConnect",
            "Effect": "Allow",
            "Action": ["kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"],
            "Resource": [CLUSTER],
        },
        {
            "Sid": "MskReadTopics",
            "Effect": "Allow",
            "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
            "Resource": [ledger, mcl],
        },
        {
            "Sid": "MskWriteTopics",
            "Effect": "Allow",
            "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
            "Resource": [dead, ledger],
        },
    ]
    if create:
        statements.append(
            {
                "Sid": "MskCreateOwnTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:CreateTopic"],
                "Resource": [dead, ledger],
            }
        )
    statements.append(
        {
            "Sid": "MskConsumerGroup",
            "Effect": "Allow",
            "Action": ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
            "Resource": [f"{PREFIX}:group/{IDS}/datahub-lambda-trigger"],
        }
    )
    return statements


@pytest.fixture
def policy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only what a test sets: the developer's shell must not change the policy."""
    for name in (
        "DATAHUB_INGESTION_LAMBDA_MAPPING_FILE",
        "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL",
        "LAMBDA_TRIGGER_COMPLETION_QUEUE_KMS_KEY_ARN",
        "LAMBDA_TRIGGER_KAFKA_AUTH",
        "LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN",
        "LAMBDA_TRIGGER_CREATE_TOPICS",
        "METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME",
        "LAMBDA_TRIGGER_RUNS_TOPIC",
        "LAMBDA_TRIGGER_DEAD_LETTER_TOPIC",
        "LAMBDA_TRIGGER_CONSUMER_GROUP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_MAPPING", json.dumps({SIP: FUNCTION}))
    return monkeypatch


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["iam-policy", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_msk_iam_adds_the_cluster_topic_and_group_permissions(
    policy_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_env.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "msk-iam")
    policy_env.setenv("LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN", CLUSTER)
    code, out, err = _run(capsys)
    assert code == 0, err
    assert json.loads(out) == {
        "Version": "2012-10-17",
        "Statement": [INVOKE, *_msk_statements(create=True)],
    }


def test_no_create_topic_when_the_consumer_does_not_create_them(
    policy_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_env.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "msk-iam")
    policy_env.setenv("LAMBDA_TRIGGER_CREATE_TOPICS", "false")
    code, out, err = _run(capsys, "--msk-cluster-arn", CLUSTER)
    assert code == 0, err
    assert json.loads(out)["Statement"] == [INVOKE, *_msk_statements(create=False)]


def test_topic_and_group_names_follow_the_consumers_settings(
    policy_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_env.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "msk-iam")
    policy_env.setenv("LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN", CLUSTER)
    policy_env.setenv("METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME", "prod_MCL")
    policy_env.setenv("LAMBDA_TRIGGER_RUNS_TOPIC", "prod_runs")
    policy_env.setenv("LAMBDA_TRIGGER_DEAD_LETTER_TOPIC", "prod_dlq")
    policy_env.setenv("LAMBDA_TRIGGER_CONSUMER_GROUP", "prod-group")
    code, out, _err = _run(capsys)
    assert code == 0
    by_sid = {s["Sid"]: s["Resource"] for s in json.loads(out)["Statement"]}
    assert by_sid["MskReadTopics"] == [
        f"{PREFIX}:topic/{IDS}/prod_MCL",
        f"{PREFIX}:topic/{IDS}/prod_runs",
    ]
    assert by_sid["MskWriteTopics"] == [
        f"{PREFIX}:topic/{IDS}/prod_dlq",
        f"{PREFIX}:topic/{IDS}/prod_runs",
    ]
    assert by_sid["MskConsumerGroup"] == [f"{PREFIX}:group/{IDS}/prod-group"]


@pytest.mark.parametrize("auth", [None, "none", "scram-sha-512", "plain"])
def test_other_kafka_auth_adds_no_kafka_permission(
    policy_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], auth: str | None
) -> None:
    if auth is not None:
        policy_env.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", auth)
    policy_env.setenv("LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN", CLUSTER)
    code, out, _err = _run(capsys)
    assert code == 0
    assert json.loads(out)["Statement"] == [INVOKE]


def test_msk_iam_without_a_cluster_arn_says_which_setting(
    policy_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_env.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "msk-iam")
    code, out, err = _run(capsys)
    assert (code, out) == (2, "")
    assert "--msk-cluster-arn or LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN" in err
    code, _out, err = _run(capsys, "--msk-cluster-arn", "arn:aws:kafka:eu-west-1:123:cluster/x")
    assert code == 2 and "not an MSK cluster ARN" in err


def test_encrypted_completion_queue_adds_kms_decrypt_on_its_key(
    policy_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_env.setenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_URL", QUEUE)
    policy_env.setenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_KMS_KEY_ARN", KEY)
    code, out, err = _run(capsys)
    assert code == 0, err
    assert json.loads(out) == {
        "Version": "2012-10-17",
        "Statement": [
            INVOKE,
            QUEUE_STATEMENT,
            {
                "Sid": "DecryptCompletionQueue",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [KEY],
            },
        ],
    }
    # Without the key setting (SSE-SQS or no encryption): no KMS statement at all.
    policy_env.delenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_KMS_KEY_ARN")
    code, out, _err = _run(capsys)
    assert json.loads(out)["Statement"] == [INVOKE, QUEUE_STATEMENT]


def test_kms_key_must_be_a_key_arn_and_needs_the_queue() -> None:
    mapping = parse_mapping({SIP: FUNCTION}, "test")
    with pytest.raises(ArnError, match="not an alias"):
        build_policy(
            mapping,
            completion_queue_url=QUEUE,
            completion_queue_kms_key_arn="arn:aws:kms:eu-west-1:123456789012:alias/sqs",
        )
    with pytest.raises(PolicyError, match="without LAMBDA_TRIGGER_COMPLETION_QUEUE_URL"):
        build_policy(mapping, completion_queue_kms_key_arn=KEY)


def test_msk_access_derives_arns_from_the_cluster() -> None:
    access = MskAccess.for_cluster(
        "arn:aws-cn:kafka:cn-north-1:123456789012:cluster/c1/uuid-1",
        mcl_topic="m",
        ledger_topic="l",
        dead_letter_topic="d",
        group_id="g",
    )
    assert access.topic_arn("m") == "arn:aws-cn:kafka:cn-north-1:123456789012:topic/c1/uuid-1/m"
    assert access.group_arn("g") == "arn:aws-cn:kafka:cn-north-1:123456789012:group/c1/uuid-1/g"
