"""The consumer started against a closed Kafka port: a few lines that say so, not a flood.

The real entry point (`python -m lambda_trigger_consumer`) in a child process, its stdout and
stderr captured, with GMS, the schema registry and moto reachable and Kafka not. Counting log
lines is the behaviour under test here (the issue saw 439 librdkafka lines in 20 s).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.idle_proxy import IdleProxy
from devstack.ports import free_port

pytestmark = pytest.mark.integration

WINDOW_SECONDS = 20.0
MAX_LINES_PER_MINUTE = 30  # start-up lines + one per distinct problem per minute


def _consumer_env(stack: Any, kafka: str, http_port: int, group: str) -> dict[str, str]:
    mapping = {"rules": [{"platform": "athena", "target": {"function": "anything"}}]}
    return {
        **os.environ,
        **stack.moto.env(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "SCHEMA_REGISTRY_URL": stack.gms.schema_registry_url,
        "DATAHUB_GMS_URL": stack.gms.url,
        "DATAHUB_GMS_TOKEN": stack.gms.admin_token,
        "LAMBDA_TRIGGER_EXECUTOR_ID": group,
        "LAMBDA_TRIGGER_CONSUMER_GROUP": group,
        "DATAHUB_INGESTION_LAMBDA_MAPPING": json.dumps(mapping),
        "LAMBDA_TRIGGER_CONSUMER_HTTP_HOST": "127.0.0.1",
        "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT": str(http_port),
    }


def _get(port: int, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
    except httpx.HTTPError:
        return None


def _wait(predicate: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}; log:\n{log.read_text()}"
        time.sleep(0.2)


def test_a_closed_kafka_port_gives_one_clear_line_not_a_flood(stack: Any, tmp_path: Path) -> None:
    kafka_port, http_port = free_port(), free_port()
    address = f"127.0.0.1:{kafka_port}"
    log_path = tmp_path / "consumer.log"
    env = _consumer_env(stack, address, http_port, f"lt-unreachable-{kafka_port}")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lambda_trigger_consumer"], env=env, stdout=log, stderr=log
        )
    try:
        _wait(lambda: _get(http_port, "/healthz") is not None, 60, "no health endpoint", log_path)
        started = time.monotonic()
        time.sleep(WINDOW_SECONDS)
        lines = log_path.read_text().splitlines()
        elapsed = time.monotonic() - started

        ready = _get(http_port, "/readyz")
        live = _get(http_port, "/healthz")
        assert proc.poll() is None, "\n".join(lines)

        # The project's own line, once, with what, where, since when and what to check.
        ours = [line for line in lines if f"Kafka unreachable at {address} since" in line]
        assert len(ours) == 1, "\n".join(lines)
        assert re.search(
            rf"Kafka unreachable at {re.escape(address)} since \d\d:\d\d:\d\d UTC: .*"
            r"Connection refused; check KAFKA_BOOTSTRAP_SERVERS",
            ours[0],
        ), ours[0]
        # librdkafka's reconnect failures: de-duplicated, not one per attempt.
        fail_lines = [line for line in lines if "Connection refused" in line]
        assert len(fail_lines) <= 3, "\n".join(lines)
        assert len(lines) <= MAX_LINES_PER_MINUTE * max(elapsed, 60) / 60, "\n".join(lines)

        # Liveness: the process is fine. Readiness: names what is missing.
        assert live is not None and live.status_code == 200, live
        assert ready is not None and ready.status_code == 503
        body = ready.json()
        assert body["failing"] == ["kafka"]
        kafka = body["dependencies"]["kafka"]
        assert kafka["status"] == "down" and kafka["address"] == address
        assert "Connection refused" in kafka["error"]
        assert body["dependencies"]["gms"]["status"] == "up"
        assert body["dependencies"]["schema_registry"]["status"] == "up"
        metrics = _get(http_port, "/metrics")
        assert metrics is not None
        assert 'lambda_trigger_consumer_dependency_up{dependency="kafka"} 0.0' in metrics.text
        assert 'lambda_trigger_consumer_dependency_up{dependency="gms"} 1.0' in metrics.text

        # Kafka appears on that port: one recovery line with the outage's length.
        host, port = stack.kafka_bootstrap.rsplit(":", 1)
        with IdleProxy(host, int(port), idle_timeout=None, port=kafka_port):
            _wait(
                lambda: "Kafka reachable again" in log_path.read_text(),
                60,
                "no recovery line",
                log_path,
            )
            recovered = [
                line for line in log_path.read_text().splitlines() if "reachable again" in line
            ]
            assert len(recovered) == 1
            assert re.search(
                rf"Kafka reachable again at {re.escape(address)} after \d+s unreachable",
                recovered[0],
            )
            _wait(
                lambda: (r := _get(http_port, "/readyz")) is not None and r.status_code == 200,
                60,
                "not ready after Kafka came back",
                log_path,
            )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
