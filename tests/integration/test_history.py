"""Runs in DataHub's own places (issue 11): the dataset's Runs tab and the last run on page load."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lambda_trigger.datahub import DataHubClient

from .conftest import SIP, Env, bearer

pytestmark = pytest.mark.integration

# The Runs tab's own query: getDatasetRuns (datahub-web-react/src/graphql/dataset.graphql) with
# the fields of the runResults fragment the double models.
RUNS_TAB_QUERY = """
query getDatasetRuns($urn: String!, $start: Int!, $count: Int!, $direction: RelationshipDirection!) {
  dataset(urn: $urn) {
    runs(start: $start, count: $count, direction: $direction) {
      count start total
      runs {
        urn type created { time actor } name
        state(startTimeMillis: null, endTimeMillis: null, limit: 1) {
          status attempt result { resultType nativeResultType } timestampMillis
        }
        outputs: relationships(input: {types: ["Produces"], direction: OUTGOING, start: 0, count: 20}) {
          relationships { type entity { urn type } }
        }
        parentTemplate: relationships(input: {types: ["InstanceOf"], direction: OUTGOING, start: 0, count: 1}) {
          relationships { entity { urn type } }
        }
        externalUrl
      }
    }
  }
}
"""


def runs_tab(client: DataHubClient, dataset: str) -> list[dict[str, Any]]:
    data = client.graph.execute_graphql(
        RUNS_TAB_QUERY, {"urn": dataset, "start": 0, "count": 20, "direction": "OUTGOING"}
    )
    return list(data["dataset"]["runs"]["runs"])


def wait_run_row(env: Env, dataset: str, run_id: str, status: str) -> dict[str, Any]:
    """The Runs tab row of `run_id` once its latest run event has `status` (history is written
    off the run's path, a moment after the status)."""
    client = env.datahub()
    try:
        deadline = time.monotonic() + 30
        while True:
            rows = [r for r in runs_tab(client, dataset) if r["name"] == run_id]
            if rows and rows[0]["state"] and rows[0]["state"][0]["status"] == status:
                return rows[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} not {status} on the Runs tab: {rows}")
            time.sleep(0.1)
    finally:
        client.close()


def test_button_run_on_runs_tab_and_as_last_run_after_reload(
    env: Env, api: TestClient, start_consumer: Any
) -> None:
    start_consumer()
    response = api.post(
        "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report

    row = wait_run_row(env, SIP, run_id, "COMPLETE")
    assert row["type"] == "DATA_PROCESS_INSTANCE"
    assert row["urn"] == f"urn:li:dataProcessInstance:{run_id}"
    assert row["created"]["actor"] == "urn:li:corpuser:alice"
    assert row["created"]["time"] == result.startTimeMs
    event = row["state"][0]
    assert event["result"] == {"resultType": "SUCCESS", "nativeResultType": "SUCCESS"}
    assert event["timestampMillis"] >= result.startTimeMs
    assert [r["entity"]["urn"] for r in row["outputs"]["relationships"]] == [SIP]
    job = row["parentTemplate"]["relationships"][0]["entity"]
    assert job["type"] == "DATA_JOB"
    assert job["urn"] == "urn:li:dataJob:(urn:li:dataFlow:(aws-lambda,earnings,PROD),run)"
    info = env.gms.get_aspect(job["urn"], "dataJobInfo")
    assert info is not None and info["name"] == "Earnings loader"

    # "last updated" on the dataset: an operation of the load, with who asked for it.
    operation = env.gms.get_aspect(SIP, "operation")
    assert operation is not None
    assert operation["operationType"] == "CUSTOM"
    assert operation["customOperationType"] == "LAMBDA_INGESTION"
    assert operation["actor"] == "urn:li:corpuser:alice"
    assert operation["customProperties"]["runId"] == run_id

    # A page reload: the targets endpoint has the run as the dataset's last run.
    targets = api.get(
        "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    )
    assert targets.status_code == 200, targets.text
    last = targets.json()["lastRun"]
    assert last == {
        "runId": run_id,
        "state": "succeeded",
        "startTimeMs": result.startTimeMs,
        "finishedAtMs": event["timestampMillis"],
        "requestedBy": "urn:li:corpuser:alice",
    }


def test_failed_run_shows_failure_on_runs_tab(
    env: Env, api: TestClient, start_consumer: Any
) -> None:
    start_consumer()
    env.moto.queue_result(env.functions["sip"], function_error="no rows")
    response = api.post(
        "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    )
    run_id = response.json()["runId"]
    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "FAILURE"
    row = wait_run_row(env, SIP, run_id, "COMPLETE")
    assert row["state"][0]["result"] == {"resultType": "FAILURE", "nativeResultType": "FAILURE"}
    last = api.get(
        "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    ).json()["lastRun"]
    assert last["runId"] == run_id and last["state"] == "failed"


def test_history_off_writes_no_process_instance(
    env: Env, api: TestClient, start_consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_TRIGGER_NATIVE_HISTORY", "false")
    consumer = start_consumer()
    run_id = api.post(
        "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
    ).json()["runId"]
    assert env.wait_status(run_id, {"SUCCESS", "FAILURE"}).status == "SUCCESS"
    consumer.app.history.flush()  # had it been on, its writes would be done by now
    client = env.datahub()
    try:
        assert not [r for r in runs_tab(client, SIP) if r["name"] == run_id]
    finally:
        client.close()
    assert (
        env.gms.get_aspect(f"urn:li:dataProcessInstance:{run_id}", "dataProcessInstanceProperties")
        is None
    )
