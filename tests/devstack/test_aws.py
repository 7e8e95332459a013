"""The moto server: plain boto3 over HTTP, a Docker-free Lambda with canned results and a record
of every invocation, and Step Functions executions."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.aws import ACCOUNT_ID, MotoServer
from devstack.ports import wait_port_free
from devstack.procs import wait_pid_gone

pytestmark = pytest.mark.integration

NO_RETRIES = Config(retries={"total_max_attempts": 1})


def lambda_client(server: MotoServer, config: Config | None = None) -> Any:
    """A client built the way the consumer builds its own: boto3 + endpoint_url, nothing else."""
    return boto3.session.Session().client(
        "lambda",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def test_a_request_response_invocation_is_recorded(moto: MotoServer) -> None:
    arn = moto.create_lambda("loader")
    client = lambda_client(moto)

    response = client.invoke(
        FunctionName="loader",
        Payload=json.dumps({"runId": "lt-1", "datasetUrn": "urn:li:dataset:x"}),
    )

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    # No canned result: the fake echoes the payload, as moto's simple Lambda does.
    assert json.loads(response["Payload"].read()) == {
        "runId": "lt-1",
        "datasetUrn": "urn:li:dataset:x",
    }
    [call] = moto.invocations("loader")
    assert call.function_name == "loader"
    assert call.resolved_function_name == "loader"
    assert call.function_arn == arn
    assert call.invocation_type == "RequestResponse"
    assert call.payload == {"runId": "lt-1", "datasetUrn": "urn:li:dataset:x"}
    assert call.request_id == response["ResponseMetadata"]["RequestId"]
    assert call.account_id == ACCOUNT_ID and call.region == "us-east-1"
    assert call.outcome == "default" and call.status_code == 200
    assert abs(call.timestamp - time.time()) < 60


def test_queued_results_come_back_in_order_and_a_function_error_is_a_function_error(
    moto: MotoServer,
) -> None:
    moto.create_lambda("loader")
    moto.queue_result("loader", payload={"rows": 42})
    moto.queue_result("loader", function_error="table not found", error_type="KeyError")
    client = lambda_client(moto)

    first = client.invoke(FunctionName="loader", Payload=b"{}")
    second = client.invoke(FunctionName="loader", Payload=b"{}")

    assert json.loads(first["Payload"].read()) == {"rows": 42}
    assert "FunctionError" not in first
    assert second["StatusCode"] == 200
    assert second["FunctionError"] == "Unhandled"
    assert json.loads(second["Payload"].read()) == {
        "errorMessage": "table not found",
        "errorType": "KeyError",
    }
    assert [c.outcome for c in moto.invocations("loader")] == ["result", "function_error"]


def test_an_event_invocation_is_accepted_and_its_destination_hears_the_outcome(
    moto: MotoServer,
) -> None:
    """Real Lambda answers 202 at once, runs the function later and sends an invocation record
    to the OnSuccess / OnFailure destination (docs.aws.amazon.com/lambda/latest/dg/
    invocation-async-retain-records.html). The queued result is what the function does."""
    moto.create_lambda("loader")
    url, arn = moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    moto.set_destinations("loader", arn)
    moto.queue_result("loader", payload={"rows": 1})
    moto.queue_result("loader", function_error="boom", error_type="KeyError")

    responses = [
        lambda_client(moto).invoke(
            FunctionName="loader", InvocationType="Event", Payload=json.dumps({"runId": run})
        )
        for run in ("lt-2", "lt-3")
    ]

    assert [r["StatusCode"] for r in responses] == [202, 202]
    assert responses[0]["Payload"].read() == b""
    calls = moto.invocations("loader")
    assert [c.invocation_type for c in calls] == ["Event", "Event"]
    assert [c.outcome for c in calls] == ["accepted", "accepted"]
    assert calls[0].request_id == responses[0]["ResponseMetadata"]["RequestId"]
    assert moto.pending()["results"] == {}
    sqs = moto.client("sqs")
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(records) < 2 and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        records += [json.loads(m["Body"]) for m in got.get("Messages", [])]
    by_run = {r["requestPayload"]["runId"]: r for r in records}
    ok, failed = by_run["lt-2"], by_run["lt-3"]
    assert ok["version"] == "1.0" and ok["requestContext"]["condition"] == "Success"
    assert ok["requestContext"]["requestId"] == calls[0].request_id
    assert ok["responsePayload"] == {"rows": 1}
    assert failed["requestContext"]["condition"] == "RetriesExhausted"
    assert failed["responseContext"]["functionError"] == "Unhandled"
    assert failed["responsePayload"] == {"errorMessage": "boom", "errorType": "KeyError"}


def test_a_step_functions_execution_ends_with_its_queued_outcome(moto: MotoServer) -> None:
    arn = moto.create_state_machine(f"sm-{uuid.uuid4().hex[:8]}")
    moto.queue_execution_result(arn, "FAILED", error="States.TaskFailed", cause="no rows")
    sfn = moto.sfn_client()
    execution = sfn.start_execution(stateMachineArn=arn, name="lt-4", input="{}")["executionArn"]
    deadline = time.monotonic() + 10
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    described = sfn.describe_execution(executionArn=execution)
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED",
        "States.TaskFailed",
        "no rows",
    )
    other = sfn.start_execution(stateMachineArn=arn, name="lt-5", input="{}")["executionArn"]
    assert sfn.describe_execution(executionArn=other)["status"] == "RUNNING"  # none queued
    sfn.stop_execution(executionArn=other)
    assert sfn.describe_execution(executionArn=other)["status"] == "ABORTED"


def test_a_delayed_result_makes_a_slow_function(moto: MotoServer) -> None:
    moto.create_lambda("slow")
    moto.queue_result("slow", payload="done", delay_seconds=1.0)

    started = time.monotonic()
    response = lambda_client(moto).invoke(FunctionName="slow")

    assert time.monotonic() - started >= 1.0
    assert json.loads(response["Payload"].read()) == "done"


def test_an_invoke_error_is_raised_by_boto3_and_recorded(moto: MotoServer) -> None:
    moto.create_lambda("busy")
    moto.queue_invoke_error("busy", status=429, error_type="TooManyRequestsException")

    with pytest.raises(ClientError) as info:
        lambda_client(moto, NO_RETRIES).invoke(
            FunctionName="busy", InvocationType="Event", Payload=b"{}"
        )

    assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    [call] = moto.invocations("busy")
    assert call.outcome == "invoke_error" and call.status_code == 429


def test_qualified_names_and_arns_resolve_to_the_function(moto: MotoServer) -> None:
    arn = moto.create_lambda("versioned", publish=True)
    moto.queue_result(arn, payload="by arn")  # queues are per bare function name
    client = lambda_client(moto)

    by_qualifier = client.invoke(FunctionName="versioned", Qualifier="1")
    by_arn = client.invoke(FunctionName=f"{arn}:1")

    assert json.loads(by_qualifier["Payload"].read()) == "by arn"
    assert by_arn["StatusCode"] == 200
    calls = moto.invocations("versioned")
    assert [(c.function_name, c.qualifier, c.resolved_function_name) for c in calls] == [
        ("versioned", "1", "versioned"),
        (f"{arn}:1", "1", "versioned"),
    ]
    assert moto.invocations(arn) == calls


def test_an_unknown_function_is_not_found_and_still_recorded(moto: MotoServer) -> None:
    with pytest.raises(ClientError) as info:
        lambda_client(moto, NO_RETRIES).invoke(FunctionName="missing", Payload=b"{}")

    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    [call] = moto.invocations()
    assert call.function_name == "missing" and call.resolved_function_name is None
    assert call.outcome == "not_found"


def test_step_functions_executions_start_through_the_same_server(moto: MotoServer) -> None:
    arn = moto.create_state_machine("loader-flow")
    sfn = boto3.session.Session().client(
        "stepfunctions",
        endpoint_url=moto.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    started = sfn.start_execution(
        stateMachineArn=arn, name="lt-run-1", input=json.dumps({"runId": "lt-run-1"})
    )

    execution = sfn.describe_execution(executionArn=started["executionArn"])
    assert execution["status"] == "RUNNING"
    assert json.loads(execution["input"]) == {"runId": "lt-run-1"}
    assert execution["stateMachineArn"] == arn
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in listed] == ["lt-run-1"]


def test_the_standard_variables_point_plain_boto3_at_the_server(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto.create_lambda("from-env")
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)

    names = [
        f["FunctionName"]
        for f in boto3.session.Session().client("lambda").list_functions()["Functions"]
    ]

    assert names == ["from-env"]


def test_reset_forgets_functions_queues_and_calls(moto: MotoServer) -> None:
    moto.create_lambda("gone")
    moto.queue_result("gone", payload=1)
    lambda_client(moto).invoke(FunctionName="gone", InvocationType="DryRun")

    moto.reset()

    assert moto.invocations() == []
    assert moto.pending() == {"results": {}, "invokeErrors": {}}
    assert moto.lambda_client().list_functions()["Functions"] == []


def test_stop_frees_the_port_and_ends_the_process() -> None:
    server = MotoServer().start()
    port, pid = server.port, server.pid
    assert port is not None and pid is not None
    assert httpx.get(f"{server.endpoint_url}/_devstack/health").json()["status"] == "ok"

    server.stop()

    assert wait_pid_gone(pid, 5)
    assert wait_port_free(port)
