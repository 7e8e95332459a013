"""A GMS / schema-registry outage: /healthz stays up, /readyz names the dependency.

A GMS test double of this test's own (on the session's real Kafka broker, its own MCL topic)
is switched down (`set_down`: the port refuses connections, as a GMS pod that is not
running); the consumer runs in-process as `main` builds it, probed over HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from devstack.gms_double import GmsDouble
from lambda_trigger.settings import ConsumerSettings, DataHubSettings, MappingSettings
from lambda_trigger_consumer.app import ConsumerApp

pytestmark = pytest.mark.integration


class Running:
    def __init__(self, app: ConsumerApp, double: GmsDouble, topic: str) -> None:
        self.app, self.double, self.topic = app, double, topic
        self.thread = threading.Thread(target=app.run, name="consumer-under-test", daemon=True)
        self.thread.start()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.app.health.port}{path}", timeout=5)

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, what
            time.sleep(0.2)


@pytest.fixture
def running(
    kafka_bootstrap: str, moto_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Running]:
    for key, value in moto_server.env().items():  # AWS is moto, as in tests/integration
        monkeypatch.setenv(key, value)
    suffix = uuid.uuid4().hex[:8]
    topic = f"MCL-outage-{suffix}"
    double = GmsDouble(
        kafka_bootstrap, versioned_topic=topic, timeseries_topic=f"MCLT-outage-{suffix}"
    )
    double.start()
    app = ConsumerApp(
        ConsumerSettings(
            bootstrap_servers=kafka_bootstrap,
            schema_registry_url=double.schema_registry_url,
            topic=topic,
            group_id=f"lt-outage-{suffix}",
            dead_letter_topic=f"dlq-outage-{suffix}",
            http_host="127.0.0.1",
            http_port=0,
        ),
        DataHubSettings(
            gms_url=double.url,
            gms_token=double.admin_token,
            executor_id=f"lt-outage-{suffix}",
            timeout_seconds=5.0,
        ),
        MappingSettings(
            mapping_inline=json.dumps(
                {"rules": [{"platform": "athena", "target": {"function": "x"}}]}
            ),
            region="us-east-1",
        ),
        registry=CollectorRegistry(),
    )
    running = Running(app, double, topic)
    try:
        running.wait(lambda: running.get("/readyz").status_code == 200, "never ready")
        yield running
    finally:
        double.set_down(False)
        app.stop()
        running.thread.join(60)
        double.stop()


def _failing(running: Running) -> list[str]:
    response = running.get("/readyz")
    return list(response.json().get("failing", [])) if response.status_code == 503 else []


def test_gms_outage_fails_readiness_not_liveness(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lambda_trigger_consumer.dependencies")
    ready = running.get("/readyz").json()
    assert ready["failing"] == [] and ready["mappingHash"] == running.app.mappings.hash
    assert ready["dependencies"]["gms"]["status"] == "up"

    running.double.set_down(True)  # GMS and its schema registry: connection refused
    running.wait(lambda: _failing(running) == ["gms", "schema_registry"], "readiness did not fail")
    body = running.get("/readyz").json()
    assert body["status"] == "unavailable" and body["assignedPartitions"] >= 1
    gms = body["dependencies"]["gms"]
    assert gms["status"] == "down" and gms["address"] == running.double.url
    assert "refused" in gms["error"].lower() and "DATAHUB_GMS_URL" in gms["hint"]
    assert body["dependencies"]["kafka"]["status"] == "up"

    # Liveness is about the process: still up, and the poll loop keeps turning.
    for _ in range(10):
        live = running.get("/healthz")
        assert live.status_code == 200, live.text
        assert live.json()["loopAgeSeconds"] < 5
        time.sleep(0.3)

    lines = [r.getMessage() for r in caplog.records]
    assert sum(f"DataHub GMS unreachable at {running.double.url} since" in m for m in lines) == 1
    assert sum("Schema registry unreachable at" in m for m in lines) == 1

    running.double.set_down(False)
    running.wait(lambda: running.get("/readyz").status_code == 200, "not ready again")
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith(f"DataHub GMS reachable again at {running.double.url} after") for m in lines
    )


def test_a_record_waiting_for_the_registry_does_not_stall_the_poll_loop(
    running: Running,
) -> None:
    running.double.set_down(True)
    running.wait(lambda: "schema_registry" in _failing(running), "readiness did not fail")
    producer = Producer({"bootstrap.servers": running.app.settings.bootstrap_servers})
    # A run request's key and a Confluent frame with a schema id the consumer has not cached:
    # decoding it needs the (unreachable) registry.
    producer.produce(
        running.topic,
        key=b"urn:li:dataHubExecutionRequest:lt-outage",
        value=b"\x00\x00\x0f\x42\x3f" + b"\x00" * 8,
    )
    assert producer.flush(10) == 0
    running.wait(
        lambda: (
            running.app.metrics.registry.get_sample_value(
                "lambda_trigger_consumer_received_messages_total", {"topic": running.topic}
            )
            == 1
        ),
        "record not received",
    )
    for _ in range(20):
        live = running.get("/healthz")
        assert live.status_code == 200 and live.json()["loopAgeSeconds"] < 5, live.text
        time.sleep(0.5)
