"""The pipeline on a secured broker: the button path over SASL_SSL/SCRAM, the OAUTHBEARER token
callback in every client, mTLS, and one clear start-up line per security failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devstack.kafka import KafkaBroker
from devstack.kafka_tls import SecureListeners
from lambda_trigger.kafka_security import UnsecuredTestTokenProvider, kafka_client_config
from lambda_trigger.settings import ConsumerSettings
from lambda_trigger_consumer.app import ConsumerApp
from lambda_trigger_consumer.topics import TopicPlan, ensure_topics
from tests.integration.conftest import SIP, Env, RunningConsumer, bearer

pytestmark = pytest.mark.integration


def _settings(env: Env, bootstrap: str) -> ConsumerSettings:
    return ConsumerSettings(
        bootstrap_servers=bootstrap,
        schema_registry_url=env.gms.schema_registry_url,
        group_id=env.group_id,
        dead_letter_topic=f"dlq-{env.executor_id}",
        runs_topic=f"runs-{env.executor_id}",
        max_inflight=4,
        http_host="127.0.0.1",
        http_port=0,
        commit_interval_seconds=0.2,
        auto_offset_reset="earliest",
    )


@pytest.fixture
def consumers() -> Iterator[list[RunningConsumer]]:
    started: list[RunningConsumer] = []
    yield started
    for running in started:
        if running.thread.is_alive():
            running.stop()


def _click(env: Env, api: TestClient) -> str:
    env.moto.queue_result(env.functions["sip"], payload={"rows": 7})
    response = api.post(
        "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runId"]
    return run_id


def test_button_path_over_sasl_ssl_scram(
    env: Env,
    api: TestClient,
    kafka_env: pytest.MonkeyPatch,
    consumers: list[RunningConsumer],
    listeners: SecureListeners,
    secure_broker: KafkaBroker,
) -> None:
    """api POST /run -> GMS double (MCL produced over SASL_SSL as `datahub`) -> consumer (SCRAM
    as `lambda-trigger`, named settings from the environment) -> moto Lambda -> SUCCESS."""
    assert env.stack.kafka_bootstrap == listeners.bootstrap(secure_broker.host, "SASL_SSL")
    app = ConsumerApp(
        _settings(env, env.stack.kafka_bootstrap),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )
    assert app._kafka["security.protocol"] == "SASL_SSL"
    assert app._kafka["sasl.mechanism"] == "SCRAM-SHA-512"
    running = RunningConsumer(app)
    consumers.append(running)
    running.wait_assigned(60)
    run_id = _click(env, api)
    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "SUCCESS", result.report
    assert len(env.moto.invocations(env.functions["sip"])) == 1
    # The ledger producer and the consumer read the run back over the same secured listener.
    assert app.runner.ledger_assignment
    assert app.dependencies.status()["failing"] == []


def test_oauthbearer_token_callback_is_used_by_every_client(
    env: Env,
    api: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    consumers: list[RunningConsumer],
    listeners: SecureListeners,
    secure_broker: KafkaBroker,
) -> None:
    """On a listener that accepts nothing but OAUTHBEARER, a client without the token callback
    could not connect: the run ending SUCCESS and the callback's per-client count show the
    consumer, the ledger producer and the admin client all authenticated with it."""
    assert listeners.tls is not None
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "oauthbearer-unsecured-test")
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION", str(listeners.tls.ca))
    provider = UnsecuredTestTokenProvider("lambda-trigger", per_client=True)
    app = ConsumerApp(
        _settings(env, listeners.bootstrap(secure_broker.host, "OAUTH")),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
        kafka_token_provider=provider,
    )
    running = RunningConsumer(app)
    consumers.append(running)
    running.wait_assigned(60)
    run_id = _click(env, api)
    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "SUCCESS", result.report
    for client in ("consumer", "ledger", "admin", "dead-letter"):
        assert provider.calls.get(client, 0) >= 1, provider.calls
    assert set(provider.calls) == {"consumer", "ledger", "admin", "dead-letter"}


def test_oauthbearer_tokens_are_refreshed_before_they_expire(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    consumers: list[RunningConsumer],
    listeners: SecureListeners,
    secure_broker: KafkaBroker,
) -> None:
    """Tokens that live 10 s: the broker ends a session whose token expired (KIP-368,
    connections.max.reauth.ms on the OAUTH listener), so runs still ending SUCCESS after
    several lifetimes, with the callback asked again and again, show librdkafka refreshing
    (at 80 % of the expiry the callback returns) and re-authenticating in time."""
    assert listeners.tls is not None
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "oauthbearer-unsecured-test")
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION", str(listeners.tls.ca))
    provider = UnsecuredTestTokenProvider("lambda-trigger", lifetime_seconds=10, per_client=True)
    app = ConsumerApp(
        _settings(env, listeners.bootstrap(secure_broker.host, "OAUTH")),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
        kafka_token_provider=provider,
    )
    running = RunningConsumer(app)
    consumers.append(running)
    running.wait_assigned(60)
    deadline = time.monotonic() + 120
    while min(provider.calls.get("consumer", 0), provider.calls.get("ledger", 0)) < 4:
        assert time.monotonic() < deadline, provider.calls
        time.sleep(0.5)
    request = env.request()
    assert env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60).status == "SUCCESS"
    # A re-authentication racing a fetch can log one transient Kafka error on a loaded machine;
    # what matters is that Kafka is not left failing (the monitor clears it on the next success).
    deadline = time.monotonic() + 30
    while app.dependencies.status()["failing"]:
        assert time.monotonic() < deadline, app.dependencies.status()
        time.sleep(0.5)


def test_mtls_client_certificate_connects(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    consumers: list[RunningConsumer],
    listeners: SecureListeners,
    secure_broker: KafkaBroker,
) -> None:
    assert listeners.tls is not None
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION", str(listeners.tls.ca))
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION", str(listeners.tls.client_cert))
    monkeypatch.setenv("LAMBDA_TRIGGER_KAFKA_SSL_KEY_LOCATION", str(listeners.tls.client_key))
    app = ConsumerApp(
        _settings(env, listeners.bootstrap(secure_broker.host, "MTLS")),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )
    running = RunningConsumer(app)
    consumers.append(running)
    running.wait_assigned(60)
    request = env.request()
    assert env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60).status == "SUCCESS"


# --- one clear line per failure ---------------------------------------------------------------


def _failure_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "lambda_trigger_consumer.dependencies" and r.levelno >= logging.ERROR
    ]


def _start_broken(
    env: Env, bootstrap: str, consumers: list[RunningConsumer]
) -> Callable[[], dict[str, Any]]:
    app = ConsumerApp(
        _settings(env, bootstrap),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )
    consumers.append(RunningConsumer(app))

    def kafka_status() -> dict[str, Any]:
        status: dict[str, Any] = app.dependencies.status()["dependencies"]["kafka"]  # type: ignore[index]
        return status

    return kafka_status


@pytest.mark.parametrize(
    ("case", "anchor", "setting", "words"),
    [
        (
            "bad-password",
            "sasl-authentication-failed",
            "LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD",
            "invalid credentials",
        ),
        (
            "wrong-mechanism",
            "wrong-sasl-mechanism",
            "LAMBDA_TRIGGER_KAFKA_AUTH",
            "the broker offers SCRAM-SHA-512,PLAIN",
        ),
        (
            "untrusted-ca",
            "tls-verification-failed",
            "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION",
            "certificate verify failed",
        ),
        (
            "tls-to-a-plaintext-port",
            "tls-handshake-failed",
            "LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL",
            "TLS handshake failed (is this port a TLS listener?)",
        ),
        (
            "no-client-certificate",
            "client-certificate-refused",
            "LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION",
            "refused our TLS client certificate",
        ),
    ],
)
def test_one_start_up_line_per_security_failure(
    case: str,
    anchor: str,
    setting: str,
    words: str,
    env: Env,
    kafka_env: pytest.MonkeyPatch,
    consumers: list[RunningConsumer],
    listeners: SecureListeners,
    secure_broker: KafkaBroker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert listeners.tls is not None
    bootstrap = listeners.bootstrap(secure_broker.host, "SASL_SSL")
    if case == "bad-password":
        kafka_env.setenv("LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD", "not-the-password")
    elif case == "wrong-mechanism":
        kafka_env.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "scram-sha-256")
    elif case == "untrusted-ca":
        kafka_env.setenv("LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION", str(listeners.tls.other_ca))
    elif case == "tls-to-a-plaintext-port":
        bootstrap = secure_broker.bootstrap_servers  # the broker's PLAINTEXT listener
    else:
        kafka_env.setenv("LAMBDA_TRIGGER_KAFKA_AUTH", "none")
        kafka_env.setenv("LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL", "SSL")
        bootstrap = listeners.bootstrap(secure_broker.host, "MTLS")
    caplog.set_level(logging.INFO)
    kafka_status = _start_broken(env, bootstrap, consumers)
    deadline = time.monotonic() + 60
    while not _failure_lines(caplog):
        assert time.monotonic() < deadline, "no failure line within 60 s"
        time.sleep(0.2)
    # The start-up check retries every 5 s: give it two more tries, which must not add lines.
    time.sleep(11)
    lines = _failure_lines(caplog)
    assert len(lines) == 1, lines
    line = lines[0]
    assert words in line, line
    assert setting in line, line
    assert f"docs/kafka-and-registries.md#{anchor}" in line, line
    assert "Broker transport failure" not in line
    # /readyz says the same: down, why, and what to check.
    status = kafka_status()
    assert status["status"] == "down"
    assert words in status["error"] and anchor in status["hint"]
    # No secret in the line.
    assert listeners.users["lambda-trigger"] not in line


# --- DataHub's own names on the real broker ----------------------------------------------------


@pytest.mark.parametrize("flavour", ["KAFKA_PROPERTIES", "SPRING_KAFKA_PROPERTIES"])
def test_datahubs_setting_names_connect(
    flavour: str,
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    listeners: SecureListeners,
    secure_broker: KafkaBroker,
) -> None:
    """A pod given datahub-actions' KAFKA_PROPERTIES_* (PLAIN, as for Confluent Cloud) or GMS's
    SPRING_KAFKA_PROPERTIES_* (SCRAM in a JAAS line, PEM trust store) reaches the broker and
    can create its topics, with no LAMBDA_TRIGGER_KAFKA_* setting."""
    assert listeners.tls is not None
    user, password = "lambda-trigger", listeners.users["lambda-trigger"]
    if flavour == "KAFKA_PROPERTIES":
        names = {
            "KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_PROPERTIES_SASL_MECHANISM": "PLAIN",
            "KAFKA_PROPERTIES_SASL_USERNAME": user,
            "KAFKA_PROPERTIES_SASL_PASSWORD": password,
            "KAFKA_PROPERTIES_SSL_CA_LOCATION": str(listeners.tls.ca),
        }
    else:
        names = {
            "SPRING_KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
            "SPRING_KAFKA_PROPERTIES_SASL_MECHANISM": "SCRAM-SHA-512",
            "SPRING_KAFKA_PROPERTIES_SASL_JAAS_CONFIG": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{user}" password="{password}";'
            ),
            "SPRING_KAFKA_PROPERTIES_SSL_TRUSTSTORE_TYPE": "PEM",
            "SPRING_KAFKA_PROPERTIES_SSL_TRUSTSTORE_LOCATION": str(listeners.tls.ca),
        }
    for key, value in names.items():
        monkeypatch.setenv(key, value)
    config = kafka_client_config(listeners.bootstrap(secure_broker.host, "SASL_SSL"))
    assert all(
        source == f"{flavour}_*"
        for key, source in config.sources.items()
        if key != "bootstrap.servers"
    )
    suffix = env.executor_id
    plan = TopicPlan("MetadataChangeLog_Versioned_v1", f"runs-{suffix}", f"dlq-{suffix}")
    assert ensure_topics(config.for_client("admin"), plan) == 3
