"""The api's and the SDK's request writes against each DataHub release behaviour of GMS's
ExecuteIngestionAuthValidator (devstack/gms_double/write_auth.py): STRICT (before v1.3.0, e.g.
v1.2.0) refuses an execution request input without `source.ingestionSource`, and every release
checks EXECUTE on the named source. These run in the normal `pytest tests/integration`; the
whole suite runs strict with GMS_DOUBLE_DATAHUB_VERSION=v1.2.0 (docs/devstack.md)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devstack.gms_double import GmsDouble
from devstack.stack import stack_env
from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient, WriteRejected
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings
from lambda_trigger.source_urns import source_urn
from lambda_trigger_api.app import create_app

from .conftest import SIP, Env, bearer

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class _Stack:
    kafka_bootstrap: str
    gms: GmsDouble
    moto: Any
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, moto_server: Any) -> Iterator[_Stack]:
    """This module's stack: a GMS double behaving as DataHub v1.2.0 (strict validator), on the
    session's broker and MCL topic (like a second GMS replica)."""
    gms = GmsDouble(kafka_bootstrap, datahub_version="v1.2.0").start()
    try:
        yield _Stack(
            kafka_bootstrap, gms, moto_server, stack_env(kafka_bootstrap, gms, moto_server)
        )
    finally:
        gms.stop()


def _api(env: Env, token: str) -> TestClient:
    return TestClient(
        create_app(
            ApiSettings(),
            env.datahub_settings(token),
            env.mapping_settings(),
            registry=CollectorRegistry(),
        )
    )


def _bare_request(env: Env) -> RunRequest:
    """The request as the api wrote it before issue 20: no ingestion source."""
    return RunRequest(new_run_id(), SIP, env.executor_id, SourceType.SDK.value, now_ms())


def test_the_double_behaves_as_the_release_asked_for(env: Env) -> None:
    assert env.gms.execute_validator.value == "strict"
    config = httpx.get(f"{env.gms.url}/config", timeout=10).json()
    assert config["versions"]["acryldata/datahub"]["version"] == "v1.2.0"


def test_strict_refuses_a_request_without_source_with_gms_messages(env: Env) -> None:
    """Both write APIs, as GMS renders the AUTHORIZATION validation exception: Rest.li 422,
    OpenAPI 403 "Authorization Error", message "Couldn't find the ingestion source details"."""
    request = _bare_request(env)
    aspect = request.to_aspect().to_obj()
    headers = {"Authorization": f"Bearer {env.gms.admin_token}"}
    restli = httpx.post(
        f"{env.gms.url}/aspects?action=ingestProposal",
        json={
            "proposal": {
                "entityType": "dataHubExecutionRequest",
                "entityUrn": request.urn,
                "changeType": "UPSERT",
                "aspectName": "dataHubExecutionRequestInput",
                "aspect": {"value": json.dumps(aspect), "contentType": "application/json"},
            }
        },
        headers={**headers, "X-RestLi-Protocol-Version": "2.0.0"},
        timeout=10,
    )
    assert restli.status_code == 422, restli.text
    expected = f"Couldn't find the ingestion source details for {request.urn}"
    assert expected in restli.json()["message"]
    assert "subType=AUTHORIZATION" in restli.json()["message"]

    openapi = httpx.post(
        f"{env.gms.url}/openapi/v3/entity/datahubexecutionrequest?async=false",
        json=[{"urn": request.urn, "dataHubExecutionRequestInput": {"value": aspect}}],
        headers=headers,
        timeout=10,
    )
    assert openapi.status_code == 403, openapi.text
    assert openapi.json()["error"] == "Authorization Error"
    assert expected in openapi.json()["message"]
    assert env.gms.get_aspect(request.urn, "dataHubExecutionRequestInput") is None

    # The SDK path (DataHubClient, i.e. DatahubRestEmitter) sees it as a refused write.
    client = env.datahub()
    try:
        with pytest.raises(WriteRejected, match="Couldn't find the ingestion source details"):
            client.write_request(request)
    finally:
        client.close()


def test_api_click_path_names_the_source_and_runs_on_strict(
    env: Env, api: TestClient, start_consumer: Any
) -> None:
    consumer = start_consumer()
    consumer.wait_assigned()
    response = api.post(
        "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    source = source_urn(env.executor_id, SIP)
    stored = env.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{run_id}", "dataHubExecutionRequestInput"
    )
    assert stored is not None and stored["source"]["ingestionSource"] == source
    # Created on first use, without a schedule, marked as the api's.
    info = env.gms.get_aspect(source, "dataHubIngestionSourceInfo")
    assert info is not None and info["config"]["executorId"] == env.executor_id
    assert info["config"]["extraArgs"]["lambdaTriggerOrigin"] == "first-use"
    assert "schedule" not in info
    env.wait_status(run_id, {"SUCCESS"}, timeout=60)


