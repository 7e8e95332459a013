"""`python -m devstack up --kafka-security` (Stack(kafka_security=True)): the stack's clients
get SASL_SSL/SCRAM settings in its env, and its broker refuses a PLAINTEXT client there."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devstack.__main__ import build_parser
from devstack.stack import Stack
from lambda_trigger.kafka_security import KafkaSecuritySettings, kafka_client_config

pytestmark = pytest.mark.integration


def test_the_cli_flag_reaches_the_stack() -> None:
    args = build_parser().parse_args(["up", "--kafka-security"])
    assert args.kafka_security is True
    with pytest.raises(ValueError, match="jars broker"):
        Stack(kafka_mode="docker", kafka_security=True)


def test_a_secured_stack_exports_working_scram_settings(tmp_path: Path) -> None:
    with Stack(tmp_path / "state", kafka_security=True) as stack:
        env = stack.env()
        assert env["LAMBDA_TRIGGER_KAFKA_AUTH"] == "scram-sha-512"
        settings = KafkaSecuritySettings(
            **{
                "LAMBDA_TRIGGER_KAFKA_AUTH": env["LAMBDA_TRIGGER_KAFKA_AUTH"],
                "LAMBDA_TRIGGER_KAFKA_SASL_USERNAME": env["LAMBDA_TRIGGER_KAFKA_SASL_USERNAME"],
                "LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD": env["LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD"],
                "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION": env["LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION"],
            }
        )
        config = kafka_client_config(env["KAFKA_BOOTSTRAP_SERVERS"], settings=settings, environ={})
        topics = AdminClient(config.for_client("admin")).list_topics(timeout=30).topics
        # The GMS double created them over the same SASL_SSL listener.
        assert "MetadataChangeLog_Versioned_v1" in topics
        plaintext = AdminClient({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]})
        with pytest.raises(KafkaException):
            plaintext.list_topics(timeout=5)
