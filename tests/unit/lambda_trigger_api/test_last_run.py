"""The Runs tab row -> `lastRun` of GET /api/ingestion/targets."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_trigger_api.last_run import _ours, to_last_run

OURS = "urn:li:dataJob:(urn:li:dataFlow:(aws-lambda,earnings,PROD),run)"


def _row(status: str, result: dict[str, Any] | None = None, template: str = OURS) -> dict[str, Any]:
    return {
        "name": "lt-1",
        "created": {"time": 1000, "actor": "urn:li:corpuser:alice"},
        "state": [{"status": status, "result": result, "timestampMillis": 2000}],
        "parentTemplate": {"relationships": [{"entity": {"urn": template}}]},
    }


@pytest.mark.parametrize(
    ("result", "state"),
    [
        ({"resultType": "SUCCESS", "nativeResultType": "SUCCESS"}, "succeeded"),
        ({"resultType": "FAILURE", "nativeResultType": "TIMEOUT"}, "failed"),
        ({"resultType": "SKIPPED", "nativeResultType": "CANCELLED"}, "cancelled"),
        ({"resultType": "SKIPPED", "nativeResultType": None}, "cancelled"),
        ({"resultType": "FAILURE", "nativeResultType": None}, "failed"),
    ],
)
def test_finished_runs(result: dict[str, Any], state: str) -> None:
    assert to_last_run(_row("COMPLETE", result)) == {
        "runId": "lt-1",
        "state": state,
        "startTimeMs": 1000,
        "finishedAtMs": 2000,
        "requestedBy": "urn:li:corpuser:alice",
    }


def test_a_started_run_is_running_without_an_end() -> None:
    last = to_last_run(_row("STARTED"))
    assert last["state"] == "running" and last["finishedAtMs"] is None


def test_only_our_tasks_count() -> None:
    assert _ours(_row("STARTED"))
    assert _ours(_row("STARTED", template="urn:li:dataJob:(urn:li:dataFlow:(aws-sfn,x,PROD),run)"))
    assert not _ours(
        _row("STARTED", template="urn:li:dataJob:(urn:li:dataFlow:(airflow,dag,prod),t)")
    )
    assert not _ours({"name": "x"})
