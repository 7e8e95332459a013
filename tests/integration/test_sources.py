"""Each mapped dataset as a DataHub ingestion source (issue 11): `sources sync`, DataHub's
scheduler firing it (the GMS double's), and the run in the source's history."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from lambda_trigger.mapping import parse_mapping
from lambda_trigger.sources import SOURCE_TYPE, source_urn, sync

from .conftest import POLY, SIP, Env, bearer
from .test_history import wait_run_row

pytestmark = pytest.mark.integration
SYSTEM_ACTOR = "urn:li:corpuser:__datahub_system"

HISTORY_QUERY = """
query history($urn: String!) {
  ingestionSource(urn: $urn) {
    name type
    executions(start: 0, count: 10) {
      total
      executionRequests { id input { task source { type ingestionSource } actorUrn } result { status } }
    }
  }
}
"""


def _scheduled_mapping(env: Env) -> dict[str, Any]:
    mapping = json.loads(json.dumps(env.mapping))
    mapping["rules"][0]["schedule"] = {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    return mapping


def test_sync_is_idempotent_and_removes_sources_of_deleted_rules(env: Env) -> None:
    client = env.datahub()
    try:
        mapping = parse_mapping(_scheduled_mapping(env), "test")
        first = sync(client, mapping, env.executor_id)
        sip, poly = source_urn(env.executor_id, SIP), source_urn(env.executor_id, POLY)
        assert sorted(first.written) == sorted([sip, poly]) and first.deleted == []
        info = env.gms.get_aspect(sip, "dataHubIngestionSourceInfo")
        assert info["type"] == SOURCE_TYPE
        assert info["name"] == "Earnings loader: AwsDataCatalog.financial_data.us_stocks_sip_v2"
        assert info["config"]["executorId"] == env.executor_id
        assert json.loads(info["config"]["recipe"])["source"]["config"] == {
            "target": "earnings",
            "datasetUrn": SIP,
            "datasets": [SIP],
        }
        assert info["schedule"] == {"interval": "30 2 * * *", "timezone": "Europe/Berlin"}
        version = env.gms.aspect_version(sip, "dataHubIngestionSourceInfo")

        again = sync(client, mapping, env.executor_id)
        assert again.deleted == []
        assert env.gms.aspect_version(sip, "dataHubIngestionSourceInfo") == version  # no change

        fewer = _scheduled_mapping(env)
        fewer["rules"] = fewer["rules"][:1]
        result = sync(client, parse_mapping(fewer, "test"), env.executor_id)
        assert result.deleted == [poly]
        assert env.gms.get_aspect(poly, "dataHubIngestionSourceInfo") is None
        assert env.gms.get_aspect(sip, "dataHubIngestionSourceInfo") is not None
    finally:
        client.close()


def test_scheduler_tick_invokes_once_and_source_history_lists_the_run(
    env: Env, api: TestClient, start_consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DataHub's scheduler writes as the system actor: scheduled runs must be allowed for it.
    monkeypatch.setenv("LAMBDA_TRIGGER_ALLOWED_ACTORS", SYSTEM_ACTOR)
    client = env.datahub()
    try:
        sync(client, parse_mapping(_scheduled_mapping(env), "test"), env.executor_id)
    finally:
        client.close()
    start_consumer()
    sip_source = source_urn(env.executor_id, SIP)

    # 02:30 in Berlin is 01:30 UTC in winter: the only minute of the day this source fires.
    # (The double is shared by the session: other tests' sources may fire too.)
    assert sip_source not in env.gms.scheduler.tick(datetime(2026, 1, 15, 2, 30, tzinfo=UTC))
    fired = env.gms.scheduler.tick(datetime(2026, 1, 15, 1, 30, 20, tzinfo=UTC))
    assert sip_source in fired
    assert source_urn(env.executor_id, POLY) not in fired  # no schedule
    # The same minute again: no second request.
    assert sip_source not in env.gms.scheduler.tick(datetime(2026, 1, 15, 1, 30, 50, tzinfo=UTC))
    run_id = fired[sip_source]

    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    invocations = [
        i for i in env.moto.invocations(env.functions["sip"]) if i.payload["runId"] == run_id
    ]
    assert len(invocations) == 1
    assert invocations[0].payload["datasetUrn"] == SIP
    assert invocations[0].payload["requestedBy"] == SYSTEM_ACTOR
    assert env.moto.invocations(env.functions["poly"]) == []

    # The Ingestion page's history of the source lists the run under the source's name.
    client = env.datahub()
    try:
        deadline = time.monotonic() + 30
        while True:
            source = client.graph.execute_graphql(HISTORY_QUERY, {"urn": sip_source})[
                "ingestionSource"
            ]
            rows = source["executions"]["executionRequests"]
            if rows and rows[0]["result"] and rows[0]["result"]["status"] == "SUCCESS":
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.1)
    finally:
        client.close()
    assert source["name"] == "Earnings loader: AwsDataCatalog.financial_data.us_stocks_sip_v2"
    assert [r["id"] for r in rows] == [run_id]
    assert rows[0]["input"]["task"] == "RUN_INGEST"
    assert rows[0]["input"]["source"] == {
        "type": "SCHEDULED_INGESTION_SOURCE",
        "ingestionSource": sip_source,
    }

    # Retention: DataHub's gc keeps a source's requests by the source's own rules, as long as the
    # request still names it (docs/history.md); the consumer never rewrites the input.
    stored = env.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{run_id}", "dataHubExecutionRequestInput"
    )
    assert stored is not None and stored["source"]["ingestionSource"] == sip_source

    # The api tells the run like any other, with the dataset named in the source's recipe.
    status = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["alice"]))
    assert status.status_code == 200, status.text
    assert status.json()["datasetUrn"] == SIP and status.json()["state"] == "succeeded"

    # ... and the dataset's Runs tab has it, as a scheduled run.
    row = wait_run_row(env, SIP, run_id, "COMPLETE")
    assert row["state"][0]["result"]["resultType"] == "SUCCESS"
    props = env.gms.get_aspect(
        f"urn:li:dataProcessInstance:{run_id}", "dataProcessInstanceProperties"
    )
    assert props["type"] == "BATCH_SCHEDULED"
    assert props["customProperties"]["ingestionSource"] == sip_source


RUN_MUTATION = """
mutation run($input: CreateIngestionExecutionRequestInput!) {
  createIngestionExecutionRequest(input: $input)
}
"""
CANCEL_MUTATION = """
mutation cancel($input: CancelIngestionExecutionRequestInput!) {
  cancelIngestionExecutionRequest(input: $input)
}
"""


def _graphql_as(env: Env, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """GMS's GraphQL with a user's token, as the Ingestion page sends it (through the frontend)."""
    response = httpx.post(
        f"{env.gms.url}/api/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_run_button_of_the_ingestion_page_runs_as_the_user(env: Env, start_consumer: Any) -> None:
    """DataHub's Run (createIngestionExecutionRequest) writes as the user: the consumer's writer
    check applies as for a direct SDK write (alice holds manageIngestion in DataHub, but no role
    or group the consumer allows), and without manageIngestion DataHub refuses it."""
    client = env.datahub()
    try:
        sync(client, parse_mapping(env.mapping, "test"), env.executor_id)
    finally:
        client.close()
    start_consumer()
    source = source_urn(env.executor_id, SIP)
    refused = _graphql_as(
        env, env.users["bob"], RUN_MUTATION, {"input": {"ingestionSourceUrn": source}}
    )
    assert refused["errors"][0]["message"].startswith("Unauthorized to perform this action")
    answer = _graphql_as(
        env, env.users["alice"], RUN_MUTATION, {"input": {"ingestionSourceUrn": source}}
    )
    urn = answer["data"]["createIngestionExecutionRequest"]
    run_id = urn.removeprefix("urn:li:dataHubExecutionRequest:")
    stored = env.gms.get_aspect(urn, "dataHubExecutionRequestInput")
    assert stored is not None
    assert stored["source"] == {"type": "MANUAL_INGESTION_SOURCE", "ingestionSource": source}
    assert stored["actorUrn"] == "urn:li:corpuser:alice"
    assert json.loads(stored["args"]["recipe"])["run_id"] == urn  # injectRunId
    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "FAILURE"
    assert "not authorised: urn:li:corpuser:alice may not start runs" in (result.report or "")
    assert env.moto.invocations(env.functions["sip"]) == []


def test_cancel_from_the_ingestion_page_stops_a_scheduled_step_functions_run(
    env: Env, start_consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DataHub's Cancel (CancelIngestionExecutionRequestResolver) on a source run: the consumer
    finds the run's dataset in the source's recipe, stops the execution, ends it CANCELLED, and
    the Runs tab shows it as skipped ("Cancelled" in the UI)."""
    # Alice cancels a run the scheduler requested: like a start, a KILL counts only from someone
    # who may start runs (issue 19; the consumer cannot ask DataHub about her privileges).
    monkeypatch.setenv("LAMBDA_TRIGGER_ALLOWED_ACTORS", f"{SYSTEM_ACTOR},urn:li:corpuser:alice")
    arn = env.moto.create_state_machine(f"sm-{env.executor_id}")
    mapping = _scheduled_mapping(env)
    mapping["targets"]["earnings"] = {
        "type": "stepfunctions",
        "stateMachineArn": arn,
        "label": "Earnings pipeline",
    }
    client = env.datahub()
    try:
        sync(client, parse_mapping(mapping, "test"), env.executor_id)
    finally:
        client.close()
    env.mapping = mapping
    start_consumer()
    source = source_urn(env.executor_id, SIP)
    run_id = env.gms.scheduler.tick(datetime(2026, 7, 1, 0, 30, tzinfo=UTC))[source]  # CEST
    env.wait_status(run_id, {"RUNNING"})
    deadline = time.monotonic() + 20
    while not [e for e in env.moto.executions(arn) if e["name"] == run_id]:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    answer = _graphql_as(
        env,
        env.users["alice"],
        CANCEL_MUTATION,
        {
            "input": {
                "ingestionSourceUrn": source,
                "executionRequestUrn": f"urn:li:dataHubExecutionRequest:{run_id}",
            }
        },
    )
    assert "errors" not in answer, answer
    result = env.wait_status(run_id, {"CANCELLED"}, timeout=60)
    assert "cancelled by urn:li:corpuser:alice" in (result.report or "")
    (execution,) = [e for e in env.moto.executions(arn) if e["name"] == run_id]
    assert execution["status"] == "ABORTED"
    row = wait_run_row(env, SIP, run_id, "COMPLETE")
    assert row["state"][0]["result"] == {"resultType": "SKIPPED", "nativeResultType": "CANCELLED"}
    job = row["parentTemplate"]["relationships"][0]["entity"]["urn"]
    assert job == "urn:li:dataJob:(urn:li:dataFlow:(aws-sfn,earnings,PROD),run)"
