"""Issue 24 on the local stack (real Kafka, the GMS double, the moto server): a burst of one
dataset does not starve a click on another (step_queue.py), synchronous invokes scale past the
old fixed 8 threads, and Lambda throttling lowers their concurrency (invoke_limit.py).

Order and concurrency are read from moto's own record of each Invoke (when it was called and
when it answered), not from the consumer."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lambda_trigger.settings import ConsumerSettings

from .conftest import POLY, SIP, Env, RunningConsumer, bearer

pytestmark = pytest.mark.integration

DEFAULT_MAX_INFLIGHT = ConsumerSettings.model_fields["max_inflight"].default


def _max_overlap(calls: list[Any]) -> int:
    """The most calls that were running at the same moment (moto's call and answer times)."""
    edges: list[tuple[float, int]] = []
    for call in calls:
        assert call.answered_at is not None, "a call has not answered"
        edges += [(call.timestamp, 1), (call.answered_at, -1)]
    peak = running = 0
    for _at, step in sorted(edges):  # an answer (-1) before a call at the same instant
        running += step
        peak = max(peak, running)
    return peak


def _write_burst(env: Env, count: int) -> list[str]:
    return [env.request(SIP).run_id for _ in range(count)]


def _wait_final(env: Env, run_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for run_id in run_ids:
        env.wait_status(
            run_id, {"SUCCESS", "FAILURE", "TIMEOUT"}, timeout=max(1.0, deadline - time.monotonic())
        )


def test_a_click_is_invoked_before_the_rest_of_another_datasets_burst(
    env: Env, start_consumer: Any, api: TestClient
) -> None:
    burst = 200
    # Few invoke slots and a slow function: the burst's runs queue for a slot.
    for _ in range(burst):
        env.moto.queue_result(env.functions["sip"], payload={"ok": True}, delay_seconds=0.3)
    # Written the SDK way (programmatic), all for one dataset, before the consumer starts:
    # it finds them all at once, as after a scheduler fired them or an outage.
    run_ids = _write_burst(env, burst)
    consumer: RunningConsumer = start_consumer(max_inflight=4, one_active_run=False)
    env.moto.wait_for_invocations(env.functions["sip"], count=12, timeout=120)
    peak_queued = consumer.metric(
        "lambda_trigger_consumer_runs_queued", {"priority": "programmatic"}
    )
    response = api.post(
        "/api/ingestion/run",
        json={"datasetUrn": POLY, "reason": "a click during a burst"},
        headers=bearer(env.users["alice"]),
    )
    assert response.status_code == 202, response.text
    click_id = response.json()["runId"]
    burst_left = burst - len(env.moto.invocations(env.functions["sip"]))
    assert burst_left > 20, "the burst was over before the click: nothing to test"
    click = env.moto.wait_for_invocations(env.functions["poly"], count=1, timeout=120)[0]
    env.wait_status(click_id, {"SUCCESS"}, timeout=60)
    calls = env.moto.wait_for_invocations(env.functions["sip"], count=burst, timeout=240)
    after_click = [c for c in calls if c.timestamp > click.timestamp]
    # First-in first-out, the click went after every burst run queued before it (0 after it).
    assert len(after_click) >= burst_left / 2, (len(after_click), burst_left)
    assert peak_queued > 0  # runs_queued saw the burst waiting
    _wait_final(env, run_ids, timeout=120)


def test_synchronous_invokes_run_more_than_eight_at_once_when_runs_wait(
    env: Env, start_consumer: Any
) -> None:
    runs = 40
    for _ in range(runs):
        env.moto.queue_result(env.functions["sip"], payload={"ok": True}, delay_seconds=5.0)
    run_ids = _write_burst(env, runs)
    consumer = start_consumer(max_inflight=DEFAULT_MAX_INFLIGHT, one_active_run=False)
    peak_gauge = 0.0
    deadline = time.monotonic() + 180
    while len(env.moto.invocations(env.functions["sip"])) < runs:
        assert time.monotonic() < deadline, "the runs were not all invoked"
        peak_gauge = max(
            peak_gauge, consumer.metric("lambda_trigger_consumer_runs_inflight", {"kind": "sync"})
        )
        time.sleep(0.1)
    _wait_final(env, run_ids, timeout=120)
    calls = env.moto.invocations(env.functions["sip"])
    overlap = _max_overlap(calls)
    assert overlap > 8, overlap  # the old fixed pool: at most 8
    assert peak_gauge > 0
    assert consumer.app.driver.invoke_limit.cuts == 0


def test_lambda_throttling_lowers_the_synchronous_invokes_concurrency(
    env: Env, start_consumer: Any
) -> None:
    env.moto.queue_invoke_error(env.functions["sip"])  # 429 TooManyRequestsException
    env.moto.queue_result(env.functions["sip"], payload={"ok": True})
    consumer = start_consumer(max_inflight=DEFAULT_MAX_INFLIGHT)
    limit = consumer.app.driver.invoke_limit
    assert limit.current() == DEFAULT_MAX_INFLIGHT
    request = env.request(SIP)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "SUCCESS"  # retried, not failed
    calls = env.moto.invocations(env.functions["sip"])
    assert [c.outcome for c in calls] == ["invoke_error", "result"]
    assert limit.cuts == 1
    # Halved by the throttle, one success since: far below the bound, climbing back slowly.
    assert limit.current() <= DEFAULT_MAX_INFLIGHT // 2 + 1
    assert consumer.metric("lambda_trigger_consumer_aws_throttles_total", {"api": "Invoke"}) == 1
