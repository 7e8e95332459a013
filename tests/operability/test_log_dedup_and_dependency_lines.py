"""The pieces behind "say what is wrong, once": the de-duplicating filter, the dependency
monitor's lines and state, the probes against real sockets, and the liveness check."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError
from prometheus_client import CollectorRegistry

from devstack.ports import free_port
from lambda_trigger_consumer.dependencies import (
    DependencyMonitor,
    http_probe,
    register_defaults,
    tcp_probe,
)
from lambda_trigger_consumer.health import liveness, readiness
from lambda_trigger_consumer.kafka_logs import LOGGER_NAME, DedupFilter, KafkaLogging
from lambda_trigger_consumer.metrics import ConsumerMetrics

FAIL = (
    "FAIL [rdkafka#consumer-1] [thrd:localhost:1/bootstrap]: localhost:1/bootstrap: Connect to "
    "ipv4#127.0.0.1:1 failed: Connection refused (after {ms}ms in state CONNECT{sup})"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kafka_log(caplog: pytest.LogCaptureFixture) -> Iterator[logging.Logger]:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    yield logging.getLogger(LOGGER_NAME)


def _fail(ms: int, suppressed: int = 0) -> str:
    sup = f", {suppressed} identical error(s) suppressed" if suppressed else ""
    return FAIL.format(ms=ms, sup=sup)


def test_one_line_per_distinct_message_per_interval_with_a_count(
    kafka_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    KafkaLogging(interval_seconds=60, max_lines=20, clock=clock)
    for i in range(400):  # librdkafka's reconnect loop: one line per attempt
        clock.now += 0.05
        kafka_log.log(logging.ERROR, "%s", _fail(i % 3, suppressed=i % 2))
    kafka_log.warning("another problem")
    assert [r.getMessage() for r in caplog.records] == [_fail(0), "another problem"]

    clock.now += 60  # next interval: printed again, with what was held back
    kafka_log.log(logging.ERROR, "%s", _fail(7))
    assert caplog.records[-1].getMessage() == _fail(7) + " (399 more like it in the last 60 s)"
    kafka_log.log(logging.ERROR, "%s", _fail(8))
    assert len(caplog.records) == 3


def test_at_most_max_lines_distinct_messages_per_interval(
    kafka_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    KafkaLogging(interval_seconds=60, max_lines=5, clock=clock)
    for i in range(50):
        kafka_log.error("distinct problem %d", i)
    assert len(caplog.records) == 5
    clock.now += 61
    kafka_log.error("distinct problem 99")
    assert caplog.records[-1].getMessage() == (
        "distinct problem 99 (45 other librdkafka lines held back)"
    )


def test_levels_are_kept_apart() -> None:
    clock = Clock()
    f = DedupFilter(60, 20, clock)
    rec = logging.LogRecord("x", logging.WARNING, "", 0, "same", None, None)
    err = logging.LogRecord("x", logging.ERROR, "", 0, "same", None, None)
    assert f.filter(rec) and f.filter(err) and not f.filter(rec)


def test_error_callback_marks_kafka_down_and_statistics_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    metrics = ConsumerMetrics(CollectorRegistry())
    deps = DependencyMonitor(metrics.dependency_up)
    deps.register("kafka", "Kafka", "localhost:1", "check KAFKA_BOOTSTRAP_SERVERS")
    kafka = KafkaLogging(deps)
    config = kafka.config()
    assert config["logger"] is kafka.logger and config["statistics.interval.ms"] == 5000

    for _ in range(100):
        kafka.on_error(KafkaError(KafkaError._TRANSPORT, _fail(0, 3)))
    kafka.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert deps.failing() == ["kafka"]
    ours = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(ours) == 1
    assert ours[0].startswith("Kafka unreachable at localhost:1 since ")
    assert ours[0].endswith(
        "localhost:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused; "
        "check KAFKA_BOOTSTRAP_SERVERS"
    )
    assert (
        metrics.registry.get_sample_value(
            "lambda_trigger_consumer_dependency_up", {"dependency": "kafka"}
        )
        == 0
    )

    kafka.on_stats('{"brokers": {"localhost:1/bootstrap": {"state": "UP", "nodeid": -1}}}')
    assert deps.failing() == ["kafka"]  # the bootstrap placeholder is not a broker
    kafka.on_stats('{"brokers": {"b:9092/1": {"state": "UP", "nodeid": 1}}}')
    assert deps.failing() == [] and deps.is_up("kafka") is True
    assert any(
        r.getMessage().startswith("Kafka reachable again at localhost:1 after ")
        for r in caplog.records
    )
    # One broker dropping while another is UP is not "Kafka unreachable".
    kafka.on_error(KafkaError(KafkaError._TRANSPORT, "b:9092/1: Disconnected"))
    assert deps.failing() == []

    # A refused login while a broker is UP: logged with the setting to check, not an outage.
    kafka.on_error(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication failed"))
    assert caplog.records[-1].name == LOGGER_NAME
    assert "SASL authentication failed" in caplog.records[-1].getMessage()
    assert "#sasl-authentication-failed" in caplog.records[-1].getMessage()
    assert deps.failing() == []


def test_monitor_lines_reminders_and_status(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lambda_trigger_consumer.dependencies")
    clock = Clock()
    deps = DependencyMonitor(remind_seconds=300, clock=clock, wall=lambda: 1_795_960_803.0)
    deps.register("gms", "DataHub GMS", "http://gms:8080", "check DATAHUB_GMS_URL")
    assert deps.status() == {
        "failing": [],
        "dependencies": {"gms": {"status": "unknown", "address": "http://gms:8080"}},
    }
    deps.down("gms", "Connection refused")
    clock.now += 100
    deps.down("gms", "Connection refused")  # nothing new to say
    clock.now += 200
    deps.down("gms", "answers HTTP 503")  # reminder after 5 minutes
    clock.now += 13
    status = deps.status()
    assert status["failing"] == ["gms"]
    assert status["dependencies"] == {
        "gms": {
            "status": "down",
            "address": "http://gms:8080",
            "since": "2026-11-29T14:00:03+00:00",
            "error": "answers HTTP 503",
            "hint": "check DATAHUB_GMS_URL",
        }
    }
    deps.up("gms")
    deps.up("gms")
    assert [r.getMessage() for r in caplog.records] == [
        "DataHub GMS unreachable at http://gms:8080 since 14:00:03 UTC: Connection refused; "
        "check DATAHUB_GMS_URL",
        "DataHub GMS still unreachable at http://gms:8080 since 14:00:03 UTC (5m00s): "
        "answers HTTP 503",
        "DataHub GMS reachable again at http://gms:8080 after 5m13s unreachable",
    ]


def test_probes_against_real_sockets() -> None:
    closed = free_port()
    assert tcp_probe(f"http://127.0.0.1:{closed}", timeout=2)() == "Connection refused"
    assert http_probe(f"http://127.0.0.1:{closed}/config", timeout=2)() == "Connection refused"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert tcp_probe(f"http://127.0.0.1:{port}", timeout=2)() is None
        listener.accept()[0].close()  # the probe's connection

        def answer(status: int) -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())

        for status, expected in ((503, "answers HTTP 503"), (404, None)):
            server = threading.Thread(target=answer, args=(status,))
            server.start()
            assert http_probe(f"http://127.0.0.1:{port}/config", timeout=5)() == expected
            server.join()


def test_probe_thread_reports_and_stops() -> None:
    deps = DependencyMonitor()
    deps.register("aws", "AWS", "https://x", "check")
    answers = iter(["no route", None])
    deps.add_probe("aws", lambda: next(answers, None))
    stop = threading.Event()
    thread = deps.start_probes(stop, interval=0.01)
    deadline = time.monotonic() + 10
    while deps.is_up("aws") is not True:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_liveness_counts_the_loop_and_threads_only() -> None:
    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    ok, detail = liveness(time.monotonic(), threads={"watcher": None})
    assert ok and detail == {"loopAgeSeconds": 0.0}
    ok, detail = liveness(time.monotonic() - 61)
    assert not ok
    ok, detail = liveness(time.monotonic(), threads={"dependency-probe": done})
    assert not ok and detail["deadThreads"] == ["dependency-probe"]
    ok, detail = readiness((True, {"a": 1}), (False, {"failing": ["gms"]}))
    assert not ok and detail == {"a": 1, "failing": ["gms"]}


def test_the_aws_probe_goes_to_the_https_proxy_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        deps = DependencyMonitor()
        register_defaults(
            deps,
            kafka="k:9092",
            gms_url="http://127.0.0.1:1",
            schema_registry_url="http://127.0.0.1:1/schema-registry/api/",
            aws_endpoint="https://lambda.eu-west-1.amazonaws.com",
        )
        deps.probe_once()  # no route to AWS from here: only the proxy answers
        assert deps.is_up("aws") is True
        assert deps.failing() == ["gms", "schema_registry"]
        status = deps.status()["dependencies"]
        assert isinstance(status, dict)
        assert status["aws"]["address"] == "https://lambda.eu-west-1.amazonaws.com"


def test_one_http_probe_follows_a_service_down_and_back_on_fresh_connections() -> None:
    """A probe keeps its client (and TLS context) for its life, but no connection: a service
    that went away must show at the next probe, not hide behind a kept-alive socket."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    connections: list[object] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the server would keep the connection open

        def setup(self) -> None:
            connections.append(self.client_address)
            super().setup()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    def serve(port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", port), KeepAlive)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    server = serve(0)
    port = server.server_address[1]
    probe = http_probe(f"http://127.0.0.1:{port}/config", timeout=2)
    assert probe() is None
    assert probe() is None
    assert len(connections) == 2  # one connection a probe
    server.shutdown()
    server.server_close()
    assert probe() == "Connection refused"
    server = serve(port)
    try:
        assert probe() is None
    finally:
        server.shutdown()
        server.server_close()
