"""Step 6: the run's status, as DataHub's `dataHubExecutionRequestResult`.

RUNNING is written first (the claim, see DataHubClient.claim), the final status once, last:
GMS refuses any write after SUCCESS (ExecutionRequestResultValidator), and nothing in
DataHub ever times out a RUNNING request, so every claimed run must reach a final write.
Reports name the target by its label only: DataHub's UI shows them to users, and function
names and ARNs stay out of the browser.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lambda_trigger.contract import DataHubStatus, RunResult, now_ms
from lambda_trigger.mapping import Resolution
from lambda_trigger.sanitize import redact
from lambda_trigger_consumer.invoke import Invocation


def running(start_ms: int, resolution: Resolution) -> RunResult:
    return RunResult(
        DataHubStatus.RUNNING,
        start_ms,
        f"Starting {resolution.label} (matched by {resolution.matched_by}).",
        details={"target": resolution.label, "matchedBy": resolution.matched_by},
    )


def not_started(start_ms: int, message: str) -> RunResult:
    return RunResult(
        DataHubStatus.FAILURE,
        start_ms,
        f"Not started: {message}",
        duration_ms=0,
        details={"error": message},
    )


def after_invocation(start_ms: int, resolution: Resolution, invocation: Invocation) -> RunResult:
    # The function's response and any error text pass lambda_trigger.sanitize.redact: DataHub
    # shows reports to users, and no ARN, account id or URL may reach a browser.
    invocation = replace(
        invocation,
        response_excerpt=redact(invocation.response_excerpt)
        if invocation.response_excerpt is not None
        else None,
        error=redact(invocation.error) if invocation.error is not None else None,
    )
    details: dict[str, Any] = {
        "target": resolution.label,
        "matchedBy": resolution.matched_by,
        "outcome": invocation.outcome,
        "requestId": invocation.request_id,
        "statusCode": invocation.status_code,
        **{k: v for k, v in invocation.details.items() if v is not None},
    }
    duration = max(0, now_ms() - start_ms)
    label = resolution.label
    if invocation.outcome == "success":
        details["response"] = invocation.response_excerpt
        return RunResult(
            DataHubStatus.SUCCESS,
            start_ms,
            f"{label} succeeded (request id {invocation.request_id}).\nResponse: {invocation.response_excerpt}",
            duration_ms=duration,
            details=details,
        )
    if invocation.outcome == "function_error":
        details["functionError"] = invocation.function_error
        details["response"] = invocation.response_excerpt
        return RunResult(
            DataHubStatus.FAILURE,
            start_ms,
            f"{label} failed: function error {invocation.function_error} "
            f"(request id {invocation.request_id}).\nResponse: {invocation.response_excerpt}",
            duration_ms=duration,
            details=details,
        )
    if invocation.outcome == "started":
        # Asynchronous start (Lambda Event, Step Functions): stays RUNNING; completion
        # tracking is a later feature. No duration: the run has not ended.
        return RunResult(
            DataHubStatus.RUNNING,
            start_ms,
            f"{label} started asynchronously (request id {invocation.request_id}).",
            details=details,
        )
    details["error"] = invocation.error
    return RunResult(
        DataHubStatus.FAILURE,
        start_ms,
        f"{label} could not be invoked: {invocation.error}",
        duration_ms=duration,
        details=details,
    )
