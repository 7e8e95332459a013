"""Step 5: start the job with boto3, and ask AWS how an asynchronous one is doing.

Retries: botocore's automatic retries are OFF for these calls. A read timeout on a
RequestResponse Invoke that botocore retries runs the function twice; we retry only on
throttling, where AWS guarantees the function did not run, and give a run that is still
throttled back to the run driver (`throttled`), which tries again later instead of failing a
run that would have succeeded. Step Functions executions are named after the runId, which makes
StartExecution idempotent for the same input.

Error text: AWS messages carry account ids, role and function ARNs and endpoints. The
`Invocation.error` that reaches DataHub (and so the browser) is a plain sentence built from the
AWS error code; the raw message goes to the service log only, keyed by runId.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from lambda_trigger_consumer.aws_calls import AwsTransient, CallCounter, backoff, is_throttle
from lambda_trigger_consumer.aws_client import Keepalive, make_client
from lambda_trigger_consumer.aws_rehearsal import rehearse
from lambda_trigger_consumer.aws_session import new_session
from lambda_trigger_consumer.ledger import Target

log = logging.getLogger(__name__)

Outcome = Literal["success", "function_error", "invoke_error", "started", "throttled", "unknown"]
_THROTTLED = {"TooManyRequestsException", "ThrottlingException", "ExecutionLimitExceeded"}
# The execution name the warm-up asks Step Functions about: one that is never started (run ids
# are lt-<time>-<random>, see runid.py), so DescribeExecution answers ExecutionDoesNotExist.
WARMUP_NAME = "lambda-trigger-warmup"
# Lambda's largest timeout is 900 s; a synchronous Invoke must be allowed to outlast it.
MAX_LAMBDA_TIMEOUT_SECONDS = 900
_READ_TIMEOUT_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class Invocation:
    outcome: Outcome
    duration_seconds: float
    request_id: str | None = None
    status_code: int | None = None
    function_error: str | None = None
    response_excerpt: str | None = None
    error: str | None = None  # plain text, safe to show a user
    error_code: str | None = None
    execution_arn: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionStatus:
    """DescribeExecution, reduced to what a run report needs."""

    status: str  # RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    exists: bool = True


def plain_aws_error(code: str) -> str:
    """A stable, plain sentence for an AWS error code (no ARNs, accounts or URLs)."""
    if code in _THROTTLED:
        return f"AWS is throttling the calls ({code})"
    if code in {"ResourceNotFoundException", "StateMachineDoesNotExist"}:
        return f"the job does not exist in AWS ({code})"
    if code in {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"}:
        return f"AWS refused the call ({code})"
    if code:
        return f"AWS refused the call ({code})"
    return "AWS could not be reached"


class Invoker:
    """Holds boto3 clients per (service, region, read timeout); boto3 clients are thread-safe."""

    def __init__(
        self,
        default_region: str | None,
        *,
        excerpt_bytes: int = 4000,
        throttle_retries: int = 3,
        endpoint_url: str | None = None,
        keepalive_seconds: int = 60,
        calls: CallCounter | None = None,
        max_pool_connections: int = 10,
    ) -> None:
        self._keepalive = Keepalive.every(keepalive_seconds)
        self._region = default_region
        self._excerpt_bytes = excerpt_bytes
        self._throttle_retries = throttle_retries
        self._endpoint_url = endpoint_url  # None: boto3 honours AWS_ENDPOINT_URL itself
        self._clients: dict[tuple[str, str | None, int], Any] = {}
        self._timeouts: dict[tuple[str, str | None, str | None], tuple[float, int | None]] = {}
        self._rehearsed: set[tuple[str, str | None, int, str]] = set()  # (client, call kind)
        self._lock = threading.Lock()
        # One session for every client: a session loads botocore's service models once; a
        # new session per client re-reads them (tens of ms each, on a run's path). Clients
        # are made under self._lock, as a session is not thread-safe. (Every session of the
        # process shares botocore's data: aws_session.py.)
        self._session: boto3.session.Session | None = None
        self._calls = calls  # counts every call of every client made here (metrics)
        self._pool = max_pool_connections  # one connection per thread that may call at once

    def _client(self, service: str, region: str | None, read_timeout: int = 60) -> Any:
        key = (service, region or self._region, read_timeout)
        with self._lock:
            if key not in self._clients:
                # A synchronous Invoke is one HTTP request that stays silent for as long as
                # the function runs; NAT gateways and proxies drop idle connections (AWS NAT:
                # 350 s). TCP keepalive probes (aws_client.py) keep it visibly alive.
                if self._session is None:
                    self._session = new_session()
                self._clients[key] = make_client(
                    service,
                    key[1],
                    endpoint_url=self._endpoint_url,
                    read_timeout=read_timeout,
                    keepalive=self._keepalive,
                    session=self._session,
                    max_pool_connections=self._pool,
                )
                if self._calls is not None:
                    self._calls.observe(self._clients[key])
            return self._clients[key]

    def endpoint_url(self, service: str = "lambda", region: str | None = None) -> str:
        """Where this invoker's `service` client sends its calls (AWS_ENDPOINT_URL honoured)."""
        return str(self._client(service, region).meta.endpoint_url)

    # --- facts about a target -------------------------------------------------------------

    def function_timeout(self, target: Target, *, max_age: float = 300.0) -> int | None:
        """The function's configured timeout in seconds (cached `max_age` s); None if AWS does
        not say (no permission, unknown function: the invoke will tell)."""
        key = (target.function or "", target.qualifier, target.region)
        cached = self._timeouts.get(key)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        try:
            return self._fetch_timeout(target)
        except BotoCoreError as exc:
            log.info("function timeout of %s unknown: %s", target.key, exc)
            self._timeouts[key] = (time.monotonic(), None)
            return None

    def _fetch_timeout(self, target: Target) -> int | None:
        """GetFunctionConfiguration's Timeout, cached; None when AWS refuses to say.
        Raises BotoCoreError when AWS does not answer at all."""
        key = (target.function or "", target.qualifier, target.region)
        kwargs: dict[str, Any] = {"FunctionName": target.function}
        if target.qualifier:
            kwargs["Qualifier"] = target.qualifier
        try:
            config = self._client("lambda", target.region).get_function_configuration(**kwargs)
            timeout: int | None = int(config.get("Timeout") or 0) or None
        except ClientError as exc:
            log.info("function timeout of %s unknown: %s", target.key, exc)
            timeout = None
        self._timeouts[key] = (time.monotonic(), timeout)
        return timeout

    def invoke_read_timeout(self, target: Target) -> int:
        """The read timeout of the client a run of this target invokes through."""
        if target.kind != "lambda":
            return 60
        timeout = self.function_timeout(target) or MAX_LAMBDA_TIMEOUT_SECONDS
        return timeout + _READ_TIMEOUT_MARGIN_SECONDS

    def warm(self, targets: list[Target], *, refresh_after: float = 240.0) -> None:
        """Before the first run (issue 25): build the client each target's calls go through
        and open one connection on each, and read the synchronous functions' timeouts, so
        that no run pays for botocore's model loading, a TCP/TLS handshake or
        GetFunctionConfiguration. Timeouts older than `refresh_after` are read again (a
        keep-warm pass renews them before the 5-minute cache lapses).

        Each client is touched with a call the least-privilege policy (iam_policy.py) grants
        and that changes nothing: GetFunctionConfiguration for Lambda, DescribeExecution of
        an execution that does not exist for Step Functions. AWS refusing it (no permission,
        no such function) still opened the connection; only no answer at all raises
        (BotoCoreError), so that a warm-up retries while AWS is unreachable."""
        touched: set[tuple[str, str | None, int]] = set()
        for target in targets:
            if target.kind == "stepfunctions":
                read_timeout, service = 60, "stepfunctions"
            else:
                service = "lambda"
                if target.kind == "lambda":
                    cached = self._timeouts.get(
                        (target.function or "", target.qualifier, target.region)
                    )
                    if cached is None or time.monotonic() - cached[0] >= refresh_after:
                        self._fetch_timeout(target)
                read_timeout = self.invoke_read_timeout(target)
            key = (service, target.region or self._region, read_timeout)
            client = self._client(service, target.region, read_timeout)
            self._rehearse(client, key, target)
            if key in touched:
                continue
            try:
                if service == "stepfunctions":
                    client.describe_execution(executionArn=execution_arn(target, WARMUP_NAME))
                else:
                    kwargs: dict[str, Any] = {"FunctionName": target.function}
                    if target.qualifier:
                        kwargs["Qualifier"] = target.qualifier
                    client.get_function_configuration(**kwargs)
            except ClientError:
                pass  # an answer: the connection is open
            except IndexError:
                pass  # not a state machine ARN: its runs will fail with AWS's own word
            touched.add(key)

    def _rehearse(self, client: Any, key: tuple[str, str | None, int], target: Target) -> None:
        """The run's own call (Invoke, StartExecution) once per client and kind, without
        sending it (aws_rehearsal.py): botocore's first-call work for the operation is then
        done before the first run. A client's caches last as long as it does, so once is
        enough; a rehearsal that fails is only logged (the run's call would still work)."""
        kind = target.kind
        if (*key, kind) in self._rehearsed:
            return
        try:
            if kind == "stepfunctions":
                arn = execution_arn(target, WARMUP_NAME)
                rehearse(
                    client,
                    "start_execution",
                    200,
                    json.dumps({"executionArn": arn, "startDate": 0}).encode(),
                    stateMachineArn=target.state_machine_arn,
                    name=WARMUP_NAME,
                    input="{}",
                )
            else:
                kwargs: dict[str, Any] = {
                    "FunctionName": target.function,
                    "InvocationType": "Event" if kind == "lambda-event" else "RequestResponse",
                    "Payload": b"{}",
                }
                if target.qualifier:
                    kwargs["Qualifier"] = target.qualifier
                rehearse(client, "invoke", 202 if kind == "lambda-event" else 200, b"{}", **kwargs)
        except Exception as exc:  # botocore refusing a parameter: the run will say so
            log.info("rehearsing the %s call of %s failed: %s", kind, target.key, exc)
        self._rehearsed.add((*key, kind))

    def reports_to(self, target: Target, queue_arn: str | None) -> bool:
        """Does this Event target's destination config send both outcomes to our queue?"""
        if not queue_arn:
            return False
        kwargs: dict[str, Any] = {"FunctionName": target.function}
        if target.qualifier:
            kwargs["Qualifier"] = target.qualifier
        try:
            config = self._client("lambda", target.region).get_function_event_invoke_config(
                **kwargs
            )
        except (ClientError, BotoCoreError) as exc:
            log.info("no usable event invoke config for %s: %s", target.key, exc)
            return False
        destinations = config.get("DestinationConfig") or {}
        on_success = (destinations.get("OnSuccess") or {}).get("Destination")
        on_failure = (destinations.get("OnFailure") or {}).get("Destination")
        return bool(on_success == queue_arn and on_failure == queue_arn)

    # --- calls ----------------------------------------------------------------------------

    def invoke(
        self,
        target: Target,
        payload: dict[str, Any],
        run_id: str,
        *,
        on_throttle: Callable[[], None] | None = None,
    ) -> Invocation:
        """`on_throttle` hears every throttled answer as it comes (invoke_limit.py lowers the
        synchronous invokes' concurrency on it, before this call's own retries)."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                if target.kind == "stepfunctions":
                    return self._start_execution(target, payload, run_id, started)
                return self._invoke_lambda(target, payload, started)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                meta = exc.response.get("ResponseMetadata", {})
                if code in _THROTTLED or is_throttle(exc):
                    if on_throttle is not None:
                        on_throttle()
                    if attempt < self._throttle_retries:
                        attempt += 1
                        # Jittered: runs throttled together must not come back together.
                        time.sleep(backoff(attempt))
                        continue
                    return Invocation(
                        "throttled",
                        time.monotonic() - started,
                        request_id=meta.get("RequestId"),
                        error=plain_aws_error(code),
                        error_code=code,
                    )
                log.warning("run %s: AWS error %s: %s", run_id, code, exc)
                return Invocation(
                    "invoke_error",
                    time.monotonic() - started,
                    request_id=meta.get("RequestId"),
                    status_code=meta.get("HTTPStatusCode"),
                    error=plain_aws_error(code),
                    error_code=code,
                )
            except ReadTimeoutError as exc:
                # The request reached Lambda: the function may well be running. Not retried.
                log.warning("run %s: no answer from AWS: %s", run_id, exc)
                return Invocation(
                    "unknown",
                    time.monotonic() - started,
                    error="no answer from AWS before the read timeout; the function may have run",
                    error_code=type(exc).__name__,
                )
            except BotoCoreError as exc:
                log.warning("run %s: AWS unreachable: %s", run_id, exc)
                return Invocation(
                    "invoke_error",
                    time.monotonic() - started,
                    error=plain_aws_error(""),
                    error_code=type(exc).__name__,
                )

    def _excerpt(self, raw: bytes) -> str:
        text = raw[: self._excerpt_bytes].decode("utf-8", errors="replace")
        return text + ("…" if len(raw) > self._excerpt_bytes else "")

    def _invoke_lambda(self, target: Target, payload: dict[str, Any], started: float) -> Invocation:
        kwargs: dict[str, Any] = {
            "FunctionName": target.function,
            "InvocationType": "Event" if target.kind == "lambda-event" else "RequestResponse",
            "Payload": json.dumps(payload).encode(),
        }
        if target.qualifier:
            kwargs["Qualifier"] = target.qualifier
        read_timeout = self.invoke_read_timeout(target)
        response = self._client("lambda", target.region, read_timeout).invoke(**kwargs)
        elapsed = time.monotonic() - started
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        status = response.get("StatusCode")
        if target.kind == "lambda-event":
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
        self, target: Target, payload: dict[str, Any], run_id: str, started: float
    ) -> Invocation:
        client = self._client("stepfunctions", target.region)
        try:
            response = client.start_execution(
                stateMachineArn=target.state_machine_arn, name=run_id, input=json.dumps(payload)
            )
            arn = response["executionArn"]
            started_at = response.get("startDate")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            # Started before (by an owner that stopped before recording it): the same run.
            arn = execution_arn(target, run_id)
            response = {"ResponseMetadata": exc.response.get("ResponseMetadata", {})}
            started_at = None
        # Its start date binds the execution's status events to this run (sfn_events.py).
        details: dict[str, Any] = {}
        if isinstance(started_at, datetime):
            details["startDateMs"] = round(started_at.timestamp() * 1000)
        return Invocation(
            "started",
            time.monotonic() - started,
            request_id=response.get("ResponseMetadata", {}).get("RequestId"),
            status_code=response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            execution_arn=arn,
            details=details,
        )

    def _retrying(self, call: Any, **kwargs: Any) -> Any:
        """`call(**kwargs)`, a throttled answer retried `throttle_retries` times with jittered
        backoff; still throttled, or no answer at all: AwsTransient (the run waits and is
        looked at again later, it does not fail)."""
        attempt = 0
        while True:
            try:
                return call(**kwargs)
            except ClientError as exc:
                if not is_throttle(exc):
                    raise
                if attempt >= self._throttle_retries:
                    raise AwsTransient(f"AWS is throttling the calls ({exc})") from exc
                attempt += 1
                time.sleep(backoff(attempt))
            except BotoCoreError as exc:
                raise AwsTransient(f"AWS could not be reached ({exc})") from exc

    def describe_execution(self, target: Target, arn: str) -> ExecutionStatus:
        """Raises AwsTransient while AWS throttles or does not answer, ClientError on
        anything else but a missing execution."""
        try:
            response = self._retrying(
                self._client("stepfunctions", target.region).describe_execution,
                executionArn=arn,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return ExecutionStatus("", exists=False)
            raise
        return ExecutionStatus(
            str(response.get("status", "")),
            output=response.get("output"),
            error=response.get("error"),
            cause=response.get("cause"),
        )

    def stop_execution(self, target: Target, arn: str, *, error: str, cause: str) -> None:
        self._retrying(
            self._client("stepfunctions", target.region).stop_execution,
            executionArn=arn,
            error=error,
            cause=cause,
        )

    def excerpt(self, text: str | None) -> str:
        return self._excerpt((text or "").encode())


def execution_arn(target: Target, run_id: str) -> str:
    """StartExecution's ARN for an execution named `run_id`:
    arn:<partition>:states:<region>:<account>:execution:<stateMachineName>:<name>."""
    parts = (target.state_machine_arn or "").split(":")
    return ":".join([*parts[:5], "execution", parts[6], run_id])
