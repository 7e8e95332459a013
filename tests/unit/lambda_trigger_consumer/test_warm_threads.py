"""Issue 25, the first click: the threads a run passes through (a step thread, an invoke
thread, the history writer, the status writer) are made by the warm-up, not by the first run,
and the consumer's warm-up has a step that makes them."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry

from lambda_trigger_consumer.driver import DriverConfig, RunDriver
from lambda_trigger_consumer.history import RunHistory
from lambda_trigger_consumer.ledger import LedgerView
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.status_writer import StatusWriter
from lambda_trigger_consumer.warm import consumer_warmup


class _Unused:
    """A collaborator the warm-up must not call."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"warm-up called {name}")


def _driver() -> tuple[RunDriver, RunHistory, StatusWriter]:
    history = RunHistory(_Unused(), registry=CollectorRegistry())  # type: ignore[arg-type]
    writer = StatusWriter(_Unused())  # type: ignore[arg-type]
    driver = RunDriver(
        LedgerView(),
        _Unused(),  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        ConsumerMetrics(CollectorRegistry()),
        DriverConfig(),
        history=history,
        status_writer=writer,
    )
    return driver, history, writer


def test_warm_makes_the_runs_threads_before_the_first_run() -> None:
    driver, history, writer = _driver()
    before = set(threading.enumerate())
    assert driver._steps.threads() == 0 and driver._invokes.threads() == 0

    driver.warm()

    made = {t.name.split("-")[0].split("_")[0] for t in set(threading.enumerate()) - before}
    assert made == {"step", "invoke", "history", "status"}
    assert driver._steps.threads() == 1 and driver._invokes.threads() == 1
    # Again (a keep-warm pass): nothing more is made.
    now = set(threading.enumerate())
    driver.warm()
    assert set(threading.enumerate()) - now == set()
    driver._steps.shutdown()
    driver._invokes.shutdown()
    history.close(0)
    writer.close(1)


def test_the_consumer_warm_up_has_a_threads_step() -> None:
    calls: list[str] = []
    warmup = consumer_warmup(
        authorizer=None,
        datahub=_Unused(),  # type: ignore[arg-type]
        registry=_Unused(),  # type: ignore[arg-type]
        topic="t",
        invoker=_Unused(),  # type: ignore[arg-type]
        mappings=_Unused(),  # type: ignore[arg-type]
        stop=threading.Event(),
        keep_warm_seconds=0,
        threads=lambda: calls.append("threads"),
    )
    _warm, detail = warmup.status()
    assert "threads" in detail["warming"]  # type: ignore[operator]
    warmup.run_once()  # the other steps fail (their collaborators refuse); this one runs
    assert calls == ["threads"]
