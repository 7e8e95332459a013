"""What a librdkafka security error means for an operator: one reason, the setting to check,
and the docs section (docs/kafka-and-registries.md#troubleshooting) that explains it.

librdkafka reports a refused login, a failed TLS verification and a mechanism the broker does
not offer as error codes `_AUTHENTICATION` / `_SSL` (and a refused client certificate as a
`_TRANSPORT` with the TLS alert in its text), followed by "all brokers down": without this,
the consumer would say "Kafka unreachable ... Broker transport failure", which sends an
operator to the network instead of the password. The texts matched here are librdkafka's
(checked against a real broker in tests/integration/kafka_security/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from confluent_kafka import KafkaError

DOCS = "docs/kafka-and-registries.md"


@dataclass(frozen=True)
class KafkaFailure:
    kind: str  # the docs anchor
    reason: str  # what happened, in a few words plus librdkafka's own
    hint: str  # which setting to check, and where to read more


_PREFIX = re.compile(r"^\S+/(?:bootstrap|\d+): ")  # "sasl_ssl://host:port/bootstrap: "
_SUFFIX = re.compile(r"\s*\(after \d+ms in state [A-Z_]+.*\)$")

WRONG_MECHANISM = "wrong-sasl-mechanism"
AUTH_FAILED = "sasl-authentication-failed"
TLS_VERIFY = "tls-verification-failed"
TLS_HANDSHAKE = "tls-handshake-failed"
CLIENT_CERT = "client-certificate-refused"
TOKEN = "token-refresh-failed"


def _hint(settings: str, anchor: str) -> str:
    return f"check {settings}; see {DOCS}#{anchor}"


def _clean(message: str) -> str:
    return _SUFFIX.sub("", _PREFIX.sub("", message)).strip()


def classify(code: int, message: str) -> KafkaFailure | None:
    """The failure a librdkafka error stands for, or None when it is not a security one."""
    text = _clean(message)
    lower = text.lower()
    if code == KafkaError._AUTHENTICATION and "unsupported sasl mechanism" in lower:
        offered = text.rpartition("supported mechanisms:")[2].strip() or "?"
        return KafkaFailure(
            WRONG_MECHANISM,
            f"wrong SASL mechanism, the broker offers {offered}: {text}",
            _hint(
                "LAMBDA_TRIGGER_KAFKA_AUTH (or KAFKA_PROPERTIES_SASL_MECHANISM, sasl.mechanism "
                "in LAMBDA_TRIGGER_KAFKA_CONFIG) and that this is the right listener's port",
                WRONG_MECHANISM,
            ),
        )
    if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        if "oauth token not set" in lower or "token refresh" in lower:
            return KafkaFailure(
                TOKEN,
                f"no OAUTHBEARER token: {text}",
                _hint("the AWS credentials (IRSA role) and LAMBDA_TRIGGER_KAFKA_MSK_REGION", TOKEN),
            )
        return KafkaFailure(
            AUTH_FAILED,
            f"SASL authentication failed: {text}",
            _hint(
                "LAMBDA_TRIGGER_KAFKA_SASL_USERNAME and LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD "
                "(or _PASSWORD_FILE); for msk-iam the role's kafka-cluster:Connect permission",
                AUTH_FAILED,
            ),
        )
    if code in (KafkaError._SSL, KafkaError._TRANSPORT) and (
        "plaintext broker listener" in lower
        or "wrong version number" in lower
        or ("ssl connection closed by peer" in lower and "state SSL_HANDSHAKE" in message)
    ):
        # A TLS client talking to a plaintext port: librdkafka 2.x reports it as two
        # _TRANSPORT errors, in either order ("SSL handshake failed: ... SSL connection closed
        # by peer: connecting to a PLAINTEXT broker listener?" and a bare "SSL connection
        # closed by peer" in state SSL_HANDSHAKE); OpenSSL's own word is "wrong version number".
        return KafkaFailure(
            TLS_HANDSHAKE,
            f"TLS handshake failed (is this port a TLS listener?): {text}",
            _hint(
                "that KAFKA_BOOTSTRAP_SERVERS names the TLS listener's port, or set "
                "LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL to PLAINTEXT / SASL_PLAINTEXT",
                TLS_HANDSHAKE,
            ),
        )
    if code == KafkaError._SSL or (
        code == KafkaError._TRANSPORT and "certificate verify failed" in lower
    ):
        return KafkaFailure(
            TLS_VERIFY,
            f"TLS verification of the broker failed: {text}",
            _hint(
                "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION (the CA that signed the brokers' "
                "certificates) and that the bootstrap host name is in their certificates",
                TLS_VERIFY,
            ),
        )
    if code == KafkaError._TRANSPORT and re.search(
        r"alert (bad certificate|certificate required|unknown ca|handshake failure)", lower
    ):
        return KafkaFailure(
            CLIENT_CERT,
            f"the broker refused our TLS client certificate: {text}",
            _hint(
                "LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION and LAMBDA_TRIGGER_KAFKA_SSL_KEY_LOCATION "
                "(a certificate the brokers' trust store accepts)",
                CLIENT_CERT,
            ),
        )
    return None
