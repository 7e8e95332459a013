""" "Run with upstream" end to end (docs/triggers.md#run-with-upstream): api -> GMS double ->
MCL on the devstack's Kafka -> consumer (parent and children in the run ledger) -> moto.

A three-level lineage A -> B -> C; C is requested with upstream. The order is what moto
recorded (its Invoke timestamps), the statuses are what DataHub holds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from lambda_trigger.contract import RunRequest, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings
from lambda_trigger.upstream_plan import ARG_PLAN, PLAN_SOURCE_TYPE, child_run_id
from lambda_trigger_api.app import create_app
from tests.integration.conftest import Env, RunningConsumer, bearer
from tests.integration.test_triggers import create, dataset, lineage, wait_for

pytestmark = pytest.mark.integration


@contextmanager
def api_client(env: Env) -> Iterator[TestClient]:
    """An api built after the test set its mapping (the `api` fixture reads it earlier)."""
    app = create_app(
        ApiSettings(), env.datahub_settings(), env.mapping_settings(), registry=CollectorRegistry()
    )
    with TestClient(app) as client:
        yield client


def three_levels(env: Env) -> tuple[str, str, str, dict[str, str]]:
    a, b, c = (dataset(f"{n}_{env.executor_id}") for n in "abc")
    suffix = uuid.uuid4().hex[:6]
    fns = {n: f"lt-up-{n}-{suffix}" for n in "abc"}
    for fn in fns.values():
        env.moto.create_lambda(fn)
    create(env, a)
    create(env, b)
    create(env, c)
    lineage(env, b, a)
    lineage(env, c, b)
    env.mapping = {
        "targets": {n: {"function": fn} for n, fn in fns.items()},
        "rules": [{"dataset": d, "target": n} for n, d in zip("abc", (a, b, c), strict=True)],
    }
    return a, b, c, fns


def status(client: TestClient, env: Env, run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["alice"]))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def run_with_upstream(client: TestClient, env: Env, c: str) -> dict[str, Any]:
    response = client.post(
        "/api/ingestion/run",
        json={"datasetUrn": c, "withUpstream": True, "maxDepth": 3},
        headers=bearer(env.users["alice"]),
    )
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_plan_then_run_in_waves_a_then_b_then_c(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    a, b, c, fns = three_levels(env)
    env.moto.queue_result(fns["a"], {"ok": "a"}, delay_seconds=2)
    env.moto.queue_result(fns["b"], {"ok": "b"}, delay_seconds=2)
    start_consumer()
    with api_client(env) as client:
        shown = client.post(
            "/api/ingestion/plan", json={"datasetUrn": c}, headers=bearer(env.users["alice"])
        )
        assert shown.status_code == 200, shown.text
        plan = shown.json()
        assert [[s["datasetUrn"] for s in w] for w in plan["waves"]] == [[a], [b], [c]]
        assert plan["runs"] == 3 and plan["skipped"] == []
        assert "arn:" not in shown.text and fns["a"] not in shown.text
        assert client.get("/api/ingestion/plan").status_code == 405
        nobody = client.post(
            "/api/ingestion/plan", json={"datasetUrn": c}, headers=bearer(env.users["bob"])
        )
        assert nobody.status_code == 403

        accepted = run_with_upstream(client, env, c)
        assert accepted["plan"]["waves"] == plan["waves"]
        parent = accepted["runId"]
        env.wait_status(parent, {"SUCCESS"}, timeout=120)
        inv = {n: env.moto.invocations(fn) for n, fn in fns.items()}
        assert [len(v) for v in inv.values()] == [1, 1, 1]
        # Each wave started only when the one before had ended (A and B took 2 s each).
        assert inv["b"][0].timestamp >= inv["a"][0].timestamp + 1.5
        assert inv["c"][0].timestamp >= inv["b"][0].timestamp + 1.5
        for n, d in zip("abc", (a, b, c), strict=True):
            assert inv[n][0].payload["runId"] == child_run_id(parent, d)
            assert inv[n][0].payload["datasetUrn"] == d
            assert inv[n][0].payload["requestedBy"] == "urn:li:corpuser:alice"
        answer = status(client, env, parent)
        assert answer["datahubStatus"] == "SUCCESS"
        assert [(ch["datasetUrn"], ch["wave"], ch["status"]) for ch in answer["children"]] == [
            (a, 0, "SUCCESS"),
            (b, 1, "SUCCESS"),
            (c, 2, "SUCCESS"),
        ]
        child = status(client, env, child_run_id(parent, b))
        assert child["datahubStatus"] == "SUCCESS" and "children" not in child


def test_a_failure_in_wave_two_skips_c_and_fails_the_parent(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    a, b, c, fns = three_levels(env)
    env.moto.queue_result(fns["b"], function_error="boom")
    start_consumer()
    with api_client(env) as client:
        parent = run_with_upstream(client, env, c)["runId"]
        env.wait_status(parent, {"FAILURE"}, timeout=120)
        time.sleep(3)  # a wrongly started wave 3 would have reached moto by now
        assert len(env.moto.invocations(fns["a"])) == 1
        assert len(env.moto.invocations(fns["b"])) == 1
        assert env.moto.invocations(fns["c"]) == []
        answer = status(client, env, parent)
        assert answer["state"] == "failed"
        assert [(ch["datasetUrn"], ch["status"]) for ch in answer["children"]] == [
            (a, "SUCCESS"),
            (b, "FAILURE"),
            (c, "SKIPPED"),
        ]
    client_dh = env.datahub()
    try:
        assert client_dh.read_request(child_run_id(parent, c)) is None  # never written
    finally:
        client_dh.close()


def test_cancel_while_wave_one_runs_starts_no_later_wave(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    _a, _b, c, fns = three_levels(env)
    env.moto.queue_result(fns["a"], {"ok": "a"}, delay_seconds=6)
    start_consumer()
    with api_client(env) as client:
        parent = run_with_upstream(client, env, c)["runId"]
        env.moto.wait_for_invocations(fns["a"], count=1, timeout=60)
        wait_for("the parent's RUNNING", lambda: status(client, env, parent)["cancellable"])
        cancel = client.post(
            f"/api/ingestion/runs/{parent}/cancel", json={}, headers=bearer(env.users["alice"])
        )
        assert cancel.status_code == 202, cancel.text
        env.wait_status(parent, {"CANCELLED"}, timeout=60)
        time.sleep(10)  # A ends meanwhile; B would have been invoked by now
        assert env.moto.invocations(fns["b"]) == []
        assert env.moto.invocations(fns["c"]) == []
        answer = status(client, env, parent)
        assert answer["state"] == "cancelled"
        assert [ch["status"] for ch in answer["children"]][1:] == ["CANCELLED", "CANCELLED"]


def test_plan_api_checks_and_skips(env: Env) -> None:
    a, b, c, _fns = three_levels(env)
    x = dataset(f"x_{env.executor_id}")  # an upstream of A that no rule names
    far = dataset(f"far_{env.executor_id}")
    create(env, x)
    lineage(env, a, x)
    lineage(env, x, far)
    alice = bearer(env.users["alice"])
    with api_client(env) as client:
        plan = client.post(
            "/api/ingestion/plan", json={"datasetUrn": c, "maxDepth": 3}, headers=alice
        )
        assert plan.status_code == 200, plan.text
        body = plan.json()
        assert [[s["datasetUrn"] for s in w] for w in body["waves"]] == [[a], [b], [c]]
        assert body["skipped"] == [
            {"datasetUrn": x, "reason": "unmapped"},
            {"datasetUrn": far, "reason": "too_deep"},
        ]
        shallow = client.post(
            "/api/ingestion/plan", json={"datasetUrn": c, "maxDepth": 1}, headers=alice
        ).json()
        assert [[s["datasetUrn"] for s in w] for w in shallow["waves"]] == [[b], [c]]
        assert shallow["skipped"] == [{"datasetUrn": a, "reason": "too_deep"}]
        for bad in (0, 6, "3", True):
            answer = client.post(
                "/api/ingestion/plan", json={"datasetUrn": c, "maxDepth": bad}, headers=alice
            )
            assert answer.status_code == 400, bad
        assert (
            client.post("/api/ingestion/plan", json={"datasetUrn": x}, headers=alice).status_code
            == 422
        )  # the requested dataset itself has no target
        missing = dataset(f"missing_{env.executor_id}")
        assert (
            client.post(
                "/api/ingestion/plan", json={"datasetUrn": missing}, headers=alice
            ).status_code
            == 404
        )
        mixed = client.post(
            "/api/ingestion/run",
            json={
                "datasetUrn": c,
                "withUpstream": True,
                "jobUrn": "urn:li:dataJob:(urn:li:dataFlow:(airflow,f,PROD),t)",
            },
            headers=alice,
        )
        assert mixed.status_code == 400
        plain = client.post("/api/ingestion/run", json={"datasetUrn": c}, headers=alice)
        assert plain.status_code == 202 and "plan" not in plain.json()


def test_a_forged_parent_whose_plan_is_not_the_lineage_runs_nothing(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    """The parent is hostile input: a writer may name any datasets in `upstreamPlan`."""
    a, _b, c, fns = three_levels(env)
    other = dataset(f"other_{env.executor_id}")
    create(env, other)
    env.mapping["rules"].append({"dataset": other, "target": "a"})
    start_consumer()
    forged = RunRequest(
        run_id=new_run_id(),
        dataset_urn=c,
        executor_id=env.executor_id,
        source_type=PLAN_SOURCE_TYPE,
        requested_at_ms=now_ms(),
        actor_urn="urn:li:corpuser:sdk-user",
        extra_args={ARG_PLAN: json.dumps({"maxDepth": 3, "waves": [[other], [a], [c]]})},
    )
    client = env.datahub()
    try:
        client.write_request(forged)
    finally:
        client.close()
    result = env.wait_status(forged.run_id, {"FAILURE"}, timeout=60)
    assert "no longer matches" in result.report
    time.sleep(2)
    assert all(env.moto.invocations(fn) == [] for fn in fns.values())


def test_a_new_consumer_takes_the_plan_over_and_starts_no_child_twice(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    """The ledger holds the parent's progress: a restart mid-plan re-finds wave 1's child by
    its derived id and goes on with wave 2, each function invoked once."""
    a, b, c, fns = three_levels(env)
    env.moto.queue_result(fns["a"], {"ok": "a"}, delay_seconds=4)
    first = start_consumer()
    with api_client(env) as client:
        parent = run_with_upstream(client, env, c)["runId"]
    env.moto.wait_for_invocations(fns["a"], count=1, timeout=60)
    first.stop()
    assert env.moto.invocations(fns["b"]) == []
    start_consumer()
    env.wait_status(parent, {"SUCCESS"}, timeout=120)
    assert [len(env.moto.invocations(fn)) for fn in fns.values()] == [1, 1, 1]
    assert env.moto.invocations(fns["b"])[0].payload["runId"] == child_run_id(parent, b)
    assert env.moto.invocations(fns["a"])[0].payload["datasetUrn"] == a


def test_a_parent_written_by_someone_who_may_not_start_runs_runs_nothing(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    """The same writer check as every request: the plan itself is right, its writer is not."""
    _a, _b, c, fns = three_levels(env)
    start_consumer()
    with api_client(env) as api:
        plan = api.post(
            "/api/ingestion/plan", json={"datasetUrn": c}, headers=bearer(env.users["alice"])
        ).json()
    waves = [[s["datasetUrn"] for s in w] for w in plan["waves"]]
    parent = RunRequest(
        run_id=new_run_id(),
        dataset_urn=c,
        executor_id=env.executor_id,
        source_type=PLAN_SOURCE_TYPE,
        requested_at_ms=now_ms(),
        actor_urn="urn:li:corpuser:alice",  # a claim: bob writes it
        extra_args={ARG_PLAN: json.dumps({"maxDepth": 3, "waves": waves})},
    )
    client = DataHubClient(env.datahub_settings(env.users["bob"]))
    try:
        client.write_request(parent)
    finally:
        client.close()
    result = env.wait_status(parent.run_id, {"FAILURE"}, timeout=60)
    assert "not authorised" in result.report
    time.sleep(2)
    assert all(env.moto.invocations(fn) == [] for fn in fns.values())
