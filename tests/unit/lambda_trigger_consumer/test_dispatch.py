"""Issue 24: the run driver's dispatch loop looks at a run when it has news or when the look
its last step asked for is due, not only on its periodic look at every run (which it makes
every FULL_SCAN_SECONDS; here an hour, so that only the targeted looks can pass)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lambda_trigger.contract import RunRequest
from lambda_trigger_consumer import driver as driver_module
from lambda_trigger_consumer.driver import DriverConfig, RunDriver
from lambda_trigger_consumer.ledger import LedgerView, RunEntry, cancel_record, request_record
from lambda_trigger_consumer.metrics import ConsumerMetrics

DATASET = "urn:li:dataset:(urn:li:dataPlatform:athena,db.table,PROD)"


class _Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the dispatch test called {name}")


class _DataHub(_Unused):
    def write_result(self, *_: Any) -> None:  # the driver keeps this bound method
        raise AssertionError("the dispatch test wrote a result")


def _request(run_id: str) -> bytes:
    return request_record(RunRequest(run_id, DATASET, "lambda-trigger", "SDK", 1000), None)


@pytest.fixture
def driven(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(driver_module, "FULL_SCAN_SECONDS", 3600.0)
    view = LedgerView()
    view.assign(0)
    view.loaded(0)
    driver = RunDriver(
        view,
        _Unused(),  # type: ignore[arg-type]
        _DataHub(),  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        ConsumerMetrics(CollectorRegistry()),
        DriverConfig(),
    )
    looks: list[tuple[str, float]] = []
    replies: dict[str, list[float | None]] = {}
    seen = threading.Condition()

    def advance(partition: int, entry: RunEntry) -> float | None:
        with seen:
            looks.append((entry.run_id, time.monotonic()))
            seen.notify_all()
        plan = replies.get(entry.run_id) or [None]
        return plan.pop(0) if plan else None

    monkeypatch.setattr(driver, "_advance", advance)

    def wait_looks(run_id: str, count: int, timeout: float = 5.0) -> list[float]:
        with seen:
            seen.wait_for(lambda: sum(1 for r, _ in looks if r == run_id) >= count, timeout)
            return [t for r, t in looks if r == run_id]

    driver.start()
    yield view, replies, wait_looks
    driver.stop(1.0)


def test_a_run_is_looked_at_again_when_its_step_asked(driven: Any) -> None:
    view, replies, wait_looks = driven
    replies["lt-due"] = [0.3, None]  # "look at me again in 0.3 s", then "only on news"
    view.apply(0, "lt-due", _request("lt-due"))
    times = wait_looks("lt-due", 2)
    assert len(times) == 2, "the due look never came (only a full scan would have found it)"
    assert 0.25 <= times[1] - times[0] < 2.0
    time.sleep(0.5)
    assert len(wait_looks("lt-due", 3, timeout=0.1)) == 2  # None: no look without news


def test_news_of_a_waiting_run_brings_a_look_at_once(driven: Any) -> None:
    view, replies, wait_looks = driven
    replies["lt-news"] = [None, None]
    view.apply(0, "lt-news", _request("lt-news"))
    assert len(wait_looks("lt-news", 1)) == 1
    time.sleep(0.3)
    view.apply(0, "lt-news", cancel_record("lt-news", DATASET, "urn:li:corpuser:alice"))
    times = wait_looks("lt-news", 2)
    assert len(times) == 2, "a new ledger record for the run did not bring a look"
