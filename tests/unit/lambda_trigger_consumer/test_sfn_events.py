"""Issue 24: Step Functions status events on the completion queue. They are hostile until bound
to the run (its execution ARN, its state machine, StartExecution's start date); none that is
forged, garbage, duplicated or late stops the reader or reopens a run; only final statuses count,
mapped as DescribeExecution's; with events expected, polling is a slow safety net."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest
from datahub.metadata.schema_classes import ExecutionRequestResultClass
from prometheus_client import CollectorRegistry

from lambda_trigger.contract import DataHubStatus
from lambda_trigger_consumer.completion import CompletionReader
from lambda_trigger_consumer.driver import DriverConfig, RunDriver
from lambda_trigger_consumer.invoke import ExecutionStatus
from lambda_trigger_consumer.ledger import (
    LedgerView,
    Phase,
    RunEntry,
    Target,
    completion_record,
    fold,
)
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.poll_plan import PollPlan
from lambda_trigger_consumer.sfn_events import (
    event_unbound_reason,
    parse_status_event,
    start_matches,
)

PREFIX = "urn:li:dataHubExecutionRequest:"
RUN = "lt-1765000000000-abcd"
DATASET = "urn:li:dataset:(urn:li:dataPlatform:hive,sales,PROD)"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:earnings"
EXECUTION = f"arn:aws:states:eu-west-1:123456789012:execution:earnings:{RUN}"
STARTED = 1_765_000_000_123
# A forger's own execution, named after our run (any run id can be read in DataHub).
OTHER_MACHINE = {
    "executionArn": f"arn:aws:states:eu-west-1:123456789012:execution:payroll:{RUN}",
    "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:payroll",
}


def event(
    *,
    status: str = "SUCCEEDED",
    envelope: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """A status change event as Step Functions emits it (docs: "Step Functions EventBridge
    events"), for our run unless told otherwise."""
    run_input = payload or {
        "runId": RUN,
        "executionRequestUrn": f"{PREFIX}{RUN}",
        "datasetUrn": DATASET,
    }
    body: dict[str, Any] = {
        "executionArn": EXECUTION,
        "stateMachineArn": MACHINE,
        "name": RUN,
        "status": status,
        "startDate": STARTED,
        "stopDate": None if status == "RUNNING" else STARTED + 5000,
        "input": json.dumps(run_input),
        "inputDetails": {"included": True},
        "output": '{"rows": 42}' if status == "SUCCEEDED" else None,
        "outputDetails": {"included": True},
        "error": "States.TaskFailed" if status == "FAILED" else None,
        "cause": "boom" if status == "FAILED" else None,
    }
    body.update(detail)
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-07T15:00:05Z",
        "region": "eu-west-1",
        "resources": [EXECUTION],
        "detail": body,
        **(envelope or {}),
    }


def parse(message: dict[str, Any] | str) -> tuple[str, str | None, dict[str, Any]] | None:
    return parse_status_event(message if isinstance(message, str) else json.dumps(message), PREFIX)


def test_a_final_event_of_our_execution_becomes_a_fact_for_its_run() -> None:
    parsed = parse(event())
    assert parsed is not None
    run_id, dataset, fact = parsed
    assert (run_id, dataset) == (RUN, DATASET)
    assert fact["executionArn"] == EXECUTION and fact["stateMachineArn"] == MACHINE
    assert fact["status"] == "SUCCEEDED" and fact["startDate"] == STARTED
    assert fact["output"] == '{"rows": 42}'
    assert event_unbound_reason(fact, EXECUTION, MACHINE) is None
    assert start_matches(fact, STARTED)
    # StartExecution answers seconds with a fraction: a millisecond of rounding is the same.
    assert start_matches(fact, STARTED + 1)


@pytest.mark.parametrize(
    "message",
    [
        event(envelope={"source": "aws.lambda"}),
        event(envelope={"source": "my.app"}),
        event(envelope={"detail-type": "Step Functions State Machine Status Change"}),
        event(envelope={"account": "12345"}),
        event(envelope={"account": "210987654321"}),  # the ARNs name another account
        event(envelope={"region": "us-east-1"}),  # the ARNs name another region
        event(envelope={"detail": "SUCCEEDED"}),
        event(executionArn="arn:aws:lambda:eu-west-1:123456789012:function:earnings"),
        event(executionArn=f"arn:aws:states:eu-west-1:123456789012:execution:other:{RUN}"),
        event(stateMachineArn="earnings"),
        event(name="lt-other"),
        event(status="DONE"),
        event(startDate="yesterday"),
        event(startDate=True),
        event(stopDate=None),  # a final status without a stop date
        "[" * 100_000,  # nested too deeply for json
        "not json at all",
        json.dumps({"detail-type": "x"}),
        json.dumps(event(output="x" * 300_000)),  # larger than any EventBridge event
    ],
)
def test_anything_not_shaped_like_awss_event_is_malformed(message: Any) -> None:
    with pytest.raises(ValueError):
        parse(message)


