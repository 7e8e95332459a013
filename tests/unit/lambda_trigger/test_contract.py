from __future__ import annotations

import json

import pytest

from lambda_trigger.contract import (
    DataHubStatus,
    InvalidRequestError,
    RunRequest,
    RunResult,
    RunState,
    lambda_payload,
    run_state,
)

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def _request(**kw: object) -> RunRequest:
    base: dict[str, object] = {
        "run_id": "lt-20260101T120000001Z-abcdefghij",
        "dataset_urn": SIP,
        "executor_id": "lambda-trigger",
        "source_type": "LAMBDA_TRIGGER_API",
        "requested_at_ms": 1_700_000_000_000,
        "actor_urn": "urn:li:corpuser:alice",
    }
    base.update(kw)
    return RunRequest(**base)  # type: ignore[arg-type]


def test_request_round_trips_through_the_aspect_json() -> None:
    request = _request(
        job_urn="urn:li:dataJob:(urn:li:dataFlow:(airflow,f,PROD),j)", reason="late data"
    )
    aspect = request.to_aspect()
    assert aspect.task == "LAMBDA_TRIGGER_RUN" and aspect.executorId == "lambda-trigger"
    back = RunRequest.from_aspect(request.run_id, aspect.to_obj())
    assert back == request
    assert request.urn == f"urn:li:dataHubExecutionRequest:{request.run_id}"


def test_from_aspect_rejects_bad_dataset() -> None:
    aspect = _request().to_aspect().to_obj()
    aspect["args"]["datasetUrn"] = "urn:li:corpuser:bob"
    with pytest.raises(InvalidRequestError, match="must be a dataset URN"):
        RunRequest.from_aspect("x", aspect)
    del aspect["args"]["datasetUrn"]
    with pytest.raises(InvalidRequestError, match="non-empty string"):
        RunRequest.from_aspect("x", aspect)


def test_payload_fields_cannot_be_overridden_by_static_fields() -> None:
    payload = lambda_payload(_request(), {"runId": "evil", "layer": "bronze"})
    assert payload["runId"] == "lt-20260101T120000001Z-abcdefghij"
    assert payload["layer"] == "bronze"
    assert payload["requestedBy"] == "urn:li:corpuser:alice"
    assert set(payload) >= {
        "runId",
        "datasetUrn",
        "jobUrn",
        "reason",
        "requestedBy",
        "requestedAt",
        "executionRequestUrn",
    }


def test_result_structured_report_is_valid_json() -> None:
    aspect = RunResult(DataHubStatus.FAILURE, 1, "x", 5, {"error": object()}).to_aspect()
    assert aspect.structuredReport is not None
    json.loads(aspect.structuredReport.serializedValue)
    assert aspect.status == "FAILURE" and aspect.durationMs == 5


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (None, RunState.REQUESTED),
        ("RUNNING", RunState.RUNNING),
        ("SUCCESS", RunState.SUCCEEDED),
        ("FAILURE", RunState.FAILED),
        ("TIMEOUT", RunState.FAILED),
        ("CANCELLED", RunState.CANCELLED),
        ("ABORTED", RunState.CANCELLED),
        ("DUPLICATE", RunState.FAILED),
    ],
)
def test_run_state(status: str | None, state: RunState) -> None:
    assert run_state(status) is state
