"""Issue 19, item 5: the api's findings of the second review, each attacked on the real parts
(uvicorn where it matters, the GMS double, real concurrency)."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from lambda_trigger.contract import DataHubStatus, RunRequest, RunResult, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings
from lambda_trigger_api.app import create_app

from .conftest import POLY, SIP, Env, bearer, make_api
from .live_api import free_port, raw_request, serve

pytestmark = pytest.mark.integration


def _app(env: Env, **settings: Any) -> Any:
    return create_app(
        ApiSettings(**settings),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )


def _user(env: Env, name: str, *, manage_ingestion: bool = False) -> tuple[str, str]:
    urn = f"urn:li:corpuser:{name}-{uuid.uuid4().hex[:6]}"
    token = f"token-{urn}"
    env.gms.add_token(token, urn, name, manage_ingestion=manage_ingestion)
    return urn, token


def _write_as(env: Env, token: str, claimed_actor: str | None, dataset: str = SIP) -> str:
    """A run request written with someone's own token (SDK, CLI): its run id."""
    request = RunRequest(
        run_id=new_run_id(),
        dataset_urn=dataset,
        executor_id=env.executor_id,
        source_type=SourceType.SDK.value,
        requested_at_ms=now_ms(),
        actor_urn=claimed_actor,
    )
    client = DataHubClient(env.datahub_settings(token=token))
    try:
        client.write_request(request)
    finally:
        client.close()
    return request.run_id


def _series(metrics_text: str, name: str) -> list[str]:
    return [line for line in metrics_text.splitlines() if line.startswith(name + "{")]


# --- metrics ----------------------------------------------------------------------------------


def test_a_flood_of_made_up_methods_does_not_grow_metrics(env: Env) -> None:
    """300 requests with distinct 8,000-character methods (h11 and nginx pass any token) to
    real routes and junk paths: the method label is `other`, the route a template or `other`."""
    with serve(_app(env)) as url:
        before = httpx.get(f"{url}/metrics").text
        for i in range(300):
            method = ("X" * 7990 + f"{i:010d}").encode()
            path = (b"/api/ingestion/run", b"/api/ingestion/runs/r" + str(i).encode(), b"/x")[i % 3]
            status = raw_request(
                url, method + b" " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            assert status.startswith(b"HTTP/1.1 "), status
        after = httpx.get(f"{url}/metrics").text
    series = _series(after, "lambda_trigger_api_requests_total")
    assert len(series) <= 10, series[:5]
    assert all(len(line) < 300 for line in series)
    assert "XXXXXXXX" not in after
    assert len(after) < len(before) + 20_000, (len(before), len(after))
    assert any('method="other"' in line for line in series)


# --- rate limit -------------------------------------------------------------------------------


def test_twelve_concurrent_runs_against_a_limit_of_two_start_exactly_two(env: Env) -> None:
    carol, token = _user(env, "carol", manage_ingestion=True)
    barrier = threading.Barrier(12)
    statuses: list[int] = []
    lock = threading.Lock()
    with serve(_app(env, rate_limit_runs=2, rate_limit_window_seconds=3600)) as url:

        def start(i: int) -> None:
            with httpx.Client(timeout=60) as client:
                barrier.wait()
                response = client.post(
                    f"{url}/api/ingestion/run",
                    json={"datasetUrn": SIP if i % 2 else POLY},
                    headers=bearer(token),
                )
            with lock:
                statuses.append(response.status_code)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert sorted(statuses) == [202, 202] + [429] * 10, statuses
    written = [
        urn
        for urn in env.gms.store.urns()
        if urn.startswith("urn:li:dataHubExecutionRequest:")
        and (env.gms.get_aspect(urn, "dataHubExecutionRequestInput") or {}).get("executorId")
        == env.executor_id
        and (env.gms.get_aspect(urn, "dataHubExecutionRequestInput") or {}).get("actorUrn") == carol
    ]
    assert len(written) == 2


def test_a_refused_start_hands_its_slot_back(env: Env) -> None:
    """A start that writes nothing (404: no such dataset) does not use up the limit."""
    _carol, token = _user(env, "carol", manage_ingestion=True)
    missing = "urn:li:dataset:(urn:li:dataPlatform:hive,no_such_table,PROD)"
    with make_api(env, rate_limit_runs=1, rate_limit_window_seconds=3600) as api:
        for _ in range(3):
            answer = api.post(
                "/api/ingestion/run", json={"datasetUrn": missing}, headers=bearer(token)
            )
            assert answer.status_code == 404, answer.text
        assert (
            api.post(
                "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(token)
            ).status_code
            == 202
        )
        assert (
            api.post(
                "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(token)
            ).status_code
            == 429
        )


# --- CSRF ---------------------------------------------------------------------------------------


def test_a_cross_site_form_cancel_is_refused(env: Env) -> None:
    """A page on another site posts a form to cancel alice's run with her session cookie."""
    cookie = f"PLAY_SESSION=session-{uuid.uuid4().hex}"
    env.gms.add_session_cookie(cookie, "urn:li:corpuser:alice", "alice", manage_ingestion=True)
    with make_api(env) as api:
        started = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["runId"]
        path = f"/api/ingestion/runs/{run_id}/cancel"
        evil = "https://evil.example"
        form = api.post(
            path,
            content="x=1",
            headers={
                "Cookie": cookie,
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": evil,
            },
        )
        text_plain = api.post(
            path,
            content="{}",
            headers={"Cookie": cookie, "Content-Type": "text/plain", "Origin": evil},
        )
        json_cross = api.post(
            path, json={}, headers={"Cookie": cookie, "Origin": evil, "Referer": f"{evil}/page"}
        )
        referer_only = api.post(path, json={}, headers={"Cookie": cookie, "Referer": f"{evil}/x"})
        no_origin = api.post(path, json={}, headers={"Cookie": cookie})
        run_cross = api.post(
            "/api/ingestion/run",
            json={"datasetUrn": POLY},
            headers={"Cookie": cookie, "Origin": evil},
        )
        signal = env.gms.get_aspect(
            f"urn:li:dataHubExecutionRequest:{run_id}", "dataHubExecutionRequestSignal"
        )
        assert signal is None, signal
        same_site = api.post(
            path, json={}, headers={"Cookie": cookie, "Origin": "http://testserver"}
        )
    assert form.status_code == 415 and form.json()["error"] == "unsupported_media_type"
    assert text_plain.status_code == 415
    for refused in (json_cross, referer_only, no_origin, run_cross):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "cross_site_refused"
    assert same_site.status_code == 202, same_site.text


# --- /targets activeRun -------------------------------------------------------------------------


def test_active_run_is_shown_only_to_who_may_read_it(env: Env) -> None:
    with make_api(env) as api:
        started = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["runId"]
        client = env.datahub()
        try:
            assert client.claim(run_id, RunResult(DataHubStatus.RUNNING, now_ms(), "running")).ours
        finally:
            client.close()
        alice = api.get(
            "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
        bob = api.get(
            "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["bob"])
        )
        bob_reads = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["bob"]))
    assert alice.json()["activeRun"]["runId"] == run_id
    assert alice.json()["activeRun"]["requestedBy"] == "urn:li:corpuser:alice"
    assert bob_reads.status_code == 403
    assert bob.status_code == 200 and bob.json()["activeRun"] is None
    assert run_id not in bob.text and "urn:li:corpuser:alice" not in bob.text


