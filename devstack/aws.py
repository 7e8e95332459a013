"""moto in server mode: a fake AWS reached over HTTP, like the real one.

`MotoServer` runs `python -m devstack.moto_server` as a child process on a free loopback port.
Code under test uses plain boto3 clients with `endpoint_url=server.endpoint_url` (or the
`AWS_ENDPOINT_URL` variable boto3 honours by itself); nothing patches boto3. The helpers here
set the fake up and read what happened through the server's `/_devstack/` endpoints.
"""

from __future__ import annotations

import atexit
import io
import json
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import boto3
import httpx

from devstack.lifecycle import StartStop
from devstack.ports import LOOPBACK
from devstack.procs import owned_temp_dir, python_env, spawn, stop_process, tail

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_stepfunctions import SFNClient

# Fixed fake credentials: moto accepts any, and fixed ones make logs and ARNs reproducible.
# moto's default account is 123456789012 whatever the key.
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing"  # a fake credential for moto, not a secret
AWS_DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

InvocationType = Literal["RequestResponse", "Event", "DryRun"]

_ASSUME_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
_HANDLER_SOURCE = b"def handler(event, context):\n    return event\n"


@dataclass(frozen=True)
class Invocation:
    """One Invoke call as the fake Lambda saw it."""

    function_name: str  # as the caller named it: name, name:qualifier or ARN
    resolved_function_name: str | None  # None when no such function existed
    function_arn: str | None
    qualifier: str | None
    invocation_type: str  # RequestResponse, Event or DryRun
    payload: Any  # the payload parsed as JSON; None when empty or not JSON
    payload_text: str
    timestamp: float  # epoch seconds on the server
    region: str
    account_id: str
    request_id: str | None  # what boto3 reports as ResponseMetadata.RequestId
    status_code: int | None
    # result | function_error | invoke_error | default | accepted | dry_run | not_found
    outcome: str | None
    answered_at: float | None = None  # epoch seconds on the server; None while running

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Invocation:
        return cls(
            function_name=data["functionName"],
            resolved_function_name=data.get("resolvedFunctionName"),
            function_arn=data.get("functionArn"),
            qualifier=data.get("qualifier"),
            invocation_type=data["invocationType"],
            payload=data.get("payload"),
            payload_text=data.get("payloadText") or "",
            timestamp=float(data["timestamp"]),
            region=data["region"],
            account_id=data["accountId"],
            request_id=data.get("requestId"),
            status_code=data.get("statusCode"),
            outcome=data.get("outcome"),
            answered_at=data.get("answeredAt"),
        )


class MotoStartError(RuntimeError):
    pass