@pytest.mark.parametrize(
    "message",
    [
        event(status="RUNNING"),
        event(status="PENDING_REDRIVE"),
        event(payload={"runId": RUN, "executionRequestUrn": "urn:li:other:1"}),
        event(payload={"runId": "lt-another", "executionRequestUrn": f"{PREFIX}lt-another"}),
        event(input=None, inputDetails={"included": False}),  # too large to be included
        event(input="not json"),
    ],
)
def test_events_not_ours_to_act_on_are_none(message: dict[str, Any]) -> None:
    assert parse(message) is None


def _fact(**detail: Any) -> dict[str, Any]:
    parsed = parse(event(**detail))
    assert parsed is not None
    return parsed[2]


def test_an_event_counts_only_for_the_runs_own_execution_machine_and_start() -> None:
    fact = _fact()
    other_run = "arn:aws:states:eu-west-1:123456789012:execution:earnings:lt-9"
    assert event_unbound_reason(fact, other_run, MACHINE) == "it names another execution"
    assert event_unbound_reason(fact, None, MACHINE) is not None
    other_machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:payroll"
    assert event_unbound_reason(fact, EXECUTION, other_machine) is not None
    # A qualified target (version or alias) runs executions of the same machine.
    assert event_unbound_reason(fact, EXECUTION, f"{MACHINE}:prod") is None
    lambda_record = {"requestId": "r-1", "functionArn": "arn:aws:lambda:x"}
    assert event_unbound_reason(lambda_record, EXECUTION, MACHINE) is not None
    # The execution ARN can be derived from a run id; StartExecution's start date cannot:
    # another start, or none recorded (a takeover), is confirmed with AWS by the owner.
    assert not start_matches(fact, STARTED - 1000)
    assert not start_matches(fact, None)


def _sfn_target() -> Target:
    return Target("stepfunctions", "earnings", "Earnings", "exact", state_machine_arn=MACHINE)


def _completion(fact: dict[str, Any]) -> bytes:
    return completion_record(RUN, DATASET, fact)


def test_a_forged_event_read_first_does_not_hide_the_genuine_one() -> None:
    # Before StartExecution is recorded (CLAIMED), the ARN the execution will have tells.
    entry: RunEntry | None = RunEntry(RUN, DATASET, phase=Phase.CLAIMED, target=_sfn_target())
    forged = _fact(**OTHER_MACHINE)
    entry = fold(entry, _completion(forged), RUN)
    entry = fold(entry, _completion(_fact()), RUN)
    assert entry is not None and entry.completion == _fact()
    # Once recorded, the start date too.
    entry = RunEntry(
        RUN,
        DATASET,
        phase=Phase.STARTED,
        target=_sfn_target(),
        execution_arn=EXECUTION,
        execution_start_ms=STARTED,
    )
    entry = fold(entry, _completion(_fact(startDate=STARTED - 5)), RUN)
    entry = fold(entry, _completion(_fact()), RUN)
    assert entry is not None and entry.completion == _fact()
    # Duplicates and later statuses change nothing: the first genuine final fact stays.
    entry = fold(entry, _completion(_fact(status="FAILED")), RUN)
    entry = fold(entry, _completion(_fact()), RUN)
    assert entry is not None and entry.completion == _fact()


# --- the reader: nothing stops it; each reject is counted (and dead-lettered) -------------


class _Sqs:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)


class _Ledger:
    def __init__(self) -> None:
        self.written: list[tuple[str, str | None, bytes | None]] = []

    def write(self, run_id: str, dataset: str | None, value: bytes | None) -> None:
        self.written.append((run_id, dataset, value))


class _DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, reason: str, why: str, *, key: bytes | None, value: bytes) -> None:
        self.sent.append((reason, why))


def _reader() -> tuple[CompletionReader, _Sqs, _Ledger, _DeadLetters, ConsumerMetrics]:
    sqs, ledger, dead = _Sqs(), _Ledger(), _DeadLetters()
    metrics = ConsumerMetrics(CollectorRegistry())
    reader = CompletionReader(
        sqs,
        "https://sqs/q",
        ledger,
        dead,
        metrics,
        threading.Event(),  # type: ignore[arg-type]
    )
    return reader, sqs, ledger, dead, metrics


