"""Run parameters (issue 22) on every path: the api's checks, the consumer's second check, the
values the Lambda receives, and where they show afterwards (report, Runs tab, GET /runs/{id})."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import (
    ExecutionRequestInputClass,
    ExecutionRequestSourceClass,
)
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from lambda_trigger import cli
from lambda_trigger.contract import now_ms
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings
from lambda_trigger_api.app import create_app

from .conftest import POLY, SIP, Env, bearer

pytestmark = pytest.mark.integration

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "start": {"type": "string", "format": "date", "title": "First day"},
        "until": {"type": "string", "format": "date-time"},
        "mode": {"type": "string", "enum": ["incremental", "full"], "default": "incremental"},
        "partition": {"type": "string", "pattern": "^p[0-9]{2}$", "maxLength": 3},
        "batch": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "dryRun": {"type": "boolean", "default": False},
    },
    "required": ["start"],
}


@pytest.fixture
def penv(env: Env) -> Env:
    """The earnings target declares parameters; the polygon target declares none."""
    env.mapping["targets"]["earnings"]["parameters"] = SCHEMA
    return env


@pytest.fixture
def papi(penv: Env) -> Iterator[TestClient]:
    app = create_app(
        ApiSettings(),
        penv.datahub_settings(),
        penv.mapping_settings(),
        registry=CollectorRegistry(),
    )
    with TestClient(app) as client:
        yield client


def _execution_requests(env: Env) -> int:
    return sum(1 for m in env.gms.mcl_log() if m.key.startswith("urn:li:dataHubExecutionRequest:"))


def _post(env: Env, api: TestClient, dataset: str, parameters: Any) -> Any:
    return api.post(
        "/api/ingestion/run",
        json={"datasetUrn": dataset, "parameters": parameters},
        headers=bearer(env.users["alice"]),
    )


def test_targets_returns_the_schema_for_the_form(penv: Env, papi: TestClient) -> None:
    answer = papi.get(
        "/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer(penv.users["alice"])
    ).json()
    assert answer["parameters"]["properties"] == SCHEMA["properties"]
    assert answer["parameters"]["required"] == ["start"]
    assert answer["parameters"]["additionalProperties"] is False
    other = papi.get(
        "/api/ingestion/targets", params={"datasetUrn": POLY}, headers=bearer(penv.users["alice"])
    ).json()
    assert other["parameters"] is None


def test_every_type_is_accepted_and_stored_with_defaults(penv: Env, papi: TestClient) -> None:
    sent = {
        "start": "2026-01-31",
        "until": "2026-02-01T06:30:00Z",
        "mode": "full",
        "partition": "p07",
        "batch": 10,
        "ratio": 0.25,
        "dryRun": True,
    }
    response = _post(penv, papi, SIP, sent)
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    stored = penv.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{run_id}", "dataHubExecutionRequestInput"
    )
    assert json.loads(stored["args"]["parameters"]) == sent
    status = papi.get(f"/api/ingestion/runs/{run_id}", headers=bearer(penv.users["alice"]))
    assert status.json()["parameters"] == sent

    # Defaults fill what was left out; an integer is a number.
    response = _post(penv, papi, SIP, {"start": "2026-01-01", "ratio": 1})
    assert response.status_code == 202, response.text
    stored = penv.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{response.json()['runId']}",
        "dataHubExecutionRequestInput",
    )
    assert json.loads(stored["args"]["parameters"]) == {
        "start": "2026-01-01",
        "mode": "incremental",
        "batch": 5,
        "ratio": 1,
        "dryRun": False,
    }


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        ({}, "parameters.start", "is required"),
        ({"start": "2026-13-01"}, "parameters.start", "must be a date (YYYY-MM-DD)"),
        ({"start": 5}, "parameters.start", "must be a string"),
        ({"start": "2026-01-01", "until": "tomorrow"}, "parameters.until", "date and time"),
        ({"start": "2026-01-01", "mode": "fast"}, "parameters.mode", "must be one of"),
        ({"start": "2026-01-01", "partition": "x1"}, "parameters.partition", "pattern"),
        ({"start": "2026-01-01", "partition": "p0001"}, "parameters.partition", "at most 3"),
        ({"start": "2026-01-01", "batch": 0}, "parameters.batch", "must be >= 1"),
        ({"start": "2026-01-01", "batch": 1.5}, "parameters.batch", "must be an integer"),
        ({"start": "2026-01-01", "ratio": 2}, "parameters.ratio", "must be <= 1"),
        ({"start": "2026-01-01", "ratio": "0.5"}, "parameters.ratio", "must be a number"),
        ({"start": "2026-01-01", "dryRun": "true"}, "parameters.dryRun", "true or false"),
        ({"start": "2026-01-01", "runId": "x"}, "parameters.runId", "not a parameter"),
        ({"start": "2026-01-01\u0000"}, "parameters.start", "must not contain"),
        ({"start": "y" * 1001}, "parameters.start", "at most 1000 characters"),
        ({f"p{i}": "z" * 999 for i in range(9)}, "parameters", "at most 8192 bytes"),
    ],
)
def test_every_rejection_is_400_with_the_field_and_writes_nothing(
    penv: Env, papi: TestClient, parameters: Any, field: str, message: str
) -> None:
    before = _execution_requests(penv)
    response = _post(penv, papi, SIP, parameters)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_parameters"
    assert body["field"] == field
    assert body["message"].startswith(f"{field}: ") and message in body["message"]
    assert _execution_requests(penv) == before


def test_not_an_object_and_no_schema(penv: Env, papi: TestClient) -> None:
    for not_an_object in (["2026-01-01"], "start=2026-01-01", 5):
        response = _post(penv, papi, SIP, not_an_object)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_parameters"
        assert response.json()["field"] == "parameters"
    response = _post(penv, papi, POLY, {"start": "2026-01-01"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_parameters"
    assert "this job takes no parameters" in response.json()["message"]
    # no parameters for a target without a schema: as before, and no `parameters` arg
    response = _post(penv, papi, POLY, None)
    assert response.status_code == 202, response.text
    stored = penv.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{response.json()['runId']}",
        "dataHubExecutionRequestInput",
    )
    assert "parameters" not in stored["args"]


def test_the_lambda_receives_exactly_the_values_and_they_show_afterwards(
    penv: Env, papi: TestClient, start_consumer: Any
) -> None:
    start_consumer()
    penv.moto.queue_result(penv.functions["sip"], payload={"rows": 1})
    response = _post(penv, papi, SIP, {"start": "2026-01-31", "ratio": 0.5, "dryRun": True})
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    result = penv.wait_status(run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    expected = {
        "start": "2026-01-31",
        "mode": "incremental",
        "batch": 5,
        "ratio": 0.5,
        "dryRun": True,
    }
    (invocation,) = penv.moto.invocations(penv.functions["sip"])
    assert invocation.payload["parameters"] == expected
    assert invocation.payload["runId"] == run_id  # the run's own fields are untouched
    assert invocation.payload["layer"] == "bronze"

    # the DataHub report, GET /runs/{id}, the Runs tab's dataProcessInstance
    assert 'Parameters: {"batch": 5' in (result.report or "")
    assert json.loads(result.structuredReport.serializedValue)["parameters"] == expected
    status = papi.get(f"/api/ingestion/runs/{run_id}", headers=bearer(penv.users["alice"]))
    assert status.json()["parameters"] == expected
    deadline = time.monotonic() + 30
    props = None
    while time.monotonic() < deadline:
        props = penv.gms.get_aspect(
            f"urn:li:dataProcessInstance:{run_id}", "dataProcessInstanceProperties"
        )
        if props is not None:
            break
        time.sleep(0.1)
    assert props is not None
    assert json.loads(props["customProperties"]["parameters"]) == expected
    # after a page load: the last run's values, for "run again with the same parameters"
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        last = papi.get(
            "/api/ingestion/targets",
            params={"datasetUrn": SIP},
            headers=bearer(penv.users["alice"]),
        ).json()["lastRun"]
        if last and last["runId"] == run_id and last["state"] == "succeeded":
            break
        time.sleep(0.2)
    assert last is not None and last["runId"] == run_id
    assert last["parameters"] == expected


def _write_directly(env: Env, args: dict[str, str]) -> str:
    """A writer that bypasses the api: the SDK's way, straight to GMS."""
    run_id = new_run_id()
    client = env.datahub()
    try:
        client.graph.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=f"urn:li:dataHubExecutionRequest:{run_id}",
                aspect=ExecutionRequestInputClass(
                    task="LAMBDA_TRIGGER_RUN",
                    args=args,
                    executorId=env.executor_id,
                    source=ExecutionRequestSourceClass(type="LAMBDA_TRIGGER_SDK"),
                    requestedAt=now_ms(),
                ),
            )
        )
    finally:
        client.close()
    return run_id


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ('{"start": "2026-02-31"}', "invalid parameters: parameters.start: must be a date"),
        ('{"batch": 3}', "invalid parameters: parameters.start: is required"),
        ('{"start": "2026-01-01", "x": 1}', "parameters.x: is not a parameter"),
        ("{not json", "invalid parameters: parameters: args.parameters is not valid JSON"),
        ('["2026-01-01"]', "invalid parameters: parameters: must be an object"),
    ],
)
def test_the_consumer_checks_again_and_never_invokes(
    penv: Env, start_consumer: Any, parameters: str, message: str
) -> None:
    start_consumer()
    run_id = _write_directly(penv, {"datasetUrn": SIP, "parameters": parameters})
    result = penv.wait_status(run_id, {"FAILURE", "SUCCESS"})
    assert result.status == "FAILURE"
    assert message in (result.report or "")
    assert penv.moto.invocations(penv.functions["sip"]) == []


