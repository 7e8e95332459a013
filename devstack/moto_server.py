"""The moto server process of the local stack: `python -m devstack.moto_server`.

moto's own server (`moto_server`) runs Lambda functions in Docker. Here there is no Docker, so
this entry point switches moto to its Docker-free `lambda_simple` backend and extends that
backend, inside this server process, with what the project's tests need from a fake Lambda:

- canned results queued per function: a JSON payload, or a function error (the response then
  carries `X-Amz-Function-Error: Unhandled` and an `{errorMessage, errorType}` payload, as real
  Lambda does for an uncaught exception), optionally after a delay to play a slow function;
- canned invoke errors per function (HTTP status + AWS error code, e.g. 429
  TooManyRequestsException), which boto3 raises as ClientError, for any invocation type;
- a record of every Invoke call: the name as called, the function it resolved to, qualifier,
  invocation type, payload, time called and answered, the request id boto3 sees and the
  outcome.

- asynchronous (Event) invocations that end the way real Lambda's do: after the canned delay,
  an invocation record goes to the function's OnSuccess / OnFailure destination (an SQS
  queue set with PutFunctionEventInvokeConfig), in the format AWS documents in "Capturing
  records of Lambda asynchronous invocations"
  (docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html);
- Step Functions executions that end: moto keeps every execution RUNNING until StopExecution;
  a canned outcome per state machine (SUCCEEDED, FAILED, TIMED_OUT) ends the next execution
  after its delay, with output or error and cause, as DescribeExecution then reports, and sends
  its "Step Functions Execution Status Change" event to moto's EventBridge, as AWS does;

- EventBridge events delivered to targets with their `account` field, as AWS sends them.

They are driven over HTTP under `/_devstack/` (see devstack.aws.MotoServer for the client).
Clients talk plain AWS APIs to this server with endpoint_url; nothing in the client patches
boto3. Without a canned result a RequestResponse call echoes its payload back (moto's own
lambda_simple default), an Event call is accepted (202) and a DryRun returns 204.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

PREFIX = "/_devstack/"
DEFAULT_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class CannedResult:
    payload: Any = None
    function_error: str | None = None
    error_type: str = "Exception"
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class CannedInvokeError:
    status: int
    error_type: str
    message: str


@dataclass
class _Store:
    """Everything the /_devstack endpoints manage. Guarded by `lock`: werkzeug serves each
    request on its own thread and the consumer under test invokes concurrently."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    results: dict[str, deque[CannedResult]] = field(default_factory=dict)
    invoke_errors: dict[str, deque[CannedInvokeError]] = field(default_factory=dict)
    invocations: list[dict[str, Any]] = field(default_factory=list)
    sfn_results: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)

    def clear(self) -> None:
        with self.lock:
            self.results.clear()
            self.invoke_errors.clear()
            self.invocations.clear()
            self.sfn_results.clear()


STORE = _Store()
# The invocation record made while serving the current request, so that the WSGI layer can add
# the request id moto generates only after the backend returned.
_CURRENT = threading.local()


def function_key(name_or_arn: str) -> str:
    """The bare function name of a name, `name:qualifier`, full or partial ARN."""
    if name_or_arn.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else name_or_arn
    if ":" in name_or_arn:
        parts = name_or_arn.split(":")
        # account:function:name[:qualifier] (a partial ARN) or name:qualifier
        if len(parts) >= 3 and parts[1] == "function":
            return parts[2]
        return parts[0]
    return name_or_arn