def _count(metrics: ConsumerMetrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "lambda_trigger_consumer_completion_records_total", {"result": result}
    )
    return value or 0.0


def test_the_reader_writes_our_events_and_rejects_the_rest_without_stopping() -> None:
    reader, sqs, ledger, dead, metrics = _reader()
    garbage = [
        json.dumps(event(envelope={"source": "my.app"})),  # wrong source
        json.dumps(event(envelope={"detail-type": "Other"})),
        json.dumps(event(output="x" * 300_000)),  # oversized
        "\x00\xff garbage",
        "[" * 100_000,
    ]
    not_ours = [json.dumps(event(status="RUNNING"))]
    messages = [*garbage, *not_ours, json.dumps(event())]
    for n, body in enumerate(messages):
        reader._handle({"Body": body, "ReceiptHandle": f"h-{n}"})
    assert [reason for reason, _why in dead.sent] == ["completion_malformed"] * len(garbage)
    assert _count(metrics, "malformed") == len(garbage)
    assert _count(metrics, "unmatched") == len(not_ours)
    assert _count(metrics, "matched") == 1
    ((run_id, dataset, value),) = ledger.written
    assert (run_id, dataset) == (RUN, DATASET) and value is not None
    assert json.loads(value)["completion"]["executionArn"] == EXECUTION
    assert sqs.deleted == [f"h-{n}" for n in range(len(messages))]  # none comes back


# --- the owner: what a fact does to a Step Functions run ----------------------------------


class _Invoker:
    def __init__(self, status: str = "RUNNING") -> None:
        self.described = 0
        self.status = status

    def describe_execution(self, target: Target, arn: str) -> ExecutionStatus:
        self.described += 1
        return ExecutionStatus(self.status, output='{"from": "aws"}')

    def stop_execution(self, target: Target, arn: str, *, error: str, cause: str) -> None:
        raise AssertionError("not stopped here")


class _DataHub:
    def __init__(self) -> None:
        self.results: list[Any] = []
        self.stored: ExecutionRequestResultClass | None = None

    def write_result(self, run_id: str, result: Any) -> bool:
        self.results.append(result)
        return True

    def read_result(self, run_id: str) -> ExecutionRequestResultClass | None:
        return self.stored


class _LedgerWriter(_Ledger):
    def state(self, entry: RunEntry) -> None:
        self.written.append((entry.run_id, entry.dataset_urn, entry.to_json()))

    def tombstone(self, entry: RunEntry) -> None:
        self.written.append((entry.run_id, entry.dataset_urn, None))


def _driver(
    invoker: _Invoker, *, events: bool = True
) -> tuple[RunDriver, _DataHub, ConsumerMetrics]:
    view = LedgerView()
    view.assign(0)
    view.loaded(0)
    datahub = _DataHub()
    metrics = ConsumerMetrics(CollectorRegistry())
    driver = RunDriver(
        view,
        _LedgerWriter(),  # type: ignore[arg-type]
        datahub,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        invoker,  # type: ignore[arg-type]
        metrics,
        DriverConfig(sfn_status_events=events, sfn_events_poll_seconds=600.0),
    )
    return driver, datahub, metrics


def _started(fact: dict[str, Any] | None, *, start_recorded: bool = True) -> RunEntry:
    from lambda_trigger.contract import now_ms

    return RunEntry(
        RUN,
        DATASET,
        phase=Phase.STARTED,
        target=_sfn_target(),
        start_ms=now_ms() - 5000,
        deadline_ms=now_ms() + 3600_000,
        execution_arn=EXECUTION,
        execution_start_ms=STARTED if start_recorded else None,
        completion=fact,
    )


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("SUCCEEDED", DataHubStatus.SUCCESS),
        ("FAILED", DataHubStatus.FAILURE),
        ("TIMED_OUT", DataHubStatus.TIMEOUT),
        ("ABORTED", DataHubStatus.CANCELLED),
    ],
)
def test_a_bound_final_event_ends_the_run_as_describe_would_without_asking_aws(
    outcome: str, expected: DataHubStatus
) -> None:
    invoker = _Invoker()
    driver, datahub, _metrics = _driver(invoker)
    assert driver._track(0, _started(_fact(status=outcome))) is None
    (result,) = datahub.results
    assert result.status == expected and invoker.described == 0
    if outcome == "SUCCEEDED":
        assert '"rows": 42' in result.details["output"]
    if outcome == "FAILED":
        assert result.details["error"] == "States.TaskFailed"


