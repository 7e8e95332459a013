"""librdkafka's security errors -> one reason, the setting to check and a docs anchor that
exists. The messages are librdkafka 2.x's own, as a real broker produced them (the same cases
run against the local secured broker in tests/integration/kafka_security/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from lambda_trigger_consumer.dependencies import HINTS, DependencyMonitor
from lambda_trigger_consumer.kafka_failures import classify
from lambda_trigger_consumer.kafka_logs import KafkaLogging

DOC = Path(__file__).resolve().parents[3] / "docs" / "kafka-and-registries.md"

BAD_PASSWORD = (
    "sasl_ssl://127.0.0.1:37681/bootstrap: SASL authentication error: Authentication failed "
    "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 "
    "(after 327ms in state AUTH_REQ)"
)
WRONG_MECHANISM = (
    "sasl_ssl://127.0.0.1:37681/bootstrap: SASL SCRAM-SHA-256 mechanism handshake failed: "
    "Broker: Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512,PLAIN "
    "(after 302ms in state AUTH_HANDSHAKE)"
)
UNTRUSTED = (
    "sasl_ssl://127.0.0.1:37681/bootstrap: SSL handshake failed: error:0A000086:SSL "
    "routines::certificate verify failed: broker certificate could not be verified, verify that "
    "ssl.ca.location is correctly configured (after 9ms in state SSL_HANDSHAKE)"
)
NO_CLIENT_CERT = (
    "ssl://127.0.0.1:45693/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls "
    "alert bad certificate: SSL alert number 42 (after 1ms in state APIVERSION_QUERY)"
)


def _anchors() -> set[str]:
    """GitHub's anchors of the page's headings."""
    anchors = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


@pytest.mark.parametrize(
    ("code", "message", "anchor", "setting"),
    [
        (KafkaError._AUTHENTICATION, BAD_PASSWORD, "sasl-authentication-failed", "SASL_PASSWORD"),
        (KafkaError._AUTHENTICATION, WRONG_MECHANISM, "wrong-sasl-mechanism", "KAFKA_AUTH"),
        (KafkaError._SSL, UNTRUSTED, "tls-verification-failed", "SSL_CA_LOCATION"),
        (KafkaError._TRANSPORT, NO_CLIENT_CERT, "client-certificate-refused", "SSL_CERT_LOCATION"),
        (
            KafkaError._TRANSPORT,
            "sasl_ssl://127.0.0.1:41177/bootstrap: SSL handshake failed: Disconnected: SSL "
            "connection closed by peer: connecting to a PLAINTEXT broker listener? (after 3ms "
            "in state SSL_HANDSHAKE)",
            "tls-handshake-failed",
            "SECURITY_PROTOCOL",
        ),
        (
            KafkaError._TRANSPORT,
            "sasl_ssl://127.0.0.1:41177/bootstrap: Disconnected: SSL connection closed by peer "
            "(after 1ms in state SSL_HANDSHAKE)",
            "tls-handshake-failed",
            "SECURITY_PROTOCOL",
        ),
        (
            KafkaError.SASL_AUTHENTICATION_FAILED,
            "OAuth token not set within 10 seconds timeout",
            "token-refresh-failed",
            "MSK_REGION",
        ),
    ],
)
def test_each_failure_names_its_setting_and_a_real_anchor(
    code: int, message: str, anchor: str, setting: str
) -> None:
    failure = classify(code, message)
    assert failure is not None and failure.kind == anchor
    assert setting in failure.hint
    assert f"docs/kafka-and-registries.md#{anchor}" in failure.hint
    assert anchor in _anchors(), f"#{anchor} is not a heading of {DOC.name}"
    assert "(after" not in failure.reason and "/bootstrap:" not in failure.reason


def test_the_generic_kafka_hint_points_to_a_real_anchor() -> None:
    target = HINTS["kafka"].rpartition("#")[2]
    assert target in _anchors()


def test_plain_transport_errors_are_not_security_failures() -> None:
    refused = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"
    assert classify(KafkaError._TRANSPORT, refused) is None
    assert classify(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down") is None


class _Error:
    def __init__(self, code: int, text: str) -> None:
        self._code, self._text = code, text

    def code(self) -> int:
        return self._code

    def str(self) -> str:
        return self._text

    def name(self) -> str:
        return "X"

    def fatal(self) -> bool:
        return False


def test_brokers_down_after_a_refused_login_keeps_the_login_reason() -> None:
    deps = DependencyMonitor()
    deps.register("kafka", "Kafka", "b:9096", HINTS["kafka"])
    logging_ = KafkaLogging(deps)
    logging_.on_error(_Error(KafkaError._AUTHENTICATION, BAD_PASSWORD))  # type: ignore[arg-type]
    logging_.on_error(_Error(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))  # type: ignore[arg-type]
    kafka = deps.status()["dependencies"]["kafka"]  # type: ignore[index]
    assert "invalid credentials" in kafka["error"]
    assert "#sasl-authentication-failed" in kafka["hint"]
    # A broker UP again clears it: the next outage is reported for what it is.
    logging_.on_stats('{"brokers": {"b": {"state": "UP", "nodeid": 1}}}')
    assert logging_.security_failure is None and deps.is_up("kafka")