def test_sdk_parameters_for_a_target_without_a_schema_fail(penv: Env, start_consumer: Any) -> None:
    start_consumer()
    run_id = _write_directly(penv, {"datasetUrn": POLY, "parameters": '{"a": 1}'})
    result = penv.wait_status(run_id, {"FAILURE", "SUCCESS"})
    assert result.status == "FAILURE"
    assert "this job takes no parameters" in (result.report or "")
    assert penv.moto.invocations(penv.functions["poly"]) == []


def test_cli_param_values_are_typed_by_the_schema(
    penv: Env,
    start_consumer: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATAHUB_GMS_URL", penv.gms.url)
    monkeypatch.setenv("DATAHUB_GMS_TOKEN", penv.users["alice"])
    monkeypatch.setenv("LAMBDA_TRIGGER_EXECUTOR_ID", penv.executor_id)
    monkeypatch.setenv("LAMBDA_TRIGGER_ALLOWED_ACTORS", "urn:li:corpuser:alice")
    monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_MAPPING", json.dumps(penv.mapping))
    assert cli.main(["request", SIP, "--param", "batch=three"]) == 2
    assert "parameters.batch: must be an integer" in capsys.readouterr().err
    assert cli.main(["request", SIP, "--param", "batch=3"]) == 2
    assert "parameters.start: is required" in capsys.readouterr().err

    start_consumer()
    args = ["--param", "start=2026-01-31", "--param", "batch=3", "--param", "dryRun=yes"]
    assert cli.main(["request", SIP, *args, "--wait", "--timeout", "60"]) == 0
    (invocation,) = penv.moto.invocations(penv.functions["sip"])
    assert invocation.payload["parameters"] == {
        "start": "2026-01-31",
        "mode": "incremental",
        "batch": 3,
        "dryRun": True,
    }


def test_a_step_functions_execution_gets_the_parameters_in_its_input(
    penv: Env, start_consumer: Any
) -> None:
    name = f"sm-{uuid.uuid4().hex[:8]}"
    arn = penv.moto.create_state_machine(name)
    penv.mapping["targets"]["earnings"] = {
        "type": "stepfunctions",
        "stateMachineArn": arn,
        "label": "Earnings pipeline",
        "parameters": SCHEMA,
    }
    penv.moto.queue_execution_result(arn, "SUCCEEDED", output={"rows": 1}, delay_seconds=0.5)
    start_consumer()
    request = penv.request(SIP, extra_args={"parameters": '{"start": "2026-05-01", "batch": 2}'})
    result = penv.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "SUCCESS", result.report
    (execution,) = [e for e in penv.moto.executions(arn) if e["name"] == request.run_id]
    described = penv.moto.sfn_client().describe_execution(executionArn=execution["executionArn"])
    sent = json.loads(described["input"])
    assert sent["parameters"] == {
        "start": "2026-05-01",
        "mode": "incremental",
        "batch": 2,
        "dryRun": False,
    }
    assert sent["runId"] == request.run_id