@pytest.mark.parametrize(
    ("forged", "confirmed"),
    [
        (OTHER_MACHINE, 0),  # another execution: refused outright
        ({"startDate": STARTED + 60_000}, 1),  # the right ARN, a guessed start: AWS says no
    ],
)
def test_a_forged_event_does_not_end_the_run_and_polling_takes_over(
    forged: dict[str, Any], confirmed: int
) -> None:
    invoker = _Invoker()
    driver, datahub, metrics = _driver(invoker)
    entry = _started(_fact(**forged))
    delay = driver._track(0, entry)
    assert datahub.results == [] and invoker.described == confirmed
    assert _count(metrics, "unbound") == 1
    assert entry.completion is None and entry.completions_ignored
    # The genuine event may have been dropped behind it: back to short polls.
    assert delay is not None and delay < 600.0 * 0.9
    assert driver._track(0, entry) is not None and invoker.described == confirmed + 1
    # Once AWS or the binding contradicted an event, guessed starts are not even confirmed.
    entry.completion = _fact(startDate=STARTED + 7)
    driver._track(0, entry)
    assert _count(metrics, "unbound") == 2 and invoker.described == confirmed + 1


def test_a_bound_event_without_a_recorded_start_is_confirmed_with_one_describe() -> None:
    invoker = _Invoker("SUCCEEDED")
    driver, datahub, _metrics = _driver(invoker)
    driver._track(0, _started(_fact(), start_recorded=False))
    (result,) = datahub.results
    assert result.status == DataHubStatus.SUCCESS and invoker.described == 1
    # AWS says it still runs: the event was forged; the run goes on.
    invoker = _Invoker("RUNNING")
    driver, datahub, metrics = _driver(invoker)
    entry = _started(_fact(), start_recorded=False)
    assert driver._track(0, entry) is not None
    assert datahub.results == [] and _count(metrics, "unbound") == 1


def test_with_events_expected_a_run_is_not_polled_until_the_safety_net_is_due() -> None:
    invoker = _Invoker()
    driver, datahub, _metrics = _driver(invoker)
    entry = _started(None)
    for _ in range(5):  # woken up by its own ledger records, again and again
        delay = driver._track(0, entry)
        assert delay is not None and delay > 500.0
    assert invoker.described == 0 and datahub.results == []
    # Without events: asked about at once, as before.
    invoker = _Invoker()
    driver, _datahub, _metrics = _driver(invoker, events=False)
    driver._track(0, _started(None))
    assert invoker.described == 1


@pytest.mark.parametrize("stored", ["SUCCESS", "FAILURE", None])
def test_an_event_for_a_run_ended_or_unknown_never_reopens_or_starts_it(
    stored: str | None,
) -> None:
    invoker = _Invoker()
    driver, datahub, metrics = _driver(invoker)
    if stored is not None:  # its run ended (tombstoned): a duplicate, or read late
        datahub.stored = ExecutionRequestResultClass(status=stored)
    orphan = RunEntry(RUN, DATASET, completion=_fact(status="FAILED"))
    assert driver._advance(0, orphan) is None
    assert datahub.results == [] and invoker.described == 0
    # An unknown run's event was forged: counted; a duplicate of a final one is not.
    assert _count(metrics, "unbound") == (1 if stored is None else 0)


def test_polls_with_events_expected_wait_for_the_safety_net() -> None:
    now = [0.0]
    plan = PollPlan(max_rate=5.0, rng=random.Random(4), clock=lambda: now[0], events_wait=600.0)
    first = plan.until_due("a", until_deadline=3600.0)
    assert 540.0 <= first <= 660.0
    now[0] = 100.0
    assert plan.until_due("a", until_deadline=3500.0) == pytest.approx(first - 100.0)
    assert plan.until_due("b", until_deadline=30.0) <= 33.0  # its deadline comes first
    now[0] = 700.0
    assert plan.until_due("a", 3000.0) == 0.0
    assert plan.next_delay("a", "flow", 700.0) >= 540.0
    plan.distrust("a")
    assert plan.until_due("a", 3000.0) == 0.0
    assert plan.next_delay("a", "flow", 800.0) < 10.0
    # Without events: nothing waits.
    assert PollPlan(rng=random.Random(5)).until_due("a", 3600.0) == 0.0