def _qualifier_of(name_or_arn: str, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        return parts[7] if len(parts) > 7 else None
    if len(parts) >= 3 and parts[1] == "function":
        return parts[3] if len(parts) > 3 else None
    return parts[1] if len(parts) == 2 else None


def _decode(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return str(body)


def _deliver_destination_record(
    account_id: str,
    region: str,
    function_arn: str,
    destinations: dict[str, Any],
    payload: Any,
    canned: CannedResult | None,
    record: dict[str, Any],
) -> None:
    """What Lambda sends to an asynchronous invocation's destination once it has ended."""
    from moto.sqs.models import sqs_backends

    if canned is not None and canned.delay_seconds > 0:
        time.sleep(canned.delay_seconds)
    for _ in range(100):  # the WSGI layer adds the request id once the 202 is answered
        if record.get("requestId"):
            break
        time.sleep(0.02)
    failed = canned is not None and canned.function_error is not None
    request_id = record.get("requestId") or ""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if failed:
        assert canned is not None
        response_context["functionError"] = "Unhandled"
        response: Any = {"errorMessage": canned.function_error, "errorType": canned.error_type}
    else:
        response = canned.payload if canned is not None else payload
    invocation_record = {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            # Real Lambda retries a failed event twice before giving up.
            "condition": "RetriesExhausted" if failed else "Success",
            "approximateInvokeCount": 3 if failed else 1,
        },
        "requestPayload": payload,
        "responseContext": response_context,
        "responsePayload": response,
    }
    target = (destinations.get("OnFailure" if failed else "OnSuccess") or {}).get("Destination")
    with STORE.lock:
        record["completion"] = "failure" if failed else "success"
    if not target or ":sqs:" not in target:
        return
    queue_name = target.rsplit(":", 1)[-1]
    backend = sqs_backends[account_id][region]
    backend.send_message(queue_name, json.dumps(invocation_record))


def _install_sfn_backend() -> None:
    """Executions that end with a canned outcome (moto leaves them RUNNING forever)."""
    from moto.stepfunctions.models import StepFunctionBackend, stepfunctions_backends

    class DevstackStepFunctions(StepFunctionBackend):
        def start_execution(self, state_machine_arn: str, name: str, execution_input: str) -> Any:
            execution = super().start_execution(state_machine_arn, name, execution_input)
            machine = state_machine_arn.rsplit(":", 1)[-1]
            with STORE.lock:
                queue = STORE.sfn_results.get(machine)
                outcome = queue.popleft() if queue else None
            if outcome is not None:
                threading.Thread(
                    target=_end_execution, args=(execution, outcome), daemon=True
                ).start()
            return execution

    # moto finds a backend's URL table through the class's module.
    DevstackStepFunctions.__module__ = StepFunctionBackend.__module__
    stepfunctions_backends.backend = DevstackStepFunctions


def _end_execution(execution: Any, outcome: dict[str, Any]) -> None:
    time.sleep(float(outcome.get("delaySeconds") or 0))
    if execution.status != "RUNNING":
        return  # stopped meanwhile
    from moto.core.utils import utcnow

    execution.status = str(outcome.get("status", "SUCCEEDED"))
    execution.stop_date = utcnow()
    if execution.status == "SUCCEEDED":
        execution.output = json.dumps(outcome.get("output"))
    else:
        execution.error = outcome.get("error") or "States.TaskFailed"
        execution.cause = outcome.get("cause") or "the task failed"
    _emit_status_event(execution)


def _millis(when: datetime) -> int:
    """moto's dates are naive UTC datetimes; events carry epoch milliseconds."""
    return round(when.replace(tzinfo=UTC).timestamp() * 1000)


def _emit_status_event(execution: Any) -> None:
    """What Step Functions sends to the default event bus of the execution's account and region
    when an execution ends ("Step Functions Execution Status Change"; docs: "Step Functions
    EventBridge events"). moto's Step Functions send none; rules and targets are moto's own."""
    from moto.events.models import events_backends

    _arn, _partition, _service, region, account, *_rest = execution.execution_arn.split(":")
    detail = {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": execution.execution_input,
        "inputDetails": {"included": True},
        "output": execution.output,
        "outputDetails": {"included": True},
        "error": execution.error,
        "cause": execution.cause,
    }
    events_backends[account][region].put_events(
        [
            {
                "Source": "aws.states",
                "DetailType": "Step Functions Execution Status Change",
                "Resources": [execution.execution_arn],
                "Detail": json.dumps(detail),
            }
        ]
    )


def _install_events_account() -> None:
    """EventBridge events delivered to a target carry the `account` field (AWS's event
    structure: version, id, detail-type, source, account, time, region, resources, detail;
    docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html). moto 5.2.5's
    default target input leaves it out; put it back, so a target reads what AWS sends."""
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"source": "<source>", ', '"source": "<source>", "account": "<account>", '
        )