# --- GET /runs ----------------------------------------------------------------------------------


def test_runs_are_paged_batched_and_only_the_callers_own(env: Env) -> None:
    bob = "urn:li:corpuser:bob"
    bob_token = env.users["bob"]  # signed in, no run privilege
    mallory, mallory_token = _user(env, "mallory")
    bobs = [_write_as(env, bob_token, bob) for _ in range(3)]
    forged = _write_as(env, mallory_token, bob)  # mallory claims to be bob
    with make_api(env, rate_limit_runs=0) as api:
        alices = []
        for _ in range(5):
            answer = api.post(
                "/api/ingestion/run", json={"datasetUrn": POLY}, headers=bearer(env.users["alice"])
            )
            assert answer.status_code == 202, answer.text
            alices.append(answer.json()["runId"])
        everyone = set(bobs + alices + [forged])

        api.get("/api/ingestion/runs", headers=bearer(env.users["alice"]))  # warm: service actor
        calls: list[int] = []
        pages: list[list[dict[str, Any]]] = []
        cursor = None
        for _ in range(10):
            before = env.gms.request_count()
            params: dict[str, Any] = {"limit": 4}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/api/ingestion/runs", params=params, headers=bearer(env.users["alice"]))
            calls.append(env.gms.request_count() - before)
            assert page.status_code == 200, page.text
            pages.append(page.json()["runs"])
            cursor = page.json()["nextCursor"]
            if cursor is None:
                break
        before = env.gms.request_count()
        big = api.get(
            "/api/ingestion/runs", params={"limit": 100}, headers=bearer(env.users["alice"])
        )
        big_calls = env.gms.request_count() - before

        bob_page = api.get("/api/ingestion/runs", headers=bearer(bob_token))
        bad_cursor = api.get(
            "/api/ingestion/runs",
            params={"cursor": "bm90LWEtY3Vyc29y"},
            headers=bearer(env.users["alice"]),
        )
        too_many = api.get(
            "/api/ingestion/runs", params={"limit": 1000}, headers=bearer(env.users["alice"])
        )
    # Paged: 4 per page, newest first, every run once.
    seen = [run["runId"] for page in pages for run in page]
    assert all(len(page) <= 4 for page in pages) and len(pages) >= 3
    assert set(seen) == everyone and len(seen) == len(everyone)
    requested = [run["requestedAt"] for page in pages for run in page]
    assert requested == sorted(requested, reverse=True)
    # One search and one batch read per page, whatever its size (+1: identifying the caller).
    assert all(n <= 3 for n in calls), calls
    assert big_calls <= 3 and len(big.json()["runs"]) == len(everyone)
    # Bob sees his own runs only: not alice's, not the one mallory forged in his name.
    assert bob_page.status_code == 200, bob_page.text
    assert {run["runId"] for run in bob_page.json()["runs"]} == set(bobs)
    assert all(run["requestedBy"] == bob for run in bob_page.json()["runs"])
    # The forged run is shown as mallory's.
    by_id = {run["runId"]: run for run in big.json()["runs"]}
    assert by_id[forged]["requestedBy"] == mallory
    assert bad_cursor.status_code == 400 and bad_cursor.json()["error"] == "invalid_request"
    assert too_many.status_code == 400


