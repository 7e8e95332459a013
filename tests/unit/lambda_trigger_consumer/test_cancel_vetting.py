"""A KILL is judged (driver._vet_cancel) even when it reaches the run as the run ends (its
outcome is written in driver._finish): one from a writer who may not cancel is counted in
cancels_ignored_total and remembered, one from a writer who may is accepted; either way the
run ends with its result."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prometheus_client import CollectorRegistry

from lambda_trigger.contract import DataHubStatus, RunRequest, RunResult
from lambda_trigger_consumer.driver import DriverConfig, RunDriver
from lambda_trigger_consumer.ledger import (
    LedgerView,
    Phase,
    RunEntry,
    Target,
    cancel_record,
    result_to_dict,
)
from lambda_trigger_consumer.metrics import ConsumerMetrics

DATASET = "urn:li:dataset:(urn:li:dataPlatform:athena,db.table,PROD)"
MALLORY = "urn:li:corpuser:mallory"
ALICE = "urn:li:corpuser:alice"


class _Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the test called {name}")


class _DataHub(_Unused):
    def __init__(self) -> None:
        self.written: list[str] = []

    def write_result(self, run_id: str, result: Any) -> bool:
        self.written.append(f"{run_id} {result.status.value}")
        return True


class _Ledger(_Unused):
    def __init__(self) -> None:
        self.records: list[str] = []

    def state(self, entry: RunEntry) -> None:
        self.records.append(f"state {entry.run_id}")

    def tombstone(self, entry: RunEntry) -> None:
        self.records.append(f"tombstone {entry.run_id}")


def _driver() -> tuple[RunDriver, ConsumerMetrics, _DataHub, _Ledger]:
    view = LedgerView()
    view.assign(0)
    view.loaded(0)
    metrics = ConsumerMetrics(CollectorRegistry())
    datahub, ledger = _DataHub(), _Ledger()
    driver = RunDriver(
        view,
        ledger,  # type: ignore[arg-type]
        datahub,  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        metrics,
        DriverConfig(),
        cancel_gate=lambda actor, _request: actor == ALICE,
    )
    return driver, metrics, datahub, ledger


def _ended_run(cancel_by: str) -> RunEntry:
    request = RunRequest("lt-1", DATASET, "lambda-trigger", "SDK", 1000)
    return RunEntry(
        "lt-1",
        DATASET,
        request={**asdict(request), "writer": ALICE},
        result=result_to_dict(RunResult(DataHubStatus.SUCCESS, 1000, "done", 5, {})),
        cancel_by=cancel_by,
        seq=3,
    )


def _ignored(metrics: ConsumerMetrics) -> float:
    return metrics.registry.get_sample_value("lambda_trigger_consumer_cancels_ignored_total") or 0.0


def test_an_unauthorised_kill_of_an_ended_run_is_counted() -> None:
    driver, metrics, datahub, ledger = _driver()
    entry = _ended_run(MALLORY)
    driver._advance(0, entry)
    assert _ignored(metrics) == 1
    assert entry.cancels_ignored == [MALLORY] and entry.cancel_by is None
    assert datahub.written == ["lt-1 SUCCESS"]  # the outcome stands
    assert ledger.records[-1] == "tombstone lt-1"


def test_an_authorised_kill_of_an_ended_run_is_accepted() -> None:
    driver, metrics, datahub, ledger = _driver()
    entry = _ended_run(ALICE)
    driver._advance(0, entry)
    assert _ignored(metrics) == 0
    assert entry.cancel_ok and entry.cancel_by == ALICE
    assert datahub.written == ["lt-1 SUCCESS"]
    assert ledger.records[-1] == "tombstone lt-1"


def test_a_kill_merged_into_the_run_by_its_last_save_is_judged() -> None:
    """The KILL's ledger record arrived while the run's invoke was running: the save of its
    outcome merges it into the entry, and the same step writes the status and closes the run."""
    driver, metrics, datahub, _ledger = _driver()
    entry = _ended_run(MALLORY)
    running = RunEntry("lt-1", DATASET, request=entry.request, seq=2)
    driver._view.update_local(0, running)
    driver._view.apply(0, "lt-1", cancel_record("lt-1", DATASET, MALLORY))
    driver._set_result(0, running, RunResult(DataHubStatus.SUCCESS, 1000, "done", 5, {}))
    assert _ignored(metrics) == 1
    assert datahub.written == ["lt-1 SUCCESS"]


def test_a_run_with_a_kill_on_its_way_waits_before_its_claim() -> None:
    """A KILL read from the MCL (runner.py marks it) and not yet in the ledger holds the run
    before its claim: nothing is written to DataHub until the KILL is in, or the wait is over."""
    driver, _metrics, datahub, _ledger = _driver()
    target = Target(kind="lambda", key="earnings", label="", matched_by="rule", function="f")
    entry = RunEntry(
        "lt-2",
        DATASET,
        request=_ended_run(ALICE).request,
        phase=Phase.CLAIMED,
        target=target,
        start_ms=1000,
        deadline_ms=10_000,
        nonce=driver._mint(),
        seq=2,
    )
    driver._view.expect_cancel("lt-2")
    assert driver._claim_and_invoke(0, entry) == 0.02  # look again in a moment
    assert datahub.written == []  # (a claim would have called the DataHub double: _Unused)
    assert driver._view.cancel_expected("lt-2", 5.0)
    assert not driver._view.cancel_expected("lt-2", 0.0)  # the wait is bounded
    driver._view.cancel_settled("lt-2")
    assert not driver._view.cancel_expected("lt-2", 5.0)
