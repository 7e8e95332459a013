"""Schema registries as DataHub runs them, end to end: a button click (POST /run) through GMS
with SCHEMA_REGISTRY_TYPE=AWS_GLUE (moto's Glue registry), and through a Confluent-compatible
registry that wants basic auth, whose password must show nowhere: no log line, no metric, no
probe answer. A wrong password is one dependency line naming the setting, and the request
written meanwhile waits (blocked partition) and runs once the password is right.

Each test has a GMS double of its own (own MCL topic), since the registry type is GMS's.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devstack.gms_double import GmsDouble
from lambda_trigger.settings import ApiSettings, ConsumerSettings
from lambda_trigger_api.app import create_app
from lambda_trigger_consumer.app import ConsumerApp

from .conftest import SIP, Env, RunningConsumer, bearer

pytestmark = pytest.mark.integration

PASSWORD = f"sr-Pw-{uuid.uuid4().hex}"  # unique: any occurrence in output is a leak
USER = "sr-api-key"


@pytest.fixture
def own_gms(env: Env) -> Iterator[Callable[..., Env]]:
    """`own_gms(**GmsDouble kwargs)`: an Env whose GMS is a new double on its own MCL topic,
    knowing the test's users."""
    doubles: list[GmsDouble] = []

    def make(**kwargs: Any) -> Env:
        suffix = uuid.uuid4().hex[:8]
        double = GmsDouble(
            env.stack.kafka_bootstrap,
            versioned_topic=f"MetadataChangeLog_Versioned_v1-{suffix}",
            timeseries_topic=f"MetadataChangeLog_Timeseries_v1-{suffix}",
            versioned_partitions=1,
            **kwargs,
        )
        double.start()
        doubles.append(double)
        double.add_token(env.users["alice"], "urn:li:corpuser:alice", "alice", True)
        return dataclasses.replace(env, stack=dataclasses.replace(env.stack, gms=double))

    yield make
    for double in doubles:
        double.stop()


def _consumer(e: Env, **settings: Any) -> RunningConsumer:
    app = ConsumerApp(
        ConsumerSettings(
            bootstrap_servers=e.stack.kafka_bootstrap,
            topic=e.gms.versioned_topic,
            group_id=e.group_id,
            dead_letter_topic=f"dlq-{e.executor_id}",
            runs_topic=f"runs-{e.executor_id}",
            http_host="127.0.0.1",
            http_port=0,
            commit_interval_seconds=0.2,
            dependency_probe_seconds=0.5,
            **settings,
        ),
        e.datahub_settings(),
        e.mapping_settings(),
        registry=CollectorRegistry(),
    )
    return RunningConsumer(app)


def _click(e: Env) -> str:
    """The button: POST /api/ingestion/run on the api, as the browser does."""
    app = create_app(
        ApiSettings(), e.datahub_settings(), e.mapping_settings(), registry=CollectorRegistry()
    )
    with TestClient(app) as api:
        response = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(e.users["alice"])
        )
    assert response.status_code == 202, response.text
    return str(response.json()["runId"])


def _probes(running: RunningConsumer) -> str:
    base = f"http://127.0.0.1:{running.app.health.port}"
    return "\n".join(
        httpx.get(f"{base}{path}").text for path in ("/readyz", "/healthz", "/metrics")
    )


def _stop(running: RunningConsumer) -> None:
    if running.thread.is_alive():
        running.stop()


def test_glue_framed_button_click_ends_success(env: Env, own_gms: Callable[..., Env]) -> None:
    e = own_gms(
        schema_registry_type="AWS_GLUE",
        glue_endpoint_url=env.moto.endpoint_url,
        glue_registry_name=f"datahub-{uuid.uuid4().hex[:8]}",
    )
    running = _consumer(e, schema_registry_type="AWS_GLUE", glue_registry_region="us-east-1")
    try:
        running.wait_assigned()
        e.moto.queue_result(e.functions["sip"], payload={"rows": 7})
        run_id = _click(e)
        result = e.wait_status(run_id, {"SUCCESS", "FAILURE"}, timeout=60)
        assert result.status == "SUCCESS", result.report
        assert len(e.moto.invocations(e.functions["sip"])) == 1
        # It really went through Glue framing: header version 3, no compression, and a
        # version id that moto's Glue knows as the topic's MetadataChangeLog schema.
        request_mcl = next(
            m for m in e.gms.mcl_log() if m.key == f"urn:li:dataHubExecutionRequest:{run_id}"
        )
        assert request_mcl.raw[:2] == b"\x03\x00"
        version_id = str(uuid.UUID(bytes=request_mcl.raw[2:18]))
        glue = e.moto.client("glue")
        version = glue.get_schema_version(SchemaVersionId=version_id)
        assert version["SchemaArn"].endswith(f"/{e.gms.versioned_topic}")
        assert running.metric("lambda_trigger_consumer_decode_failures_total") == 0
        ready = httpx.get(f"http://127.0.0.1:{running.app.health.port}/readyz").json()
        assert ready["dependencies"]["schema_registry"]["status"] == "up"
        assert ready["dependencies"]["schema_registry"]["address"].startswith("AWS Glue at ")
    finally:
        _stop(running)


