"""The api's contract against the local stack: every error case, and nothing written on errors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import POLY, SIP, UNMAPPED, Env, bearer

pytestmark = pytest.mark.integration


def _execution_requests(env: Env) -> int:
    return sum(1 for m in env.gms.mcl_log() if m.key.startswith("urn:li:dataHubExecutionRequest:"))


def test_post_writes_the_request_and_answers_202(env: Env, api: TestClient) -> None:
    response = api.post(
        "/api/ingestion/run",
        json={"datasetUrn": SIP, "reason": "late data"},
        headers=bearer(env.users["alice"]),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "started" and body["runId"].startswith("lt-")
    stored = env.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{body['runId']}", "dataHubExecutionRequestInput"
    )
    assert stored is not None
    assert stored["executorId"] == env.executor_id
    assert stored["task"] == "LAMBDA_TRIGGER_RUN"
    assert stored["args"] == {"datasetUrn": SIP, "reason": "late data"}
    assert stored["actorUrn"] == "urn:li:corpuser:alice"
    assert stored["source"]["type"] == "LAMBDA_TRIGGER_API"
    # The browser sees the label, never the function.
    assert env.functions["sip"] not in response.text

    status = api.get(f"/api/ingestion/runs/{body['runId']}", headers=bearer(env.users["alice"]))
    assert status.status_code == 200
    assert status.json()["state"] == "requested"
    assert status.json()["requestedBy"] == "urn:li:corpuser:alice"


@pytest.mark.parametrize(
    ("body", "who", "status", "error"),
    [
        ({"datasetUrn": "not-a-urn"}, "alice", 400, "invalid_request"),
        ({"datasetUrn": "urn:li:corpuser:alice"}, "alice", 400, "invalid_request"),
        ({"datasetUrn": SIP, "jobUrn": "urn:li:dataset:x"}, "alice", 400, "invalid_request"),
        ({}, "alice", 400, "invalid_request"),
        ({"datasetUrn": SIP, "unexpected": 1}, "alice", 400, "invalid_request"),
        (
            {"datasetUrn": "urn:li:dataset:(urn:li:dataPlatform:athena,nope.nothing,PROD)"},
            "alice",
            404,
            "dataset_not_found",
        ),
        ({"datasetUrn": UNMAPPED}, "alice", 422, "no_target"),
        ({"datasetUrn": SIP}, None, 401, "unauthenticated"),
        ({"datasetUrn": SIP}, "unknown-token", 401, "unauthenticated"),
        ({"datasetUrn": SIP}, "bob", 403, "forbidden"),
    ],
)
def test_post_errors_write_nothing(
    env: Env, api: TestClient, body: dict[str, Any], who: str | None, status: int, error: str
) -> None:
    before = _execution_requests(env)
    headers = bearer(env.users.get(who, who)) if who else {}
    response = api.post("/api/ingestion/run", json=body, headers=headers)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["status"] == "failed" and answer["error"] == error and answer["message"]
    assert _execution_requests(env) == before


def test_post_when_datahub_is_down_is_503_and_writes_nothing(env: Env, api: TestClient) -> None:
    before = _execution_requests(env)
    env.gms.set_down(True)
    try:
        response = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
    finally:
        env.gms.set_down(False)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "datahub_unavailable"
    assert _execution_requests(env) == before


def test_non_json_post_is_refused(env: Env, api: TestClient) -> None:
    response = api.post(
        "/api/ingestion/run",
        content=f'{{"datasetUrn": "{SIP}"}}',
        headers={**bearer(env.users["alice"]), "Content-Type": "text/plain"},
    )
    assert response.status_code in (400, 415)
    assert response.json()["status"] == "failed"


def test_cookie_session_identifies_the_browser_user(env: Env, api: TestClient) -> None:
    cookie = f"PLAY_SESSION=session-{env.executor_id}"
    env.gms.add_session_cookie(cookie, "urn:li:corpuser:carol", "carol", manage_ingestion=True)
    # A browser sends its page's Origin on every POST (same-origin check: docs/security-api.md).
    response = api.post(
        "/api/ingestion/run",
        json={"datasetUrn": POLY},
        headers={"Cookie": cookie, "Origin": "http://testserver"},
    )
    assert response.status_code == 202, response.text
    stored = env.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{response.json()['runId']}", "dataHubExecutionRequestInput"
    )
    assert stored is not None and stored["actorUrn"] == "urn:li:corpuser:carol"


def test_targets_tells_label_only(env: Env, api: TestClient) -> None:
    alice = api.get(
        "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    )
    assert alice.status_code == 200
    body = alice.json()
    # The dataset's last run on DataHub's Runs tab: other tests' runs of SIP, if any ran first.
    last = body.pop("lastRun")
    assert last is None or set(last) == {
        "runId",
        "state",
        "startTimeMs",
        "finishedAtMs",
        "requestedBy",
    }
    assert body == {
        "activeRun": None,
        "datasetUrn": SIP,
        "available": True,
        "canRun": True,
        "label": "Earnings loader",
        "reason": None,
        "parameters": None,  # the target declares no run parameters (test_parameters.py)
    }
    assert env.functions["sip"] not in alice.text and "arn:" not in alice.text
    bob = api.get(
        "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["bob"])
    )
    assert bob.json()["available"] is True and bob.json()["canRun"] is False
    none = api.get(
        "/api/ingestion/targets",
        params={"datasetUrn": UNMAPPED},
        headers=bearer(env.users["alice"]),
    )
    assert none.json()["available"] is False and none.json()["label"] is None
    assert api.get("/api/ingestion/targets", params={"datasetUrn": SIP}).status_code == 401
    assert (
        api.get(
            "/api/ingestion/targets", params={"datasetUrn": "x"}, headers=bearer(env.users["alice"])
        ).status_code
        == 400
    )


def test_unknown_run_is_404(env: Env, api: TestClient) -> None:
    for run_id in ("lt-20260101T000000000Z-aaaaaaaaaa", "x", "%2E%2E"):
        response = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["alice"]))
        assert response.status_code == 404
        assert response.json()["error"] == "run_not_found"
    other = api.get("/api/ingestion/nothing-here")
    assert other.status_code == 404 and other.json()["status"] == "failed"


def test_openapi_metrics_and_health(env: Env, api: TestClient) -> None:
    # The document exists; it is served only with LAMBDA_TRIGGER_API_DOCS_ENABLED=true.
    spec = api.app.openapi()  # type: ignore[attr-defined]
    assert "/api/ingestion/run" in spec["paths"] and "/api/ingestion/runs/{run_id}" in spec["paths"]
    assert api.get("/openapi.json").status_code == 404 and api.get("/docs").status_code == 404
    api.get(
        "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    )
    metrics = api.get("/metrics").text
    assert (
        'lambda_trigger_api_requests_total{method="GET",route="/api/ingestion/targets",status_code="200"}'
        in metrics
    )
    assert "lambda_trigger_api_datahub_request_duration_seconds_bucket" in metrics
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    env.gms.set_down(True)
    try:
        assert api.get("/readyz").status_code == 503
    finally:
        env.gms.set_down(False)
