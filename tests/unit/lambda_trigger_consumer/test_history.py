"""history.py without a stack: what a run start and a run end write, and that a refused write
never reaches the run."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from prometheus_client import CollectorRegistry

from lambda_trigger.contract import DataHubStatus, RunResult
from lambda_trigger_consumer.history import (
    HistorySettings,
    RunHistory,
    flow_urn,
    job_urn,
    result_type,
)
from lambda_trigger_consumer.ledger import Phase, RunEntry, Target

DATASET = "urn:li:dataset:(urn:li:dataPlatform:athena,db.t,PROD)"


class _Graph:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[MetadataChangeProposalWrapper] = []
        self.calls: list[list[str]] = []  # aspect names, one list per GMS call

    def emit_mcp(self, mcp: MetadataChangeProposalWrapper) -> None:
        self.emit_mcps([mcp])

    def emit_mcps(self, mcps: list[MetadataChangeProposalWrapper]) -> None:
        if self.fail:
            raise RuntimeError("GMS said no")
        self.sent.extend(mcps)
        self.calls.append([m.aspectName or "" for m in mcps])


class _Client:
    def __init__(self, fail: bool = False) -> None:
        self.graph = _Graph(fail)


def _entry(source_type: str = "LAMBDA_TRIGGER_API") -> RunEntry:
    return RunEntry(
        run_id="lt-1",
        dataset_urn=DATASET,
        phase=Phase.CLAIMED,
        request={
            "run_id": "lt-1",
            "dataset_urn": DATASET,
            "executor_id": "x",
            "source_type": source_type,
            "requested_at_ms": 1,
            "actor_urn": "urn:li:corpuser:alice",
            "extra_args": {},
            "writer": "urn:li:corpuser:svc",
        },
        target=Target(kind="lambda", key="earnings", label="Earnings loader", matched_by="m"),
        start_ms=1000,
    )


def _history(client: _Client, enabled: bool = True) -> RunHistory:
    return RunHistory(
        client,  # type: ignore[arg-type]
        HistorySettings(LAMBDA_TRIGGER_NATIVE_HISTORY=enabled),
        registry=CollectorRegistry(),
    )


def _aspects(sent: list[MetadataChangeProposalWrapper]) -> dict[tuple[str, str], Any]:
    return {(m.entityUrn or "", m.aspectName or ""): m.aspect for m in sent}


def test_start_writes_the_instance_its_task_and_a_started_event() -> None:
    client = _Client()
    history = _history(client)
    history.started(_entry())
    history.flush()
    got = _aspects(client.graph.sent)
    dpi = "urn:li:dataProcessInstance:lt-1"
    props = got[(dpi, "dataProcessInstanceProperties")]
    assert props.name == "lt-1" and props.created.time == 1000
    assert props.created.actor == "urn:li:corpuser:alice"
    assert props.type == "BATCH_AD_HOC"
    assert got[(dpi, "dataProcessInstanceOutput")].outputs == [DATASET]
    job = "urn:li:dataJob:(urn:li:dataFlow:(aws-lambda,earnings,PROD),run)"
    assert got[(dpi, "dataProcessInstanceRelationships")].parentTemplate == job
    assert got[(job, "dataJobInfo")].name == "Earnings loader"
    event = got[(dpi, "dataProcessInstanceRunEvent")]
    assert event.status == "STARTED" and event.timestampMillis == 1000
    assert (DATASET, "operation") not in got


def test_end_writes_complete_and_on_success_an_operation() -> None:
    client = _Client()
    history = _history(client)
    history.finished(_entry(), RunResult(DataHubStatus.SUCCESS, 1000, "ok", 500))
    history.flush()
    got = _aspects(client.graph.sent)
    event = got[("urn:li:dataProcessInstance:lt-1", "dataProcessInstanceRunEvent")]
    assert event.status == "COMPLETE" and event.timestampMillis == 1500
    assert event.result.type == "SUCCESS" and event.result.nativeResultType == "SUCCESS"
    assert event.durationMillis == 500
    operation = got[(DATASET, "operation")]
    assert operation.operationType == "CUSTOM"
    assert operation.customOperationType == "LAMBDA_INGESTION"
    assert operation.actor == "urn:li:corpuser:alice"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (DataHubStatus.FAILURE, "FAILURE"),
        (DataHubStatus.TIMEOUT, "FAILURE"),
        (DataHubStatus.CANCELLED, "SKIPPED"),
        (DataHubStatus.DUPLICATE, "SKIPPED"),
    ],
)
def test_other_ends_have_no_operation(status: DataHubStatus, expected: str) -> None:
    assert result_type(status) == expected
    client = _Client()
    history = _history(client)
    history.finished(_entry(), RunResult(status, 1000, "no", 0))
    history.flush()
    got = _aspects(client.graph.sent)
    event = got[("urn:li:dataProcessInstance:lt-1", "dataProcessInstanceRunEvent")]
    # An end in the start's millisecond must not replace the STARTED event's key.
    assert event.timestampMillis == 1001
    assert (DATASET, "operation") not in got


def test_scheduled_runs_are_batch_scheduled() -> None:
    client = _Client()
    history = _history(client)
    history.started(_entry("SCHEDULED_INGESTION_SOURCE"))
    history.flush()
    props = _aspects(client.graph.sent)[
        ("urn:li:dataProcessInstance:lt-1", "dataProcessInstanceProperties")
    ]
    assert props.type == "BATCH_SCHEDULED"


def test_a_refused_write_is_counted_and_never_raised() -> None:
    client = _Client(fail=True)
    history = _history(client)
    history.started(_entry())  # must not raise
    history.finished(_entry(), RunResult(DataHubStatus.SUCCESS, 1000, "ok", 5))
    history.flush()
    assert history.failures._value.get() == 2


def test_off_writes_nothing() -> None:
    client = _Client()
    history = _history(client, enabled=False)
    history.started(_entry())
    history.finished(_entry(), RunResult(DataHubStatus.SUCCESS, 1000, "ok", 5))
    history.flush()
    assert client.graph.sent == []


def test_a_late_completion_without_its_request_only_adds_the_end() -> None:
    client = _Client()
    history = _history(client)
    bare = RunEntry(run_id="lt-1", dataset_urn=DATASET)
    history.finished(bare, RunResult(DataHubStatus.SUCCESS, 1000, "ok", 5))
    history.flush()
    assert [m.aspectName for m in client.graph.sent] == ["dataProcessInstanceRunEvent"]


def test_urns_stay_valid_for_arn_keys() -> None:
    target = Target(
        kind="stepfunctions",
        key="arn:aws:states:us-east-1:123456789012:stateMachine:x(y),z",
        label="l",
        matched_by="m",
    )
    assert flow_urn(target) == (
        "urn:li:dataFlow:(aws-sfn,arn:aws:states:us-east-1:123456789012:stateMachine:x_y__z,PROD)"
    )
    assert job_urn(target).endswith(",PROD),run)")


def test_a_record_is_one_batch_call_and_its_run_event_alone_last() -> None:
    client = _Client()
    history = _history(client)
    history.started(_entry())
    history.flush()
    history.finished(_entry(), RunResult(DataHubStatus.SUCCESS, 1000, "ok", 500))
    history.flush()
    calls = client.graph.calls
    # start: instance + task in one call, STARTED alone; end: instance + operation, COMPLETE.
    assert len(calls) == 4, calls
    assert calls[1] == ["dataProcessInstanceRunEvent"]
    assert calls[3] == ["dataProcessInstanceRunEvent"]
    assert "dataProcessInstanceProperties" in calls[0] and "dataJobInfo" in calls[0]
    assert "operation" in calls[2] and "dataProcessInstanceRunEvent" not in calls[2]


class _BlockingGraph(_Graph):
    """Holds its first call until released; refuses any batch holding `refuse` (a run id)."""

    def __init__(self, refuse: str | None = None) -> None:
        super().__init__()
        self.release = threading.Event()
        self.refuse = refuse

    def emit_mcps(self, mcps: list[MetadataChangeProposalWrapper]) -> None:
        if not self.calls:
            assert self.release.wait(10)
        if self.refuse and any(self.refuse in (m.entityUrn or "") for m in mcps):
            self.calls.append(["refused"])
            raise RuntimeError("422: GMS said no")
        super().emit_mcps(mcps)


def _run(n: int) -> RunEntry:
    entry = _entry()
    entry.run_id = f"lt-{n}"
    return entry


def test_records_handed_over_while_the_writer_is_busy_go_out_in_two_calls() -> None:
    """Issue 24: a burst's run starts share GMS calls: the records, then the run events."""
    client = _Client()
    client.graph = _BlockingGraph()
    history = _history(client)
    history.started(_run(0))  # the writer takes it, and waits in its first call
    for n in range(1, 6):
        history.started(_run(n))
    client.graph.release.set()
    history.flush()
    calls = client.graph.calls
    assert len(calls) == 4, calls  # run 0: two calls; runs 1-5: two calls
    assert calls[3] == ["dataProcessInstanceRunEvent"] * 5
    assert "dataProcessInstanceRunEvent" not in calls[2]
    assert calls[2].count("dataProcessInstanceProperties") == 5
    assert "dataJobInfo" not in calls[2]  # the task's template went out with run 0
    assert history.writes.labels(event="started")._value.get() == 6
    assert history.failures._value.get() == 0


def test_a_refused_batch_is_written_run_by_run_and_costs_only_the_bad_run() -> None:
    client = _Client()
    client.graph = _BlockingGraph(refuse="lt-3")
    history = _history(client)
    history.started(_run(0))
    for n in range(1, 6):
        history.started(_run(n))
    client.graph.release.set()
    history.flush()
    sent = {m.entityUrn for m in client.graph.sent}
    assert {f"urn:li:dataProcessInstance:lt-{n}" for n in (0, 1, 2, 4, 5)} <= sent
    assert "urn:li:dataProcessInstance:lt-3" not in sent
    assert history.failures._value.get() == 1
    assert history.writes.labels(event="started")._value.get() == 5
