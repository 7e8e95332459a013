"""A Kafka broker with secured listeners, and the pipeline wired to it.

The session's `secure_broker` is the devstack broker from the Maven jars with, beside its
PLAINTEXT listener, a SASL_SSL listener (SCRAM-SHA-512 and PLAIN users made by
`kafka-storage format --add-scram`), an OAUTHBEARER listener (Kafka's unsecured JWS validator)
and an mTLS listener, with a CA and certificates made at start (devstack/kafka_tls.py).

`stack` is overridden here: every test in this directory gets the GMS double producing MCLs
over the SASL_SSL listener as the SCRAM user `datahub`, so `env`, `api` and `start_consumer`
from tests/integration/conftest.py run the whole button path over TLS + SCRAM. The consumer
reads its security settings from the environment (`kafka_env`), as in a pod.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.aws import MotoServer
from devstack.gms_double import GmsDouble
from devstack.kafka import KafkaBroker
from devstack.kafka_tls import SecureListeners
from devstack.stack import stack_env
from tests.conftest import StackHandle


@pytest.fixture(scope="session")
def secure_broker() -> Iterator[KafkaBroker]:
    # The jars broker only: an external broker or a container cannot be given these listeners.
    with KafkaBroker(secure=SecureListeners()) as broker:
        yield broker


@pytest.fixture(scope="session")
def listeners(secure_broker: KafkaBroker) -> SecureListeners:
    assert secure_broker.secure is not None and secure_broker.secure.tls is not None
    return secure_broker.secure


@pytest.fixture(scope="session")
def secure_gms(secure_broker: KafkaBroker, listeners: SecureListeners) -> Iterator[GmsDouble]:
    double = GmsDouble(
        listeners.bootstrap(secure_broker.host, "SASL_SSL"),
        kafka_config=listeners.scram_config("datahub"),
    )
    double.start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="session")
def stack(
    secure_broker: KafkaBroker,
    listeners: SecureListeners,
    secure_gms: GmsDouble,
    moto_server: MotoServer,
) -> StackHandle:
    bootstrap = listeners.bootstrap(secure_broker.host, "SASL_SSL")
    return StackHandle(
        bootstrap, secure_gms, moto_server, stack_env(bootstrap, secure_gms, moto_server)
    )


@pytest.fixture
def kafka_env(monkeypatch: pytest.MonkeyPatch, listeners: SecureListeners) -> pytest.MonkeyPatch:
    """The consumer's named settings for SCRAM-SHA-512 over TLS, set as a pod would set them
    (a test changes one of them to break it)."""
    for key, value in listeners.client_env("lambda-trigger").items():
        monkeypatch.setenv(key, value)
    return monkeypatch
