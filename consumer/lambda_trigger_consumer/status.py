"""Step 6: the run's status, as DataHub's `dataHubExecutionRequestResult`.

RUNNING is written first (the claim, see DataHubClient.claim), one final status last: GMS
refuses any write after SUCCESS, CANCELLED or DUPLICATE (ExecutionRequestResultValidator), and
nothing in DataHub ever times out a RUNNING request, so every claimed run must reach a final
write: the run driver guarantees it, this module only words it.

Reports are shown to users by DataHub's UI and the api: they name the target by its label and
give request ids and execution names, never a function name, ARN, account id or URL. Every
result built here leaves through the one redaction (lambda_trigger.redact, `@_redacted`): the
report text and the free-text details (a function's response, an execution's error and cause).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

from lambda_trigger.contract import CLAIM_KEY, DataHubStatus, RunResult, now_ms
from lambda_trigger.redact import redact as redact_text
from lambda_trigger_consumer.invoke import ExecutionStatus, Invocation
from lambda_trigger_consumer.ledger import Target

SUMMARY_CHARS = 2000
# Details that carry text someone else wrote (AWS, the function): redacted like the report.
_FREE_TEXT_DETAILS = frozenset({"response", "output", "error", "cause", "functionError"})
P = ParamSpec("P")
R = TypeVar("R", RunResult, RunResult | None)


def redact(text: str | None, limit: int = SUMMARY_CHARS) -> str:
    return redact_text(text, limit)


def _redacted(build: Callable[P, R]) -> Callable[P, R]:
    """The result `build` returns, with its report and free-text details redacted."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        result = build(*args, **kwargs)
        if result is None:
            return result
        details = {
            key: redact(value) if key in _FREE_TEXT_DETAILS and isinstance(value, str) else value
            for key, value in result.details.items()
        }
        return replace(result, report=redact_text(result.report), details=details)

    return wrapper


def _duration(start_ms: int) -> int:
    return max(0, now_ms() - start_ms)


def _base(target: Target | None) -> dict[str, Any]:
    if target is None:
        return {}
    return {"target": target.label, "matchedBy": target.matched_by, "kind": target.kind}


def with_parameters(result: RunResult, target: Target | None) -> RunResult:
    """The run's parameters (values the user typed, never AWS details) shown in its report
    and kept in the structured report, for every status a started run can end with."""
    if target is None or target.parameters is None or "parameters" in result.details:
        return result
    text = json.dumps(target.parameters, sort_keys=True, ensure_ascii=False)
    return replace(
        result,
        report=f"{result.report}\nParameters: {text}",
        details={**result.details, "parameters": target.parameters},
    )


@_redacted
def running(start_ms: int, target: Target, nonce: str, deadline_ms: int) -> RunResult:
    cancellable = target.kind == "stepfunctions"
    return with_parameters(_running(start_ms, target, nonce, deadline_ms, cancellable), target)


def _running(
    start_ms: int, target: Target, nonce: str, deadline_ms: int, cancellable: bool
) -> RunResult:
    return RunResult(
        DataHubStatus.RUNNING,
        start_ms,
        f"Starting {target.label} (matched by {target.matched_by}).",
        details={
            **_base(target),
            CLAIM_KEY: nonce,
            "deadlineMs": deadline_ms,
            "cancellable": cancellable,
        },
    )


@_redacted
def not_started(
    start_ms: int,
    message: str,
    status: DataHubStatus = DataHubStatus.FAILURE,
    **details: Any,
) -> RunResult:
    prefix = {
        DataHubStatus.CANCELLED: "Cancelled before it started",
        DataHubStatus.DUPLICATE: "Not started",
    }.get(status, "Not started")
    return RunResult(
        status,
        start_ms,
        f"{prefix}: {message}",
        duration_ms=0,
        details={"error": message, "started": False, **details},
    )


@_redacted
def after_invocation(start_ms: int, target: Target, invocation: Invocation) -> RunResult:
    details: dict[str, Any] = {
        **_base(target),
        "outcome": invocation.outcome,
        "requestId": invocation.request_id,
        "statusCode": invocation.status_code,
        **{k: v for k, v in invocation.details.items() if v is not None},
    }
    label = target.label
    rid = invocation.request_id
    if invocation.outcome == "success":
        details["response"] = redact(invocation.response_excerpt)
        return RunResult(
            DataHubStatus.SUCCESS,
            start_ms,
            f"{label} succeeded (request id {rid}).\nResponse: {details['response']}",
            duration_ms=_duration(start_ms),
            details=details,
        )
    if invocation.outcome == "function_error":
        details["functionError"] = invocation.function_error
        details["response"] = redact(invocation.response_excerpt)
        return RunResult(
            DataHubStatus.FAILURE,
            start_ms,
            f"{label} failed: the function raised an error ({invocation.function_error}, "
            f"request id {rid}).\nResponse: {details['response']}",
            duration_ms=_duration(start_ms),
            details=details,
        )
    if invocation.outcome == "unknown":
        details["error"] = invocation.error
        return RunResult(
            DataHubStatus.FAILURE,
            start_ms,
            f"{label}: outcome unknown: {invocation.error}.",
            duration_ms=_duration(start_ms),
            details=details,
        )
    details["error"] = invocation.error
    details["errorCode"] = invocation.error_code
    return RunResult(
        DataHubStatus.FAILURE,
        start_ms,
        f"{label} could not be started: {invocation.error}.",
        duration_ms=_duration(start_ms),
        details=details,
    )