# --- forged actorUrn ------------------------------------------------------------------------------


def test_a_forged_actor_urn_is_neither_shown_nor_trusted_for_reading(env: Env) -> None:
    """Mallory writes a request claiming `actorUrn: alice`. Alice is not its requester (she may
    not read it through being named), and anyone who may read it sees mallory."""
    mallory, mallory_token = _user(env, "mallory")
    eve, eve_token = _user(env, "eve")  # no run privilege either
    run_id = _write_as(env, mallory_token, eve)
    with make_api(env) as api:
        as_eve = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(eve_token))
        as_mallory = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(mallory_token))
        as_admin = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["alice"]))
    assert as_eve.status_code == 403, as_eve.text
    assert as_mallory.status_code == 200 and as_mallory.json()["requestedBy"] == mallory
    assert as_admin.status_code == 200 and as_admin.json()["requestedBy"] == mallory
    assert eve not in as_admin.text


# --- /metrics, /docs ----------------------------------------------------------------------------


def test_metrics_can_leave_the_api_port_and_docs_are_off(env: Env) -> None:
    port = free_port()
    with make_api(env, metrics_port=port, host="127.0.0.1") as api:
        api.get(
            "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
        on_api = api.get("/metrics")
        separate = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        docs = [api.get(p).status_code for p in ("/docs", "/openapi.json", "/redoc")]
    assert on_api.status_code == 404
    assert separate.status_code == 200
    assert (
        'lambda_trigger_api_requests_total{method="GET",route="/api/ingestion/targets"'
        in separate.text
    )
    assert docs == [404, 404, 404]
    with make_api(env, metrics_enabled=False) as api:
        assert api.get("/metrics").status_code == 404
    with make_api(env, docs_enabled=True) as api:
        assert api.get("/openapi.json").status_code == 200
        assert api.get("/metrics").status_code == 200  # the default: on the api port


# --- invalid UTF-8 in the URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "datasetUrn=urn:li:dataset:(urn:li:dataPlatform:hive,a%ED%A0%80b,PROD)",  # a surrogate
        "datasetUrn=urn:li:dataset:(urn:li:dataPlatform:hive,%FF%FE,PROD)",
        "datasetUrn=" + SIP + "&x=%C3",
    ],
)
def test_invalid_utf8_in_the_query_string_is_400(env: Env, query: str) -> None:
    with serve(_app(env)) as url:
        answer = httpx.get(
            f"{url}/api/ingestion/targets?{query}", headers=bearer(env.users["alice"]), timeout=30
        )
        body_twin = httpx.post(
            f"{url}/api/ingestion/run",
            content=b'{"datasetUrn": "urn:li:dataset:(urn:li:dataPlatform:hive,a\xed\xa0\x80b,PROD)"}',
            headers={**bearer(env.users["alice"]), "Content-Type": "application/json"},
            timeout=30,
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert body_twin.status_code == 400  # the same bytes in a body: already 400


def test_valid_utf8_in_the_query_string_is_accepted(env: Env) -> None:
    with serve(_app(env)) as url:
        answer = httpx.get(
            f"{url}/api/ingestion/targets",
            params={"datasetUrn": "urn:li:dataset:(urn:li:dataPlatform:hive,Straße_ü,PROD)"},
            headers=bearer(env.users["alice"]),
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    assert re.search(r'"available":\s*false', answer.text)
