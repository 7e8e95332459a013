"""A Kafka security setting that cannot work stops the consumer before it connects, with one
line naming the setting (no broker needed: the check runs while the clients are built)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (
            {"LAMBDA_TRIGGER_KAFKA_AUTH": "scram-sha-512"},
            "needs LAMBDA_TRIGGER_KAFKA_SASL_USERNAME and LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL": "SSL",
                "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION": "/no/ca.pem",
            },
            "ssl.ca.location=/no/ca.pem (from LAMBDA_TRIGGER_KAFKA_*) does not exist",
        ),
        ({"LAMBDA_TRIGGER_KAFKA_AUTH": "kerberos"}, "LAMBDA_TRIGGER_KAFKA_AUTH"),
    ],
)
def test_bad_kafka_settings_stop_the_start_with_one_line(
    settings: dict[str, str], words: str
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAMBDA_TRIGGER_KAFKA_", "KAFKA_PROPERTIES_", "SPRING_KAFKA_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "lambda_trigger_consumer"],
        env={
            **env,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "DATAHUB_INGESTION_LAMBDA_DEFAULT": "some-function",
            "AWS_DEFAULT_REGION": "us-east-1",
            "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT": "0",
            **settings,
        },
        capture_output=True,
        timeout=120,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if "not starting" in line]
    assert len(lines) == 1, stderr[-2000:]
    assert words in lines[0]