def test_authenticated_registry_run_succeeds_and_the_password_shows_nowhere(
    own_gms: Callable[..., Env],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    for name in ("lambda_trigger", "lambda_trigger_consumer", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    e = own_gms(schema_registry_user_info=f"{USER}:{PASSWORD}")
    # Anonymous: refused. So the SUCCESS below is the credentials' doing.
    assert httpx.get(f"{e.gms.schema_registry_url}subjects").status_code == 401
    # The credentials the way people first write them: in the URL.
    url = e.gms.schema_registry_url.replace("http://", f"http://{USER}:{PASSWORD}@")
    running = _consumer(e, schema_registry_type="KAFKA", schema_registry_url=url)
    seen: list[str] = []
    try:
        running.wait_assigned()
        e.moto.queue_result(e.functions["sip"], payload={"rows": 1})
        run_id = _click(e)
        result = e.wait_status(run_id, {"SUCCESS", "FAILURE"}, timeout=60)
        assert result.status == "SUCCESS", result.report
        seen.append(_probes(running))
        ready = httpx.get(f"http://127.0.0.1:{running.app.health.port}/readyz").json()
        assert ready["dependencies"]["schema_registry"] == {
            "status": "up",
            "address": e.gms.schema_registry_url,  # without the user info
            "since": ready["dependencies"]["schema_registry"]["since"],
        }
    finally:
        _stop(running)
    lines = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert len(lines) > 5  # the capture works: the consumer did log
    out = capfd.readouterr()
    for text in [*lines, *seen, out.out, out.err, str(result.report), repr(running.app.settings)]:
        assert PASSWORD not in text


def test_wrong_password_is_one_line_naming_the_setting_and_the_request_waits(
    own_gms: Callable[..., Env],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    e = own_gms(schema_registry_user_info=f"{USER}:{PASSWORD}")
    wrong = f"wrong-{PASSWORD}"
    running = _consumer(
        e,
        schema_registry_type="KAFKA",
        schema_registry_url=e.gms.schema_registry_url,
        schema_registry_user_info=f"{USER}:{wrong}",
    )
    try:
        running.wait_assigned()
        e.moto.queue_result(e.functions["sip"], payload={"rows": 2})
        run_id = _click(e)
        deadline = time.monotonic() + 30
        while (
            running.metric("lambda_trigger_consumer_decode_failures_total", {"reason": "schema"})
            < 2
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        # Blocked and retried (more than once), not dead-lettered, not invoked.
        assert (
            running.metric("lambda_trigger_consumer_decode_failures_total", {"reason": "schema"})
            >= 2
        )
        assert e.moto.invocations(e.functions["sip"]) == []
        time.sleep(2)  # a few more probe rounds: the line must still be one
        probes = _probes(running)
        ready = httpx.get(f"http://127.0.0.1:{running.app.health.port}/readyz")
        assert ready.status_code == 503
        failing = ready.json()["dependencies"]["schema_registry"]
        assert "check LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO" in failing["error"]
    finally:
        _stop(running)
    dependency_lines = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("Schema registry unreachable")
    ]
    assert len(dependency_lines) == 1, dependency_lines
    assert "registry refused the credentials (HTTP 401)" in dependency_lines[0]
    assert "check LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO" in dependency_lines[0]
    out = capfd.readouterr()
    for text in [*(r.getMessage() for r in caplog.records), probes, out.out, out.err]:
        assert wrong not in text and PASSWORD not in text

    # The right password: the request written meanwhile runs, once.
    right = _consumer(
        e,
        schema_registry_type="KAFKA",
        schema_registry_url=e.gms.schema_registry_url,
        schema_registry_user_info=f"{USER}:{PASSWORD}",
    )
    try:
        result = e.wait_status(run_id, {"SUCCESS", "FAILURE"}, timeout=60)
        assert result.status == "SUCCESS", result.report
        assert len(e.moto.invocations(e.functions["sip"])) == 1
    finally:
        _stop(right)
