"""How a Step Functions execution ended, from EventBridge (issue 24): polling becomes a safety net.

Step Functions sends "Step Functions Execution Status Change" events to EventBridge (best
effort; docs.aws.amazon.com/step-functions/latest/dg/cw-events.html). An EventBridge rule can
deliver them to the completion queue that already carries Lambda destination records; the
queue's reader (completion.py) hands such a message to `parse_status_event`:

    {"version": "0", "id": "...", "detail-type": "Step Functions Execution Status Change",
     "source": "aws.states", "account": "123456789012", "time": "...", "region": "eu-west-1",
     "resources": ["<executionArn>"],
     "detail": {"executionArn": "arn:aws:states:eu-west-1:123456789012:execution:<machine>:<name>",
                "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:<machine>",
                "name": "<name>", "status": "SUCCEEDED", "startDate": 1551225146847,
                "stopDate": 1551225151881, "input": "<json>", "inputDetails": {"included": true},
                "output": "<json>", "outputDetails": {"included": true},
                "error": null, "cause": null}}

Our executions are named after the run id and their input is the run's payload (runId,
executionRequestUrn, datasetUrn: contract.lambda_payload), so an event names its run. Like a
destination record it becomes a `completion` fact in the run ledger, and like one it is hostile
until bound (docs/security.md): the owner counts it only when `event_unbound_reason` finds
nothing wrong, i.e. its executionArn is the run's (recorded at StartExecution), its
stateMachineArn the run's target. Its startDate must also be the one StartExecution answered
(`start_matches`: the execution ARN can be derived from a run id; the start date, to the
millisecond, cannot); when it is not, or the run's start date is not recorded (a new owner took
it over), the owner confirms the event with one DescribeExecution, once per run: a run whose
event AWS contradicted refuses such events from then on. Only final statuses are facts: a RUNNING event (or one read after the
final one) never reopens or delays a run.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lambda_trigger.sfn_events_rule import DETAIL_TYPE, SOURCE
from lambda_trigger.sfn_events_rule import FINAL_STATUSES as _FINAL

# The statuses that end an execution, mapped exactly as DescribeExecution's (status.sfn_final).
FINAL_STATUSES = frozenset(_FINAL)
_STATUSES = FINAL_STATUSES | {"RUNNING", "PENDING_REDRIVE"}
# EventBridge's largest event is 256 KB; a bigger message was not written by EventBridge.
MAX_EVENT_BYTES = 256 * 1024
# What a fact keeps of the execution's output, error and cause (the ledger record stays small;
# the report shows an excerpt anyway, see status.py).
_TEXT_CHARS = 4000
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_NAME = r"[^:\s]{1,80}"  # Step Functions names: 1-80 characters, never a colon
_EXECUTION_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    rf"execution:(?P<machine>{_NAME}):(?P<name>{_NAME})$"
)
_MACHINE_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    rf"stateMachine:(?P<machine>{_NAME})(?::(?P<qualifier>[A-Za-z0-9_-]{{1,80}}))?$"
)


def is_event(record: Any) -> bool:
    """An EventBridge event (it has `detail-type`); Lambda destination records never do."""
    return isinstance(record, dict) and "detail-type" in record


def _millis(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"detail.{what} is not a time in milliseconds")
    return value


def _text(value: Any) -> str | None:
    return value[:_TEXT_CHARS] if isinstance(value, str) else None


def parse_status_event(
    body: str, executor_urn_prefix: str
) -> tuple[str, str | None, dict[str, Any]] | None:
    """(runId, datasetUrn, fact) for a final status of one of our executions; None for an
    event that is not ours to act on (another project's execution, a RUNNING status, an input
    too large to be included). Raises ValueError for anything that is not such an event as
    AWS writes it."""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_EVENT_BYTES:
        raise ValueError("larger than any EventBridge event")
    try:
        event = json.loads(body)
    except RecursionError as exc:
        raise ValueError("not an EventBridge event (nested too deeply)") from exc
    if not is_event(event):
        raise ValueError("not an EventBridge event (no detail-type)")
    if event.get("source") != SOURCE:
        raise ValueError("an EventBridge event whose source is not aws.states")
    if event.get("detail-type") != DETAIL_TYPE:
        raise ValueError("not a Step Functions Execution Status Change event")
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or _ACCOUNT.match(account) is None:
        raise ValueError("the event's account is not an AWS account id")
    if not isinstance(region, str) or _REGION.match(region) is None:
        raise ValueError("the event's region is not an AWS region")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise ValueError("the event has no detail object")
    execution = _EXECUTION_ARN.match(str(detail.get("executionArn") or ""))
    machine = _MACHINE_ARN.match(str(detail.get("stateMachineArn") or ""))
    if execution is None or machine is None:
        raise ValueError("detail.executionArn or detail.stateMachineArn is not such an ARN")
    for arn in (execution, machine):
        # Step Functions sends an execution's events to the bus of its own account and region.
        if arn["account"] != account or arn["region"] != region:
            raise ValueError("an ARN of another account or region than the event's")
    if execution["machine"] != machine["machine"] or detail.get("name") != execution["name"]:
        raise ValueError("detail.name, executionArn and stateMachineArn do not agree")
    status = detail.get("status")
    if status not in _STATUSES:
        raise ValueError("detail.status is not a Step Functions execution status")
    start = _millis(detail.get("startDate"), "startDate")
    stop = detail.get("stopDate")
    if status in FINAL_STATUSES:
        stop = _millis(stop, "stopDate")
    if status not in FINAL_STATUSES:
        return None  # a run ends on a final status only: RUNNING changes nothing
    raw_input = detail.get("input")
    try:
        payload = json.loads(raw_input) if isinstance(raw_input, str) else None
    except (ValueError, RecursionError):
        payload = None  # someone else's execution with a non-JSON input
    if not isinstance(payload, dict):
        return None  # not ours, or its input was too large to be included (polling tells)
    run_id, urn = payload.get("runId"), payload.get("executionRequestUrn")
    if (
        run_id != execution["name"]
        or not isinstance(urn, str)
        or not urn.startswith(executor_urn_prefix)
    ):
        return None
    dataset = payload.get("datasetUrn") if isinstance(payload.get("datasetUrn"), str) else None
    fact = {
        "source": SOURCE,
        # The ledger keys a fact by its requestId (a refused one is never taken again): an
        # event's identity is its execution and the start it claims.
        "requestId": f"{execution.string}@{start}",
        "executionArn": execution.string,
        "stateMachineArn": machine.string,
        "status": status,
        "startDate": start,
        "stopDate": stop,
        "output": _text(detail.get("output")),
        "error": _text(detail.get("error")),
        "cause": _text(detail.get("cause")),
        "eventId": _text(event.get("id")),
        "time": _text(event.get("time")),
    }
    return str(run_id), dataset, fact


def is_status_event_fact(fact: dict[str, Any] | None) -> bool:
    return fact is not None and fact.get("source") == SOURCE


def _unqualified(arn: str) -> str:
    """A state machine ARN without a version or alias qualifier (executions name the machine)."""
    return ":".join(arn.split(":")[:7])


def event_unbound_reason(
    fact: dict[str, Any], execution_arn: str | None, state_machine_arn: str | None
) -> str | None:
    """None when this status event names the run's own execution; else why not.
    `execution_arn`: the run's (recorded at StartExecution, or derived from its name). The
    start date is the caller's to check (`start_matches`)."""
    if not is_status_event_fact(fact):
        return "it is not a Step Functions status event"
    if not execution_arn or fact.get("executionArn") != execution_arn:
        return "it names another execution"
    if not state_machine_arn or fact.get("stateMachineArn") != _unqualified(state_machine_arn):
        return "it names another state machine"
    if fact.get("status") not in FINAL_STATUSES:
        return "its status is not final"
    return None


def start_matches(fact: dict[str, Any], start_ms: int | None) -> bool:
    """Is the event's startDate the one StartExecution answered (False when not recorded)?"""
    return start_ms is not None and _near(fact.get("startDate"), start_ms)


def expected_execution_arn(state_machine_arn: str | None, run_id: str) -> str | None:
    """The ARN StartExecution gives an execution named `run_id` (as invoke.execution_arn)."""
    parts = (state_machine_arn or "").split(":")
    if len(parts) < 7:
        return None
    return ":".join([*parts[:5], "execution", parts[6], run_id])


def binds(fact: dict[str, Any] | None, execution_arn: str | None, start_ms: int | None) -> bool:
    """Could this fact be the run's own event (the ledger's test for a genuine fact replacing
    a forged one read first; the owner checks the rest)?"""
    return (
        is_status_event_fact(fact)
        and fact is not None
        and execution_arn is not None
        and fact.get("executionArn") == execution_arn
        and (start_ms is None or _near(fact.get("startDate"), start_ms))
    )


def _near(started: Any, start_ms: int) -> bool:
    # StartExecution answers seconds with a fraction; a float's rounding may move a millisecond.
    return (
        isinstance(started, int) and not isinstance(started, bool) and abs(started - start_ms) <= 1
    )
