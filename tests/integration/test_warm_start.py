"""Issue 25: the consumer and the api report ready only once warm, and the first run after a
start pays for no lazy set-up (no identity lookup, no GMS /config, no schema fetch).

Timing-free: the GMS double is made slower than the services' DataHub timeout, so the
warm-up cannot finish until it is made fast again; what was asked and when is counted at the
double (`requests_seen`), never timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devstack.gms_double.server import SeenRequest
from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings, ConsumerSettings
from lambda_trigger_api.app import create_app
from lambda_trigger_consumer.app import ConsumerApp

from .conftest import SIP, Env, RunningConsumer, bearer

pytestmark = pytest.mark.integration

ME = "{ me { corpUser { urn } } }"  # authorize.py's identity query


def _until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _since(env: Env, mark: int) -> list[SeenRequest]:
    """The requests the GMS double received after request number `mark`."""
    return (
        env.gms.requests_seen()[-(env.gms.request_count() - mark) :]
        if env.gms.request_count() > mark
        else []
    )


@pytest.fixture
def slow_gms(env: Env) -> Iterator[None]:
    yield
    env.gms.reset_faults()


def test_consumer_is_ready_only_when_warm_and_its_first_run_looks_nothing_up(
    env: Env, slow_gms: None
) -> None:
    # Slower than the consumer's DataHub timeout: no warm-up step that needs GMS can succeed.
    env.gms.set_slow(2.0)
    settings = ConsumerSettings(
        bootstrap_servers=env.stack.kafka_bootstrap,
        schema_registry_url=env.gms.schema_registry_url,
        group_id=env.group_id,
        dead_letter_topic=f"dlq-{env.executor_id}",
        runs_topic=f"runs-{env.executor_id}",
        http_host="127.0.0.1",
        http_port=0,
        commit_interval_seconds=0.2,
        auto_offset_reset="latest",
        # One probe at start, none during the run: every /config the double sees later is
        # the consumer's own DataHub client.
        dependency_probe_seconds=3600,
    )
    datahub_settings = env.datahub_settings().model_copy(update={"timeout_seconds": 1.0})
    app = ConsumerApp(
        settings, datahub_settings, env.mapping_settings(), registry=CollectorRegistry()
    )
    running = RunningConsumer(app)
    url = f"http://127.0.0.1:{app.health.port}/readyz"
    try:
        # It has its partitions, and GMS answers its probe, but it is not warm: not ready.
        cold = _until(
            lambda: (r := httpx.get(url, timeout=10)).json().get("assignedPartitions") and r,
            "partitions",
        )
        assert cold.status_code == 503, cold.text
        assert cold.json()["warm"] is False
        assert "identity" in cold.json()["warming"]
        assert cold.json()["failing"] == []

        env.gms.set_slow(0.0)
        ready = _until(lambda: (r := httpx.get(url, timeout=10)).status_code == 200 and r, "ready")
        assert ready.json()["warm"] is True
        # Ready means warm: the identity was asked for (and answered) before that.
        assert any(r.graphql.startswith(ME) for r in env.gms.requests_seen())

        # The first run after the start: the test's own client warmed first, so every request
        # from here on that is not a write or read of the run is the consumer's set-up.
        client = DataHubClient(env.datahub_settings())
        client.warm()
        mark = env.gms.request_count()
        request = RunRequest(
            run_id=new_run_id(),
            dataset_urn=SIP,
            executor_id=env.executor_id,
            source_type=SourceType.SDK.value,
            requested_at_ms=now_ms(),
            actor_urn="urn:li:corpuser:sdk-user",
        )
        client.write_request(request)
        _until(
            lambda: (r := client.read_result(request.run_id)) is not None and r.status == "SUCCESS",
            "SUCCESS",
        )
        client.close()
        during = _since(env, mark)
        assert during, "the double saw none of the run's requests"
        assert not [r for r in during if r.graphql.startswith(ME)], "identity looked up again"
        assert not [r for r in during if r.path == "/config"], "GMS /config fetched by the run"
        assert not [r for r in during if "/schemas/ids/" in r.path], "schema fetched by the run"
        assert len(env.moto.invocations(env.functions["sip"])) == 1
    finally:
        running.stop()


def test_api_is_ready_only_when_warm_and_its_first_run_fetches_no_config(
    env: Env, slow_gms: None
) -> None:
    env.gms.set_slow(2.0)
    app = create_app(
        ApiSettings(),
        env.datahub_settings().model_copy(update={"timeout_seconds": 1.0}),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )
    with TestClient(app) as api:
        cold = api.get("/readyz")
        assert cold.status_code == 503, cold.text
        assert cold.json()["error"] == "warming_up"
        env.gms.set_slow(0.0)
        _until(lambda: api.get("/readyz").status_code == 200, "api ready")
        assert app.state.warmup.done
        mark = env.gms.request_count()
        answer = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
        assert answer.status_code == 202, answer.text
        during = _since(env, mark)
        assert during and not [r for r in during if r.path == "/config"], during
