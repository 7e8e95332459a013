"""Step 5: start the job with boto3.

Retries: botocore's automatic retries are OFF for these calls. A read timeout on a
RequestResponse Invoke that botocore retries runs the function twice; we retry only on
throttling, where AWS guarantees the function did not run. Step Functions executions are
named after the runId, which makes StartExecution idempotent for the same input.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger.mapping import LambdaTarget, StepFunctionsTarget
from lambda_trigger.sanitize import aws_error

log = logging.getLogger(__name__)

Outcome = Literal["success", "function_error", "invoke_error", "started"]
_THROTTLED = {"TooManyRequestsException", "ThrottlingException", "ExecutionLimitExceeded"}


@dataclass(frozen=True)
class Invocation:
    outcome: Outcome
    duration_seconds: float
    request_id: str | None = None
    status_code: int | None = None
    function_error: str | None = None
    response_excerpt: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Invoker:
    """Holds one boto3 client per (service, region); boto3 clients are thread-safe."""

    def __init__(
        self,
        default_region: str | None,
        *,
        excerpt_bytes: int = 4000,
        throttle_retries: int = 3,
        endpoint_url: str | None = None,
    ) -> None:
        self._region = default_region
        self._excerpt_bytes = excerpt_bytes
        self._throttle_retries = throttle_retries
        self._endpoint_url = endpoint_url  # None: boto3 honours AWS_ENDPOINT_URL itself
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()
        # Lambda may run 15 minutes; the read timeout must outlast it.
        self._config = Config(
            retries={"total_max_attempts": 1}, read_timeout=960, connect_timeout=10
        )

    def _client(self, service: str, region: str | None) -> Any:
        key = (service, region or self._region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = boto3.session.Session().client(
                    service,  # type: ignore[call-overload]
                    region_name=key[1],
                    config=self._config,
                    endpoint_url=self._endpoint_url,
                )
            return self._clients[key]

    def invoke(
        self, target: LambdaTarget | StepFunctionsTarget, payload: dict[str, Any], run_id: str
    ) -> Invocation:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                if isinstance(target, LambdaTarget):
                    return self._invoke_lambda(target, payload, started)
                return self._start_execution(target, payload, run_id, started)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in _THROTTLED and attempt < self._throttle_retries:
                    attempt += 1
                    time.sleep(min(2**attempt * 0.2, 5.0))
                    continue
                # AWS messages name account ids and ARNs: raw text to the log (keyed by runId),
                # a stable sentence to the run's report (lambda_trigger.sanitize).
                log.warning("run %s: AWS error %s: %s", run_id, code, exc)
                return Invocation(
                    "invoke_error",
                    time.monotonic() - started,
                    request_id=exc.response.get("ResponseMetadata", {}).get("RequestId"),
                    status_code=exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
                    error=aws_error(code),
                )
            except BotoCoreError as exc:
                # Includes read timeouts: the function may have run. Not retried, reported.
                log.warning("run %s: AWS call failed: %s", run_id, exc)
                return Invocation(
                    "invoke_error",
                    time.monotonic() - started,
                    error=f"AWS could not be reached ({type(exc).__name__})",
                )

    def _excerpt(self, raw: bytes) -> str:
        text = raw[: self._excerpt_bytes].decode("utf-8", errors="replace")
        return text + ("…" if len(raw) > self._excerpt_bytes else "")

    def _invoke_lambda(
        self, target: LambdaTarget, payload: dict[str, Any], started: float
    ) -> Invocation:
        kwargs: dict[str, Any] = {
            "FunctionName": target.function,
            "InvocationType": target.invocation_type,
            "Payload": json.dumps(payload).encode(),
        }
        if target.qualifier:
            kwargs["Qualifier"] = target.qualifier
        response = self._client("lambda", target.region).invoke(**kwargs)
        elapsed = time.monotonic() - started
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        status = response.get("StatusCode")
        if target.invocation_type == "Event":
            return Invocation("started", elapsed, request_id=request_id, status_code=status)
        body = response["Payload"].read() if response.get("Payload") is not None else b""
        function_error = response.get("FunctionError")
        return Invocation(
            "function_error" if function_error else "success",
            elapsed,
            request_id=request_id,
            status_code=status,
            function_error=function_error,
            response_excerpt=self._excerpt(body),
            details={"executedVersion": response.get("ExecutedVersion")},
        )

    def _start_execution(
        self, target: StepFunctionsTarget, payload: dict[str, Any], run_id: str, started: float
    ) -> Invocation:
        response = self._client("stepfunctions", target.region).start_execution(
            stateMachineArn=target.state_machine_arn, name=run_id, input=json.dumps(payload)
        )
        return Invocation(
            "started",
            time.monotonic() - started,
            request_id=response.get("ResponseMetadata", {}).get("RequestId"),
            status_code=response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            details={"executionName": run_id},
        )
