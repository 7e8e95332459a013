"""Every run ends: Step Functions and Event Lambda completion, deadlines, cancel, duplicates,
throttling, retried writes, and exceptions after the claim. Real Kafka, moto server, GMS double;
assertions are on what DataHub and the AWS double recorded."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from lambda_trigger.contract import DataHubStatus, RunResult, now_ms
from lambda_trigger.datahub import PreconditionFailed

from .conftest import POLY, SIP, Env

pytestmark = pytest.mark.integration
FAST = {"sync_margin_seconds": 2.0}


def _details(result: Any) -> dict[str, Any]:
    return json.loads(result.structuredReport.serializedValue) if result.structuredReport else {}


def _state_machine(env: Env, **target: Any) -> str:
    name = f"sm-{uuid.uuid4().hex[:8]}"
    arn = env.moto.create_state_machine(name)
    env.mapping["targets"]["earnings"] = {
        "type": "stepfunctions",
        "stateMachineArn": arn,
        "label": "Earnings pipeline",
        **target,
    }
    return arn


def _executions(env: Env, arn: str, run_id: str) -> list[dict[str, Any]]:
    return [e for e in env.moto.executions(arn) if e["name"] == run_id]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("SUCCEEDED", "SUCCESS"), ("FAILED", "FAILURE"), ("TIMED_OUT", "TIMEOUT")],
)
def test_step_functions_run_is_tracked_to_its_end(
    env: Env, start_consumer: Any, outcome: str, expected: str
) -> None:
    arn = _state_machine(env)
    env.moto.queue_execution_result(
        arn,
        outcome,
        output={"rows": 42},
        error="States.TaskFailed",
        cause=f"boom in {arn} at https://internal.example/x",
        delay_seconds=1.5,
    )
    start_consumer()
    request = env.request(SIP)
    env.wait_status(request.run_id, {"RUNNING"})
    result = env.wait_status(request.run_id, {expected}, timeout=60)
    details = _details(result)
    assert details["outcome"] == outcome and details["executionName"] == request.run_id
    assert len(_executions(env, arn, request.run_id)) == 1
    report = result.report or ""
    assert "arn:aws" not in report and "123456789012" not in report and "https://" not in report
    if outcome == "SUCCEEDED":
        assert '"rows": 42' in details["output"]


def test_step_functions_run_past_its_deadline_is_stopped_and_times_out(
    env: Env, start_consumer: Any
) -> None:
    arn = _state_machine(env, maxDurationSeconds=2)
    start_consumer()
    request = env.request(SIP)
    result = env.wait_status(request.run_id, {"TIMEOUT"}, timeout=60)
    (execution,) = _executions(env, arn, request.run_id)
    assert execution["status"] == "ABORTED"  # StopExecution was called
    assert "deadline" in (result.report or "")


def test_cancel_signal_stops_a_step_functions_run(env: Env, start_consumer: Any) -> None:
    arn = _state_machine(env)
    start_consumer()
    request = env.request(SIP)
    env.wait_status(request.run_id, {"RUNNING"})
    deadline = time.monotonic() + 20
    while not _executions(env, arn, request.run_id):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client = env.datahub()
    client.write_signal(request.run_id, env.executor_id, "urn:li:corpuser:alice")
    client.close()
    result = env.wait_status(request.run_id, {"CANCELLED"}, timeout=60)
    assert "cancelled by urn:li:corpuser" in (result.report or "")
    (execution,) = _executions(env, arn, request.run_id)
    assert execution["status"] == "ABORTED"


def test_cancel_before_start_never_invokes(env: Env, start_consumer: Any) -> None:
    request = env.request(POLY)
    client = env.datahub()
    client.write_signal(request.run_id, env.executor_id, "urn:li:corpuser:alice")
    client.close()
    start_consumer()
    result = env.wait_status(request.run_id, {"CANCELLED"}, timeout=60)
    assert _details(result)["started"] is False
    assert env.moto.invocations(env.functions["poly"]) == []


@pytest.mark.parametrize("fails", [False, True])
def test_event_lambda_outcome_comes_from_its_destination(
    env: Env, start_consumer: Any, fails: bool
) -> None:
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    env.moto.set_destinations(env.functions["sip"], queue_arn)
    env.mapping["targets"]["earnings"]["invocationType"] = "Event"
    if fails:
        env.moto.queue_result(env.functions["sip"], function_error="no rows", delay_seconds=1)
    else:
        env.moto.queue_result(env.functions["sip"], payload={"loaded": 7}, delay_seconds=1)
    start_consumer(completion_queue_url=url)
    request = env.request(SIP)
    env.wait_status(request.run_id, {"RUNNING"})
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    (inv,) = env.moto.invocations(env.functions["sip"])
    details = _details(result)
    assert details["requestId"] == inv.request_id
    if fails:
        assert result.status == "FAILURE" and details["outcome"] == "RetriesExhausted"
    else:
        assert result.status == "SUCCESS" and '"loaded": 7' in details["response"]


def test_event_lambda_without_completion_times_out_at_its_deadline(
    env: Env, start_consumer: Any
) -> None:
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    env.moto.set_destinations(env.functions["sip"], queue_arn)
    env.mapping["targets"]["earnings"].update(invocationType="Event", maxDurationSeconds=2)
    env.moto.queue_result(env.functions["sip"], payload={}, delay_seconds=30)  # never in time
    start_consumer(completion_queue_url=url)
    request = env.request(SIP)
    result = env.wait_status(request.run_id, {"TIMEOUT"}, timeout=60)
    assert "no completion record" in (result.report or "")
    assert len(env.moto.invocations(env.functions["sip"])) == 1


def test_second_request_while_one_is_active_ends_duplicate(env: Env, start_consumer: Any) -> None:
    env.moto.queue_result(env.functions["sip"], payload="slow", delay_seconds=3)
    start_consumer()
    first = env.request(SIP)
    env.wait_status(first.run_id, {"RUNNING"})
    second = env.request(SIP)
    result = env.wait_status(second.run_id, {"DUPLICATE"}, timeout=30)
    assert _details(result)["duplicateOf"] == first.run_id
    env.wait_status(first.run_id, {"SUCCESS"}, timeout=30)
    assert len(env.moto.invocations(env.functions["sip"])) == 1
    third = env.request(SIP)  # the first has ended: a new run may start
    env.wait_status(third.run_id, {"SUCCESS"}, timeout=30)


def test_long_throttling_is_waited_out_not_failed(env: Env, start_consumer: Any) -> None:
    for _ in range(12):
        env.moto.queue_invoke_error(env.functions["poly"], status=429)
    start_consumer()
    request = env.request(POLY)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=90)
    assert result.status == "SUCCESS"
    calls = env.moto.invocations(env.functions["poly"])
    assert [c.outcome for c in calls].count("invoke_error") == 12
    assert [c.outcome for c in calls].count("default") == 1


def test_exception_after_the_claim_ends_the_run(env: Env, start_consumer: Any) -> None:
    consumer = start_consumer(**FAST)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("a bug")

    consumer.app.driver._invoker.invoke = broken  # type: ignore[method-assign]
    request = env.request(POLY)
    result = env.wait_status(request.run_id, {"FAILURE"}, timeout=30)
    assert "internal error in the consumer (ValueError)" in (result.report or "")
    assert consumer.metric("lambda_trigger_consumer_unexpected_errors_total") >= 1


def test_retried_claim_and_request_writes_are_recognised(env: Env) -> None:
    """The SDK retries a POST whose answer was lost; the retry meets its own write."""
    client = env.datahub()
    request = env.request(POLY)
    client.write_request(request)  # the same request again: no error, no duplicate
    run_id = request.run_id
    claim = RunResult(DataHubStatus.RUNNING, now_ms(), "claim", details={"claim": "n1"})
    assert client.claim(run_id, claim).ours
    assert client.claim(run_id, claim).ours  # our own claim, read back by its nonce
    other = RunResult(DataHubStatus.RUNNING, now_ms(), "claim", details={"claim": "n2"})
    outcome = client.claim(run_id, other)
    assert not outcome.ours and outcome.stored is not None
    final = RunResult(DataHubStatus.SUCCESS, now_ms(), "done", 5, {"claim": "n1"})
    assert client.write_result(run_id, final)
    assert client.write_result(run_id, final)  # rejected as immutable, read back: ours
    assert not client.write_result(run_id, RunResult(DataHubStatus.FAILURE, now_ms(), "late"))
    with pytest.raises(PreconditionFailed):
        from dataclasses import replace

        client.write_request(replace(request, reason="someone else's"))
    client.close()


# --- the api's side: cancel and the active run -------------------------------------------


def _post_run(api: Any, env: Env, dataset: str) -> Any:
    return api.post(
        "/api/ingestion/run",
        json={"datasetUrn": dataset},
        headers={"Authorization": f"Bearer {env.users['alice']}"},
    )


def test_api_cancel_stops_a_step_functions_run(env: Env, start_consumer: Any, api: Any) -> None:
    arn = _state_machine(env)
    start_consumer()
    run_id = _post_run(api, env, SIP).json()["runId"]
    env.wait_status(run_id, {"RUNNING"})
    alice = {"Authorization": f"Bearer {env.users['alice']}"}
    bob = {"Authorization": f"Bearer {env.users['bob']}"}
    assert api.post(f"/api/ingestion/runs/{run_id}/cancel", json={}, headers=bob).status_code == 403
    assert api.get(f"/api/ingestion/runs/{run_id}", headers=alice).json()["cancellable"] is True
    answer = api.post(f"/api/ingestion/runs/{run_id}/cancel", json={}, headers=alice)
    assert answer.status_code == 202 and answer.json()["status"] == "cancelling"
    env.wait_status(run_id, {"CANCELLED"}, timeout=60)
    run = api.get(f"/api/ingestion/runs/{run_id}", headers=alice).json()
    assert run["state"] == "cancelled" and run["cancellable"] is False
    (execution,) = _executions(env, arn, run_id)
    assert execution["status"] == "ABORTED"
    again = api.post(f"/api/ingestion/runs/{run_id}/cancel", json={}, headers=alice)
    assert again.status_code == 409 and again.json()["error"] == "already_finished"


def test_api_says_a_lambda_cannot_be_cancelled(env: Env, start_consumer: Any, api: Any) -> None:
    env.moto.queue_result(env.functions["sip"], payload="slow", delay_seconds=4)
    start_consumer()
    run_id = _post_run(api, env, SIP).json()["runId"]
    env.wait_status(run_id, {"RUNNING"})
    alice = {"Authorization": f"Bearer {env.users['alice']}"}
    assert api.get(f"/api/ingestion/runs/{run_id}", headers=alice).json()["cancellable"] is False
    answer = api.post(f"/api/ingestion/runs/{run_id}/cancel", json={}, headers=alice)
    assert answer.status_code == 409 and answer.json()["error"] == "not_cancellable"
    env.wait_status(run_id, {"SUCCESS"}, timeout=30)


def test_api_answers_the_active_run_instead_of_starting_another(
    env: Env, start_consumer: Any, api: Any
) -> None:
    env.moto.queue_result(env.functions["sip"], payload="slow", delay_seconds=4)
    start_consumer()
    first = _post_run(api, env, SIP)
    assert first.status_code == 202 and first.json()["alreadyActive"] is False
    run_id = first.json()["runId"]
    env.wait_status(run_id, {"RUNNING"})
    second = _post_run(api, env, SIP)
    assert second.status_code == 200
    assert second.json()["alreadyActive"] is True and second.json()["runId"] == run_id
    alice = {"Authorization": f"Bearer {env.users['alice']}"}
    targets = api.get("/api/ingestion/targets", params={"datasetUrn": SIP}, headers=alice).json()
    assert targets["activeRun"]["runId"] == run_id
    env.wait_status(run_id, {"SUCCESS"}, timeout=30)
    assert len(env.moto.invocations(env.functions["sip"])) == 1


def test_api_lists_recent_runs_to_those_who_may_read_them(
    env: Env, start_consumer: Any, api: Any
) -> None:
    start_consumer()
    run_id = _post_run(api, env, POLY).json()["runId"]
    env.wait_status(run_id, {"SUCCESS"})
    alice = {"Authorization": f"Bearer {env.users['alice']}"}
    bob = {"Authorization": f"Bearer {env.users['bob']}"}
    listed = api.get("/api/ingestion/runs", params={"limit": 10}, headers=alice).json()["runs"]
    assert listed[0]["runId"] == run_id and listed[0]["state"] == "succeeded"
    assert listed[0]["datasetUrn"] == POLY
    mine = api.get(
        "/api/ingestion/runs", params={"limit": 10, "datasetUrn": SIP}, headers=alice
    ).json()["runs"]
    assert run_id not in {r["runId"] for r in mine}
    assert api.get("/api/ingestion/runs", headers=bob).json()["runs"] == []
    assert api.get("/api/ingestion/runs", params={"limit": 0}, headers=alice).status_code == 400