def _install_lambda_backend() -> None:
    """Make moto use the Docker-free Lambda backend, extended with canned results."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple.models import LambdaSimpleBackend, lambda_simple_backends
    from moto.moto_api._internal.models import moto_api_backend

    class CannedInvokeException(LambdaClientError):
        def __init__(self, canned: CannedInvokeError) -> None:
            super().__init__(canned.error_type, canned.message)
            self.code = canned.status

    class DevstackLambdaBackend(LambdaSimpleBackend):
        def invoke(
            self,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> str | bytes | None:
            invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
            # moto 5.2.5 reads the query parameter as "qualifier" but boto3 sends "Qualifier",
            # so moto would always run $LATEST; the WSGI layer kept the real one for us.
            qualifier = qualifier or getattr(_CURRENT, "qualifier", None)
            text = _decode(body)
            try:
                payload: Any = json.loads(text) if text else None
            except ValueError:
                payload = None
            record: dict[str, Any] = {
                "functionName": function_name,
                "resolvedFunctionName": None,
                "functionArn": None,
                "qualifier": _qualifier_of(function_name, qualifier),
                "invocationType": invocation_type,
                "payload": payload,
                "payloadText": text,
                "timestamp": time.time(),
                "region": self.region_name,
                "accountId": self.account_id,
                "requestId": None,
                "statusCode": None,
                "outcome": None,
            }
            _CURRENT.record = record
            with STORE.lock:
                STORE.invocations.append(record)
            try:
                fn = self.get_function(function_name, qualifier)
            except Exception:
                record["outcome"] = "not_found"
                raise
            key = fn.function_name
            record["resolvedFunctionName"] = key
            record["functionArn"] = fn.function_arn
            with STORE.lock:
                error_queue = STORE.invoke_errors.get(key)
                canned_error = error_queue.popleft() if error_queue else None
                canned: CannedResult | None = None
                if canned_error is None and invocation_type in ("RequestResponse", "Event"):
                    result_queue = STORE.results.get(key)
                    canned = result_queue.popleft() if result_queue else None
            if canned_error is not None:
                record["outcome"] = "invoke_error"
                raise CannedInvokeException(canned_error)
            if invocation_type == "Event":
                # Real Lambda queues the event and answers 202 with an empty body at once; the
                # function runs later, and its destination hears how it went.
                record["outcome"] = "accepted"
                configs = getattr(fn, "event_invoke_config", None) or []
                destinations = configs[0].config.get("DestinationConfig", {}) if configs else {}
                if destinations:
                    threading.Thread(
                        target=_deliver_destination_record,
                        args=(
                            self.account_id,
                            self.region_name,
                            fn.function_arn,
                            destinations,
                            payload,
                            canned,
                            record,
                        ),
                        daemon=True,
                    ).start()
                return b""
            if invocation_type == "DryRun":
                record["outcome"] = "dry_run"
                return b""
            if canned is None:
                record["outcome"] = "default"
                result = text or "null"
            else:
                if canned.delay_seconds > 0:
                    time.sleep(canned.delay_seconds)
                if canned.function_error is not None:
                    record["outcome"] = "function_error"
                    response_headers["x-amz-function-error"] = "Unhandled"
                    result = json.dumps(
                        {"errorMessage": canned.function_error, "errorType": canned.error_type}
                    )
                else:
                    record["outcome"] = "result"
                    result = json.dumps(canned.payload)
            encoded = result.encode("utf-8")
            response_headers["Content-Length"] = str(len(encoded))
            return encoded

    # The lambda_simple BackendDict instantiates this class for every account and region it is
    # asked for; swapping it before the first request makes every Lambda call land here.
    lambda_simple_backends.backend = DevstackLambdaBackend
    moto_api_backend.set_config({"lambda": {"use_docker": False}})


def _reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    STORE.clear()


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _require_function_name(data: dict[str, Any]) -> str:
    name = data.get("functionName")
    if not isinstance(name, str) or not name:
        raise ValueError("functionName is required")
    return function_key(name)


def handle_devstack(request: Request) -> Response:
    """The /_devstack/ endpoints."""
    path = request.path[len(PREFIX) :].strip("/")
    try:
        if path == "health" and request.method == "GET":
            return _json({"status": "ok", "pid": os.getpid()})
        if path == "reset" and request.method == "POST":
            _reset_moto()
            return _json({"status": "reset"})
        if path == "lambda/results" and request.method == "POST":
            data = request.get_json(force=True)
            name = _require_function_name(data)
            result = CannedResult(
                payload=data.get("payload"),
                function_error=data.get("functionError"),
                error_type=str(data.get("errorType") or "Exception"),
                delay_seconds=float(data.get("delaySeconds") or 0),
            )
            with STORE.lock:
                STORE.results.setdefault(name, deque()).append(result)
                queued = len(STORE.results[name])
            return _json({"functionName": name, "queued": queued}, status=201)
        if path == "lambda/invoke-errors" and request.method == "POST":
            data = request.get_json(force=True)
            name = _require_function_name(data)
            error = CannedInvokeError(
                status=int(data.get("status") or 429),
                error_type=str(data.get("errorType") or "TooManyRequestsException"),
                message=str(data.get("message") or "Rate exceeded"),
            )
            with STORE.lock:
                STORE.invoke_errors.setdefault(name, deque()).append(error)
                queued = len(STORE.invoke_errors[name])
            return _json({"functionName": name, "queued": queued}, status=201)
        if path == "sfn/results" and request.method == "POST":
            data = request.get_json(force=True)
            machine = str(data.get("stateMachine") or "").rsplit(":", 1)[-1]
            if not machine:
                raise ValueError("stateMachine is required")
            outcome = {
                "status": str(data.get("status") or "SUCCEEDED"),
                "output": data.get("output"),
                "error": data.get("error"),
                "cause": data.get("cause"),
                "delaySeconds": float(data.get("delaySeconds") or 0),
            }
            if outcome["status"] not in ("SUCCEEDED", "FAILED", "TIMED_OUT"):
                raise ValueError("status must be SUCCEEDED, FAILED or TIMED_OUT")
            with STORE.lock:
                STORE.sfn_results.setdefault(machine, deque()).append(outcome)
            return _json({"stateMachine": machine, "queued": True}, status=201)
        if path == "lambda/invocations" and request.method == "GET":
            wanted = request.args.get("functionName")
            key = function_key(wanted) if wanted else None
            with STORE.lock:
                records = [
                    dict(r)
                    for r in STORE.invocations
                    if key is None
                    or key in (r["resolvedFunctionName"], function_key(r["functionName"]))
                ]
            return _json({"invocations": records})
        if path == "lambda/pending" and request.method == "GET":
            with STORE.lock:
                pending = {
                    "results": {k: len(v) for k, v in STORE.results.items() if v},
                    "invokeErrors": {k: len(v) for k, v in STORE.invoke_errors.items() if v},
                }
            return _json(pending)
    except (ValueError, TypeError, AttributeError) as exc:
        return _json({"error": str(exc)}, status=400)
    return _json({"error": f"no such endpoint: {request.method} {request.path}"}, status=404)


class DevstackApp:
    """WSGI front of moto's DomainDispatcherApplication adding the /_devstack/ endpoints."""

    def __init__(self, moto_app: WSGIApplication) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            return handle_devstack(Request(environ))(environ, start_response)
        if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            # moto's own reset drops the functions; the canned results must go with them.
            STORE.clear()
        _CURRENT.record = None
        query = parse_qs(environ.get("QUERY_STRING", ""))
        _CURRENT.qualifier = (query.get("Qualifier") or [None])[0]

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            record = getattr(_CURRENT, "record", None)
            if record is not None:
                with STORE.lock:
                    record["statusCode"] = int(status.split(" ", 1)[0])
                    # When the answer left: with `timestamp`, how many calls ran at once.
                    record["answeredAt"] = time.time()
                    for name, value in headers:
                        if name.lower() == "x-amzn-requestid":
                            record["requestId"] = value
                _CURRENT.record = None
            return start_response(status, headers, exc_info)

        return self.moto_app(environ, capture)


def build_app() -> DevstackApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    _install_lambda_backend()
    _install_sfn_backend()
    _install_events_account()
    return DevstackApp(DomainDispatcherApplication(create_backend_app))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.moto_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--port-file",
        type=Path,
        help="write the bound port here once listening (how the parent learns a port-0 choice)",
    )
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import MotoRequestHandler

    server = make_server(
        args.host, args.port, build_app(), threaded=True, request_handler=MotoRequestHandler
    )

    def shutdown(signum: int, frame: FrameType | None) -> None:
        # SystemExit out of serve_forever(); the listening socket closes with the process.
        sys.exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.port_file is not None:
        # Written to a temp name and renamed, so the parent never reads a partial number.
        scratch = args.port_file.with_suffix(".tmp")
        scratch.write_text(str(server.server_port))
        scratch.rename(args.port_file)
    print(f"moto server (devstack) on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
