"""The dataset's last run, read from DataHub the way its own Runs tab reads it.

`GET /api/ingestion/targets` returns it as `lastRun`, so that the button can say "Last run
succeeded 3 h ago by alice" right after a page load. The source is the run history the consumer
writes (consumer/lambda_trigger_consumer/history.py): GraphQL `dataset(urn) { runs(direction:
OUTGOING) }`, the query of DataHub's Runs tab (EntityRunsResolver.java), newest first. Other
tools' runs of the dataset (Airflow, dbt) are on the same tab; ours are the ones whose task is
one of our dataJobs (`urn:li:dataJob:(urn:li:dataFlow:(aws-lambda|aws-sfn,...`).
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from datahub.configuration.common import GraphError, OperationalError

from lambda_trigger.contract import RunState, run_state
from lambda_trigger.datahub import DataHubClient

log = logging.getLogger(__name__)

_OUR_TEMPLATES = (
    "urn:li:dataJob:(urn:li:dataFlow:(aws-lambda,",
    "urn:li:dataJob:(urn:li:dataFlow:(aws-sfn,",
)
_LOOK_AT = 20  # runs of other tools may come first

RUNS_QUERY = """
query lambdaTriggerLastRun($urn: String!, $start: Int!, $count: Int!) {
  dataset(urn: $urn) {
    runs(start: $start, count: $count, direction: OUTGOING) {
      total
      runs {
        urn
        name
        created { time actor }
        state(startTimeMillis: null, endTimeMillis: null, limit: 1) {
          status
          result { resultType nativeResultType }
          timestampMillis
        }
        parentTemplate: relationships(
          input: {types: ["InstanceOf"], direction: OUTGOING, start: 0, count: 1}
        ) {
          relationships { entity { urn } }
        }
      }
    }
  }
}
"""


def _ours(run: dict[str, Any]) -> bool:
    rels = ((run.get("parentTemplate") or {}).get("relationships")) or []
    return any(str((r.get("entity") or {}).get("urn", "")).startswith(_OUR_TEMPLATES) for r in rels)


def to_last_run(run: dict[str, Any]) -> dict[str, Any]:
    """One Runs tab row as the api's `lastRun`."""
    events = run.get("state") or []
    event = events[0] if events else {}
    created = run.get("created") or {}
    if event.get("status") == "COMPLETE":
        result = event.get("result") or {}
        native = result.get("nativeResultType")
        if native:
            state = run_state(native)
        elif result.get("resultType") == "SUCCESS":
            state = RunState.SUCCEEDED
        elif result.get("resultType") == "SKIPPED":
            state = RunState.CANCELLED
        else:
            state = RunState.FAILED
        finished: int | None = event.get("timestampMillis")
    else:
        state, finished = RunState.RUNNING, None
    return {
        "runId": run.get("name"),
        "state": state.value,
        "startTimeMs": created.get("time"),
        "finishedAtMs": finished,
        "requestedBy": created.get("actor"),
    }


def last_run(datahub: DataHubClient, dataset_urn: str) -> dict[str, Any] | None:
    """Best effort: None when there is none, or DataHub did not answer (logged)."""
    try:
        data = datahub.graph.execute_graphql(
            RUNS_QUERY, {"urn": dataset_urn, "start": 0, "count": _LOOK_AT}
        )
    except (requests.RequestException, GraphError, OperationalError) as exc:
        log.warning("last run of %s unknown: %s", dataset_urn, exc)
        return None
    runs = (((data or {}).get("dataset") or {}).get("runs") or {}).get("runs") or []
    for run in runs:
        if isinstance(run, dict) and _ours(run):
            return to_last_run(run)
    return None
