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