class MotoServer(StartStop):
    """A moto server child process with Docker-free Lambda and canned Lambda results."""

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        region: str = AWS_DEFAULT_REGION,
        log_file: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.region = region
        self._log_file = log_file
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._work_dir: Path | None = None
        self._http: httpx.Client | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("MotoServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_file(self) -> Path:
        if self._log_file is not None:
            return self._log_file
        if self._work_dir is None:
            raise RuntimeError("MotoServer is not started")
        return self._work_dir / "moto.log"

    def start(self) -> Self:
        if self.process is not None:
            return self
        self._work_dir = owned_temp_dir("devstack-moto-")
        port_file = self._work_dir / "port"
        atexit.register(self.stop)
        try:
            self.process = spawn(
                [
                    sys.executable,
                    "-m",
                    "devstack.moto_server",
                    "--host",
                    self.host,
                    "--port",
                    str(self.requested_port),
                    "--port-file",
                    str(port_file),
                ],
                log_path=self.log_file,
                env=python_env(
                    # The server must never try real AWS or a credentials file of the user.
                    {
                        "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY_ID,
                        "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY,
                        "AWS_DEFAULT_REGION": self.region,
                        "PYTHONUNBUFFERED": "1",
                    }
                ),
            )
            self._wait_ready(port_file)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, port_file: Path) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise MotoStartError(
                    f"moto server exited with {code} while starting.\n--- {self.log_file}:\n"
                    f"{tail(self.log_file)}"
                )
            if self.port is None and port_file.exists():
                self.port = int(port_file.read_text())
                self._http = httpx.Client(base_url=self.endpoint_url, timeout=30.0)
            if self._http is not None:
                try:
                    response = self._http.get("/_devstack/health")
                    if response.status_code == 200 and response.json().get("status") == "ok":
                        return
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise MotoStartError(
                    f"moto server not ready after {self.startup_timeout}s.\n--- "
                    f"{self.log_file}:\n{tail(self.log_file)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.process is not None:
            stop_process(self.process, timeout=10)
            self.process = None
        self.port = None
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    # -- clients -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The variables that point boto3 (and the AWS CLI) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
        }

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=AWS_ACCESS_KEY_ID,
            aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
            region_name=self.region,
        )

    def client(self, service_name: str) -> Any:
        """A boto3 client for any service, aimed at this server."""
        return self.session().client(service_name, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def lambda_client(self) -> LambdaClient:
        return self.session().client("lambda", endpoint_url=self.endpoint_url)

    def sfn_client(self) -> SFNClient:
        return self.session().client("stepfunctions", endpoint_url=self.endpoint_url)

    def _api(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError("MotoServer is not started")
        return self._http

    # -- setup helpers -----------------------------------------------------------------------

    def create_role(self, name: str, *, service: str = "lambda.amazonaws.com") -> str:
        """Create an IAM role (or find the existing one) that `service` may assume; its ARN."""
        iam = self.client("iam")
        policy = _ASSUME_ROLE_POLICY.replace("lambda.amazonaws.com", service)
        try:
            role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy)
        except iam.exceptions.EntityAlreadyExistsException:
            role = iam.get_role(RoleName=name)
        return str(role["Role"]["Arn"])

    def create_lambda(
        self,
        name: str,
        *,
        runtime: str = "python3.12",
        handler: str = "index.handler",
        role_name: str = "devstack-lambda-role",
        publish: bool = False,
        environment: dict[str, str] | None = None,
        timeout: int = 30,
    ) -> str:
        """Create a Lambda function (and the IAM role moto insists it has); its ARN.

        The code is a one-line echo handler; it never runs here (no Docker), the fake answers
        with queued results instead. `publish=True` also publishes version 1.
        """
        role_arn = self.create_role(role_name)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("index.py", _HANDLER_SOURCE)
        response = self.lambda_client().create_function(
            FunctionName=name,
            Runtime=runtime,  # type: ignore[arg-type]
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": archive.getvalue()},
            Publish=publish,
            Timeout=timeout,
            Environment={"Variables": dict(environment or {})},
        )
        return response["FunctionArn"]

    def create_state_machine(
        self,
        name: str,
        definition: dict[str, Any] | None = None,
        *,
        role_name: str = "devstack-states-role",
    ) -> str:
        """Create a Step Functions state machine (a single Pass state by default); its ARN.

        moto records executions (start/describe/list/stop) but does not run the states.
        """
        role_arn = self.create_role(role_name, service="states.amazonaws.com")
        body = definition or {
            "Comment": "devstack state machine",
            "StartAt": "Done",
            "States": {"Done": {"Type": "Pass", "End": True}},
        }
        response = self.sfn_client().create_state_machine(
            name=name, definition=json.dumps(body), roleArn=role_arn
        )
        return response["stateMachineArn"]

    def create_queue(self, name: str) -> tuple[str, str]:
        """An SQS queue; (url, arn)."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return str(url), str(arn)

    def set_destinations(self, function_name: str, queue_arn: str) -> None:
        """Send both outcomes of the function's asynchronous invocations to `queue_arn`."""
        self.lambda_client().put_function_event_invoke_config(
            FunctionName=function_name,
            DestinationConfig={
                "OnSuccess": {"Destination": queue_arn},
                "OnFailure": {"Destination": queue_arn},
            },
        )

    def queue_execution_result(
        self,
        state_machine: str,
        status: str = "SUCCEEDED",
        *,
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
        delay_seconds: float = 0,
    ) -> None:
        """How the next execution of `state_machine` (name or ARN) ends, after the delay."""
        response = self._api().post(
            "/_devstack/sfn/results",
            json={
                "stateMachine": state_machine,
                "status": status,
                "output": output,
                "error": error,
                "cause": cause,
                "delaySeconds": delay_seconds,
            },
        )
        response.raise_for_status()

    def executions(self, state_machine_arn: str) -> list[dict[str, Any]]:
        """Every execution of the state machine, as ListExecutions reports them."""
        pages = (
            self.sfn_client()
            .get_paginator("list_executions")
            .paginate(stateMachineArn=state_machine_arn)
        )
        return [dict(e) for page in pages for e in page["executions"]]

    # -- the fake Lambda ---------------------------------------------------------------------

    def queue_result(
        self,
        function_name: str,
        payload: Any = None,
        function_error: str | None = None,
        delay_seconds: float = 0,
        *,
        error_type: str = "Exception",
    ) -> None:
        """Queue what the next invocation of `function_name` answers (for an Event
        invocation: what its destination record reports, after the delay).

        `payload` is any JSON value. With `function_error` the invocation fails like an
        uncaught exception: X-Amz-Function-Error: Unhandled and the payload
        {"errorMessage": function_error, "errorType": error_type}. `delay_seconds` makes the
        call take that long. Results are used first-in first-out, per function name (an
        ARN or name:qualifier counts as its bare name). Event and DryRun calls leave the queue
        alone.
        """
        response = self._api().post(
            "/_devstack/lambda/results",
            json={
                "functionName": function_name,
                "payload": payload,
                "functionError": function_error,
                "errorType": error_type,
                "delaySeconds": delay_seconds,
            },
        )
        response.raise_for_status()

    def queue_invoke_error(
        self,
        function_name: str,
        *,
        status: int = 429,
        error_type: str = "TooManyRequestsException",
        message: str = "Rate exceeded",
    ) -> None:
        """Make the next invocation of `function_name` (any type) fail at the API level.

        boto3 raises it as a ClientError with code `error_type`; the function does not run.
        Used before any queued result.
        """
        response = self._api().post(
            "/_devstack/lambda/invoke-errors",
            json={
                "functionName": function_name,
                "status": status,
                "errorType": error_type,
                "message": message,
            },
        )
        response.raise_for_status()

    def invocations(self, function_name: str | None = None) -> list[Invocation]:
        """Every Invoke call so far, oldest first; only those of one function if given."""
        params = {"functionName": function_name} if function_name else {}
        response = self._api().get("/_devstack/lambda/invocations", params=params)
        response.raise_for_status()
        return [Invocation.from_json(item) for item in response.json()["invocations"]]

    def wait_for_invocations(
        self, function_name: str | None = None, *, count: int = 1, timeout: float = 30.0
    ) -> list[Invocation]:
        """Poll until at least `count` invocations are recorded; they are returned."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.invocations(function_name)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(found)} of {count} invocations of {function_name or 'any function'} "
                    f"after {timeout}s"
                )
            time.sleep(0.05)

    def pending(self) -> dict[str, dict[str, int]]:
        """Queued results and invoke errors not used yet, per function."""
        response = self._api().get("/_devstack/lambda/pending")
        response.raise_for_status()
        data: dict[str, dict[str, int]] = response.json()
        return data

    def reset(self) -> None:
        """Forget everything: functions, roles, state machines, queues and recorded calls."""
        self._api().post("/_devstack/reset").raise_for_status()
