"""Nothing internal reaches a browser: AWS and DataHub errors carrying an ARN, an account id and
a URL are planted behind every endpoint, and none of them comes out."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_trigger.contract import DataHubStatus, RunResult, now_ms
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import DataHubSettings

from .conftest import LEAK_MESSAGE, POLY, SIP, Env, assert_no_leak, bearer, make_api

pytestmark = pytest.mark.integration


def _failing_settings(env: Env, gms_url: str) -> DataHubSettings:
    return DataHubSettings(
        gms_url=gms_url,
        gms_token="svc",
        frontend_url=gms_url,
        executor_id=env.executor_id,
        timeout_seconds=5.0,
    )


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/ingestion/run", {"json": {"datasetUrn": SIP}}),
        ("GET", "/api/ingestion/targets", {"params": {"datasetUrn": SIP}}),
        ("GET", f"/api/ingestion/runs/{new_run_id()}", {}),
        ("GET", "/readyz", {}),
        ("GET", "/healthz", {}),
    ],
)
@pytest.mark.parametrize("credentials", ["bearer", "cookie"])
def test_gms_errors_never_reach_the_caller(
    env: Env, failing_gms: str, method: str, path: str, kwargs: dict[str, Any], credentials: str
) -> None:
    headers = bearer("good") if credentials == "bearer" else {"Cookie": "PLAY_SESSION=x"}
    with make_api(env, datahub_settings=_failing_settings(env, failing_gms)) as api:
        answer = api.request(method, path, headers=headers, **kwargs)
    assert answer.status_code < 500 or answer.status_code == 503, answer.text
    assert_no_leak(answer.text + str(dict(answer.headers)), failing_gms, "127.0.0.1")


def test_gms_down_answers_503_without_its_url(env: Env) -> None:
    url = "http://127.0.0.1:9"  # discard port: connection refused
    with make_api(env, datahub_settings=_failing_settings(env, url)) as api:
        for answer in (
            api.post("/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer("good")),
            api.get("/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer("t")),
            api.get(f"/api/ingestion/runs/{new_run_id()}", headers=bearer("t")),
            api.get("/readyz"),
        ):
            assert answer.status_code == 503, answer.text
            assert_no_leak(answer.text, url, "127.0.0.1", ":9")


def test_aws_errors_stay_out_of_the_run_report_and_the_api(env: Env, start_consumer: Any) -> None:
    """AWS refuses the Invoke with a message naming a role ARN, an account and an endpoint."""
    start_consumer()
    env.moto.queue_invoke_error(
        env.functions["sip"], status=403, error_type="AccessDeniedException", message=LEAK_MESSAGE
    )
    denied = env.request(SIP)
    # The function itself answers with internals: its excerpt is redacted too.
    env.moto.queue_result(env.functions["poly"], payload={"detail": LEAK_MESSAGE})
    chatty = env.request(POLY)

    result = env.wait_status(denied.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "FAILURE"
    assert "AWS refused the call (AccessDeniedException)" in (result.report or "")
    ok = env.wait_status(chatty.run_id, {"SUCCESS", "FAILURE"})
    assert ok.status == "SUCCESS", ok.report
    for stored in (result, ok):
        assert_no_leak((stored.report or "") + stored.structuredReport.serializedValue)
        assert not any(fn in (stored.report or "") for fn in env.functions.values())

    with make_api(env) as api:
        for run_id in (denied.run_id, chatty.run_id):
            answer = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["alice"]))
            assert answer.status_code == 200, answer.text
            assert_no_leak(answer.text)


def test_a_report_with_internals_from_another_writer_is_redacted(env: Env) -> None:
    """An older consumer (or anyone) wrote AWS text into the report: the api still redacts it."""
    request = env.request(SIP)
    client = env.datahub()
    try:
        client.claim(
            request.run_id,
            RunResult(DataHubStatus.FAILURE, now_ms(), f"could not be invoked: {LEAK_MESSAGE}", 1),
        )
    finally:
        client.close()
    with make_api(env) as api:
        answer = api.get(
            f"/api/ingestion/runs/{request.run_id}", headers=bearer(env.users["alice"])
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"].startswith("could not be invoked")
    assert_no_leak(answer.text)