def test_a_token_without_execute_is_refused_and_a_policy_on_the_source_lets_it(
    env: Env,
) -> None:
    """GMS decides on the api's own token: without MANAGE_INGESTION or EXECUTE on the
    dataset's source the click is refused (502 datahub_rejected, nothing written); a policy
    granting EXECUTE_ENTITY on exactly that source makes it work."""
    source = source_urn(env.executor_id, SIP)
    bare, granted = f"api-bare-{uuid.uuid4().hex[:6]}", f"api-exec-{uuid.uuid4().hex[:6]}"
    env.gms.add_token(bare, "urn:li:corpuser:svc-bare", "svc-bare", manage_ingestion=False)
    env.gms.add_token(
        granted,
        "urn:li:corpuser:svc-exec",
        "svc-exec",
        manage_ingestion=False,
        grants=frozenset({("EXECUTE_ENTITY", source)}),
    )
    before = sum(1 for m in env.gms.mcl_log() if m.key.startswith("urn:li:dataHubExecutionRequest"))
    with _api(env, bare) as api:
        refused = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"] == "datahub_rejected"
    assert "may not execute this dataset's ingestion source" in refused.json()["message"]
    after = sum(1 for m in env.gms.mcl_log() if m.key.startswith("urn:li:dataHubExecutionRequest"))
    assert after == before
    # It could not create the source either (ModifyIngestionSourceAuthValidator).
    assert env.gms.get_aspect(source, "dataHubIngestionSourceInfo") is None

    with _api(env, granted) as api:
        ok = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
    assert ok.status_code == 202, ok.text
    stored = env.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{ok.json()['runId']}", "dataHubExecutionRequestInput"
    )
    assert stored is not None and stored["source"]["ingestionSource"] == source


def test_cli_request_names_the_source_on_strict(env: Env) -> None:
    from lambda_trigger.cli import request_run

    client = DataHubClient(env.datahub_settings())
    try:
        request = request_run(client, SIP, reason="from the CLI")
    finally:
        client.close()
    stored = env.gms.get_aspect(request.urn, "dataHubExecutionRequestInput")
    assert stored is not None
    assert stored["source"]["ingestionSource"] == source_urn(env.executor_id, SIP)


@pytest.fixture(scope="module")
def relaxed_gms(kafka_bootstrap: str) -> Iterator[GmsDouble]:
    """A double behaving as v1.7.0 whatever GMS_DOUBLE_DATAHUB_VERSION says."""
    gms = GmsDouble(kafka_bootstrap, datahub_version="v1.7.0").start()
    try:
        yield gms
    finally:
        gms.stop()


def test_relaxed_release_accepts_no_source_but_checks_execute_on_a_named_one(
    relaxed_gms: GmsDouble,
) -> None:
    """v1.7.0 (relaxed, PR #14253)."""
    gms = relaxed_gms
    assert gms.execute_validator.value == "relaxed"
    executor = f"lt-relaxed-{uuid.uuid4().hex[:6]}"
    bare = RunRequest(new_run_id(), SIP, executor, SourceType.SDK.value, now_ms())
    aspect = bare.to_aspect().to_obj()
    admin = {"Authorization": f"Bearer {gms.admin_token}"}
    url = f"{gms.url}/openapi/v3/entity/datahubexecutionrequest?async=false"
    body = [{"urn": bare.urn, "dataHubExecutionRequestInput": {"value": aspect}}]
    assert httpx.post(url, json=body, headers=admin, timeout=10).status_code == 200

    token = f"no-exec-{uuid.uuid4().hex[:6]}"
    gms.add_token(token, "urn:li:corpuser:no-exec", "no-exec", manage_ingestion=False)
    named = RunRequest(
        new_run_id(),
        SIP,
        executor,
        SourceType.SDK.value,
        now_ms(),
        ingestion_source=source_urn(executor, SIP),
    )
    body = [
        {"urn": named.urn, "dataHubExecutionRequestInput": {"value": named.to_aspect().to_obj()}}
    ]
    refused = httpx.post(url, json=body, headers=bearer(token), timeout=10)
    assert refused.status_code == 403, refused.text
    assert "Doesn't have permissions to execute this Ingestion" in refused.json()["message"]
