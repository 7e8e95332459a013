"""Input limits before any work, and no 5xx for input DataHub refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_trigger.contract import now_ms

from .conftest import SIP, Env, bearer, make_api

pytestmark = pytest.mark.integration

HIVE = "urn:li:dataset:(urn:li:dataPlatform:hive,{},PROD)"


def _shape(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "failed" and body["error"] and body["message"]
    return body


@pytest.fixture
def api(env: Env) -> Iterator[Any]:
    with make_api(env) as client:
        yield client


def test_an_oversized_body_is_refused_before_parsing(env: Env, api: Any) -> None:
    body = json.dumps({"datasetUrn": SIP, "reason": "x" * 17_000})
    answer = api.post(
        "/api/ingestion/run",
        content=body,
        headers={**bearer(env.users["alice"]), "Content-Type": "application/json"},
    )
    assert _shape(answer, 413)["error"] == "body_too_large"
    # Streamed (chunked, no Content-Length): counted as it arrives.
    chunks = (b"x" * 65536 for _ in range(160))  # 10 MB
    streamed = api.post(
        "/api/ingestion/run",
        content=chunks,
        headers={**bearer(env.users["alice"]), "Content-Type": "application/json"},
    )
    _shape(streamed, 413)


@pytest.mark.parametrize(
    "value",
    [
        HIVE.format("a\x00b"),  # NUL
        HIVE.format("a\x1b[31mb"),  # ESC: terminal escape in a log line
        HIVE.format("a\u2028forged log line"),  # LINE SEPARATOR
        HIVE.format("a\u202eb"),  # RIGHT-TO-LEFT OVERRIDE
        HIVE.format("a\ud800b"),  # lone surrogate: cannot be URL-encoded for GMS
    ],
)
def test_control_bidi_and_surrogate_characters_are_refused(env: Env, api: Any, value: str) -> None:
    raw = json.dumps({"datasetUrn": value})  # ensure_ascii: the surrogate travels as \ud800
    answer = api.post(
        "/api/ingestion/run",
        content=raw,
        headers={**bearer(env.users["alice"]), "Content-Type": "application/json"},
    )
    assert _shape(answer, 400)["error"] == "invalid_request"
    reason = api.post(
        "/api/ingestion/run",
        content=json.dumps({"datasetUrn": SIP, "reason": value}),
        headers={**bearer(env.users["alice"]), "Content-Type": "application/json"},
    )
    _shape(reason, 400)
    if "\ud800" not in value:  # a query string cannot carry a lone surrogate at all
        targets = api.get(
            "/api/ingestion/targets",
            params={"datasetUrn": value},
            headers=bearer(env.users["alice"]),
        )
        _shape(targets, 400)


@pytest.mark.parametrize("name", ["a(b", "<img src=x onerror=alert(1)>"])
def test_a_urn_gms_refuses_is_the_callers_problem(env: Env, api: Any, name: str) -> None:
    urn = HIVE.format(name)
    run = api.post(
        "/api/ingestion/run", json={"datasetUrn": urn}, headers=bearer(env.users["alice"])
    )
    targets = api.get(
        "/api/ingestion/targets", params={"datasetUrn": urn}, headers=bearer(env.users["alice"])
    )
    for answer in (run, targets):
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["status"] == "failed"
    # Not counted as a DataHub failure either: DataHub is fine, the input was not.
    metrics = api.get("/metrics").text
    assert 'lambda_trigger_api_datahub_request_failures_total{operation="dataset"} 0.0' in metrics


def test_a_huge_token_is_refused_not_an_outage(env: Env, api: Any) -> None:
    answer = api.get(
        "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer("x" * 100_000)
    )
    assert _shape(answer, 431)["error"] == "header_too_large"


def test_deep_nesting_is_refused(env: Env, api: Any) -> None:
    answer = api.post(
        "/api/ingestion/run",
        content="[" * 8000 + "]" * 8000,
        headers={**bearer(env.users["alice"]), "Content-Type": "application/json"},
    )
    _shape(answer, 400)


def test_method_not_allowed_names_the_allowed_methods(api: Any) -> None:
    answer = api.delete("/api/ingestion/run")
    _shape(answer, 405)
    assert answer.headers["Allow"] == "POST"


def test_a_future_requested_at_does_not_skip_expiry(env: Env, start_consumer: Any) -> None:
    """Written a day ahead, the request would never be "older than an hour": refused."""
    start_consumer()
    request = env.request(SIP, requested_at_ms=now_ms() + 24 * 3600 * 1000)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "FAILURE"
    assert "requestedAt is in the future" in (result.report or "")
    assert env.moto.invocations(env.functions["sip"]) == []