@_redacted
def accepted_untracked(start_ms: int, target: Target, invocation: Invocation) -> RunResult:
    """An Event invoke without a destination to our queue: Lambda accepted the event, and
    nobody will ever say how the function did. Say exactly that, and end the run."""
    return RunResult(
        DataHubStatus.SUCCESS,
        start_ms,
        f"{target.label}: accepted by Lambda (request id {invocation.request_id}); "
        "completion not tracked: the function has no OnSuccess/OnFailure destination "
        "to the consumer's completion queue.",
        duration_ms=_duration(start_ms),
        details={
            **_base(target),
            "outcome": "accepted",
            "completionTracked": False,
            "requestId": invocation.request_id,
        },
    )


@_redacted
def from_destination(start_ms: int, target: Target | None, completion: dict[str, Any]) -> RunResult:
    """An asynchronous Lambda's outcome, from its destination record (see completion.py)."""
    label = target.label if target else "The function"
    rid = completion.get("requestId")
    response = redact(completion.get("response"))
    details = {
        **_base(target),
        "outcome": completion.get("condition"),
        "requestId": rid,
        "functionError": completion.get("functionError"),
        "approximateInvokeCount": completion.get("approximateInvokeCount"),
        "response": response,
    }
    if completion.get("condition") == "Success" and not completion.get("functionError"):
        return RunResult(
            DataHubStatus.SUCCESS,
            start_ms,
            f"{label} succeeded (request id {rid}).\nResponse: {response}",
            duration_ms=_duration(start_ms),
            details=details,
        )
    why = completion.get("functionError") or completion.get("condition")
    return RunResult(
        DataHubStatus.FAILURE,
        start_ms,
        f"{label} failed ({why}, after {completion.get('approximateInvokeCount')} attempts, "
        f"request id {rid}).\nResponse: {response}",
        duration_ms=_duration(start_ms),
        details=details,
    )


_SFN_STATUS = {
    "SUCCEEDED": DataHubStatus.SUCCESS,
    "FAILED": DataHubStatus.FAILURE,
    "TIMED_OUT": DataHubStatus.TIMEOUT,
    "ABORTED": DataHubStatus.CANCELLED,
}


@_redacted
def sfn_final(
    start_ms: int, target: Target, run_id: str, execution: ExecutionStatus
) -> RunResult | None:
    """The final status for a finished execution; None while it still runs."""
    status = _SFN_STATUS.get(execution.status)
    if status is None:
        return None
    details: dict[str, Any] = {
        **_base(target),
        "outcome": execution.status,
        "executionName": run_id,
    }
    if status is DataHubStatus.SUCCESS:
        details["output"] = redact(execution.output)
        summary = f"Output: {details['output']}"
    else:
        details["error"] = redact(execution.error, 200)
        details["cause"] = redact(execution.cause)
        summary = f"Error: {details['error']}\nCause: {details['cause']}"
    word = {
        DataHubStatus.SUCCESS: "succeeded",
        DataHubStatus.FAILURE: "failed",
        DataHubStatus.TIMEOUT: "timed out",
        DataHubStatus.CANCELLED: "was stopped",
    }[status]
    return RunResult(
        status,
        start_ms,
        f"{target.label} {word} (execution {run_id}).\n{summary}",
        duration_ms=_duration(start_ms),
        details=details,
    )


@_redacted
def timed_out(
    start_ms: int,
    target: Target | None,
    why: str,
    *,
    request_id: str | None = None,
    execution_name: str | None = None,
) -> RunResult:
    known = []
    if request_id:
        known.append(f"Lambda request id {request_id}")
    if execution_name:
        known.append(f"execution {execution_name}")
    tail = f" ({', '.join(known)})" if known else ""
    return RunResult(
        DataHubStatus.TIMEOUT,
        start_ms,
        f"{target.label if target else 'The run'}: {why}{tail}.",
        duration_ms=_duration(start_ms),
        details={
            **_base(target),
            "outcome": "timeout",
            "error": why,
            "requestId": request_id,
            "executionName": execution_name,
        },
    )


@_redacted
def cancelled(start_ms: int, target: Target, actor: str | None) -> RunResult:
    return RunResult(
        DataHubStatus.CANCELLED,
        start_ms,
        f"{target.label}: cancelled by {actor or 'a user'}.",
        duration_ms=_duration(start_ms),
        details={**_base(target), "outcome": "cancelled", "cancelledBy": actor},
    )
