"""Issue 24: fair scheduling of waiting run steps (step_queue.py) and the synchronous invokes'
adaptive concurrency (invoke_limit.py). A first-in first-out pool fails the priority and
round-robin tests; a strict priority queue without aging fails the aging tests."""

from __future__ import annotations

import threading
import time

import pytest

from lambda_trigger.contract import SourceType
from lambda_trigger_consumer.invoke_limit import AdaptiveLimit
from lambda_trigger_consumer.step_queue import (
    FairExecutor,
    FairQueue,
    Priority,
    PriorityGate,
    priority_of,
)

X = "urn:li:dataset:(urn:li:dataPlatform:s3,x,PROD)"
Y = "urn:li:dataset:(urn:li:dataPlatform:s3,y,PROD)"
Z = "urn:li:dataset:(urn:li:dataPlatform:s3,z,PROD)"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_priority_classes_from_the_source_type() -> None:
    assert priority_of(SourceType.API.value) == Priority.INTERACTIVE
    assert priority_of("MANUAL_INGESTION_SOURCE") == Priority.INTERACTIVE
    assert priority_of(SourceType.SDK.value) == Priority.PROGRAMMATIC
    assert priority_of(SourceType.CLI.value) == Priority.PROGRAMMATIC
    assert priority_of("SCHEDULED_INGESTION_SOURCE") == Priority.PROGRAMMATIC
    assert priority_of("SOMETHING_ELSE") == Priority.PROGRAMMATIC
    assert priority_of(None) == Priority.PROGRAMMATIC
    assert priority_of(SourceType.LINEAGE.value) == Priority.TRIGGERED
    assert [p.label for p in Priority] == ["interactive", "programmatic", "triggered"]


def test_a_click_goes_before_a_queued_burst() -> None:
    queue: FairQueue[str] = FairQueue(clock=Clock())
    for i in range(500):
        queue.put(f"x{i}", Priority.PROGRAMMATIC, X)
    for i in range(50):
        queue.put(f"lineage{i}", Priority.TRIGGERED, Z)
    queue.put("click", Priority.INTERACTIVE, Y)
    assert queue.counts() == {
        Priority.INTERACTIVE: 1,
        Priority.PROGRAMMATIC: 500,
        Priority.TRIGGERED: 50,
    }
    assert queue.take() == "click"
    taken = [queue.take() for _ in range(550)]
    assert taken[:500] == [f"x{i}" for i in range(500)]  # FIFO within a dataset
    assert taken[500:] == [f"lineage{i}" for i in range(50)]
    assert queue.take() is None and len(queue) == 0


def test_round_robin_across_datasets_within_a_class() -> None:
    queue: FairQueue[str] = FairQueue(clock=Clock())
    for i in range(500):
        queue.put(f"x{i}", Priority.PROGRAMMATIC, X)
    assert queue.take() == "x0"
    queue.put("y0", Priority.PROGRAMMATIC, Y)  # one run of another dataset, after the burst
    assert queue.take() == "x1"  # X's turn was already due in this round
    assert queue.take() == "y0"  # then Y, not after the 498 others
    queue.put("y1", Priority.PROGRAMMATIC, Y)
    queue.put("z0", Priority.PROGRAMMATIC, Z)
    assert [queue.take() for _ in range(5)] == ["x2", "y1", "z0", "x3", "x4"]


def test_aging_lets_a_waiting_programmatic_run_pass_a_stream_of_clicks() -> None:
    clock = Clock()
    queue: FairQueue[str] = FairQueue(aging_seconds=30.0, clock=clock)
    queue.put("scheduled", Priority.PROGRAMMATIC, X)
    clock.now += 10
    queue.put("click-1", Priority.INTERACTIVE, Y)
    assert queue.take() == "click-1"  # waited 10 s: still behind a fresh click
    clock.now += 25  # the scheduled run has waited 35 s: more than one class's worth
    queue.put("click-2", Priority.INTERACTIVE, Y)
    assert queue.take() == "scheduled"
    assert queue.take() == "click-2"


def test_aging_reaches_the_lowest_class_and_ties_go_to_the_higher_class() -> None:
    clock = Clock()
    queue: FairQueue[str] = FairQueue(aging_seconds=30.0, clock=clock)
    queue.put("lineage", Priority.TRIGGERED, Z)
    clock.now += 30
    queue.put("sdk", Priority.PROGRAMMATIC, X)
    clock.now += 30  # lineage: rank 2 - 60/30 = 0; sdk: 1 - 30/30 = 0; click: 0
    queue.put("click", Priority.INTERACTIVE, Y)
    assert [queue.take(), queue.take(), queue.take()] == ["click", "sdk", "lineage"]


def test_no_step_starves_under_a_steady_stream_of_clicks() -> None:
    clock = Clock()
    queue: FairQueue[str] = FairQueue(aging_seconds=30.0, clock=clock)
    queue.put("lineage", Priority.TRIGGERED, Z)
    taken: list[str] = []
    for i in range(200):  # a click a second, each taken a second later
        queue.put(f"click{i}", Priority.INTERACTIVE, Y)
        clock.now += 1
        taken.append(str(queue.take()))
        if taken[-1] == "lineage":
            break
    assert taken[-1] == "lineage"
    assert 55 <= len(taken) <= 65  # after about 2 classes x 30 s, not never


def test_the_aged_class_is_served_round_robin_too() -> None:
    clock = Clock()
    queue: FairQueue[str] = FairQueue(aging_seconds=1.0, clock=clock)
    for i in range(3):
        queue.put(f"x{i}", Priority.PROGRAMMATIC, X)
    queue.put("y0", Priority.PROGRAMMATIC, Y)
    clock.now += 5
    queue.put("click", Priority.INTERACTIVE, Y)
    assert [queue.take() for _ in range(3)] == ["x0", "y0", "x1"]


def test_aging_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FairQueue(aging_seconds=0)


def test_executor_makes_threads_on_demand_up_to_the_bound() -> None:
    executor = FairExecutor(32, name="t", idle_seconds=0.5)
    assert executor.threads() == 0
    release = threading.Event()
    peak = 0
    lock = threading.Lock()
    running = 0

    def task() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(10)
        with lock:
            running -= 1

    futures = [executor.submit(task, priority=Priority.PROGRAMMATIC, dataset=X) for _ in range(40)]
    deadline = time.monotonic() + 10
    while executor.running() < 32 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert executor.running() == 32 and executor.threads() == 32
    assert executor.queued()[Priority.PROGRAMMATIC] == 8
    release.set()
    for future in futures:
        future.result(10)
    assert peak == 32
    deadline = time.monotonic() + 10
    while executor.threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert executor.threads() == 0  # idle threads end
    executor.shutdown()


def test_executor_runs_no_more_than_its_limit_and_takes_clicks_first() -> None:
    limit = AdaptiveLimit(8)
    executor = FairExecutor(8, name="t", limit=limit.current)
    limit.on_raise = executor.wake
    gate = threading.Event()
    order: list[str] = []

    def task(name: str) -> str:
        order.append(name)  # when it was taken
        gate.wait(10)
        return name

    limit.throttled()
    limit.throttled()  # within the cooldown: one signal
    assert limit.current() == 4
    first = [
        executor.submit(task, f"x{i}", priority=Priority.PROGRAMMATIC, dataset=X) for i in range(4)
    ]
    deadline = time.monotonic() + 10
    while executor.running() < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    rest = [
        executor.submit(task, f"x{i}", priority=Priority.PROGRAMMATIC, dataset=X)
        for i in range(4, 20)
    ]
    click = executor.submit(task, "click", priority=Priority.INTERACTIVE, dataset=Y)
    time.sleep(0.2)
    assert executor.running() == 4  # the limit, not the bound of 8
    gate.set()
    for future in [*first, *rest, click]:
        future.result(10)
    # Right after the four already running (a FIFO pool: 20th); threads may append a
    # little out of the order they took their tasks in.
    assert order.index("click") < 8
    executor.shutdown()


def test_shutdown_cancels_what_waits() -> None:
    executor = FairExecutor(1, name="t")
    gate = threading.Event()
    running = executor.submit(gate.wait, 10, priority=Priority.PROGRAMMATIC, dataset=X)
    waiting = executor.submit(gate.wait, 10, priority=Priority.PROGRAMMATIC, dataset=X)
    deadline = time.monotonic() + 10
    while executor.running() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    executor.shutdown()
    assert waiting.cancelled()
    gate.set()
    assert running.result(10) is True
    with pytest.raises(RuntimeError):
        executor.submit(gate.wait, 1, priority=Priority.PROGRAMMATIC, dataset=X)


def test_adaptive_limit_halves_on_throttling_and_climbs_back() -> None:
    clock = Clock()
    raised: list[int] = []
    limit = AdaptiveLimit(64, clock=clock, cooldown_seconds=1.0)
    limit.on_raise = lambda: raised.append(limit.current())
    assert limit.current() == 64
    limit.throttled()
    limit.throttled()  # the same wave
    assert limit.current() == 32 and limit.cuts == 1
    clock.now += 1.5
    limit.throttled()
    assert limit.current() == 16
    successes = 0
    while not raised:  # a limit's worth of successes adds one slot
        limit.succeeded()
        successes += 1
    assert 16 <= successes <= 18 and raised == [17]
    for _ in range(5000):
        limit.succeeded()
    assert limit.current() == 64  # never above the bound
    for _ in range(20):
        clock.now += 2
        limit.throttled()
    assert limit.current() == 1  # never below the floor


def test_the_claims_gate_holds_its_limit_and_lets_clicks_in_first() -> None:
    """Issue 24: of the claims waiting for DataHub, a click's goes next, then the others in
    the order they came; never more than the limit at once."""
    gate = PriorityGate(2)
    gate.acquire(Priority.PROGRAMMATIC)
    gate.acquire(Priority.PROGRAMMATIC)  # full
    order: list[str] = []
    at_once = [0, 0]  # now, most
    lock = threading.Lock()

    def claim(name: str, priority: Priority) -> None:
        gate.acquire(priority)
        with lock:
            order.append(name)
            at_once[0] += 1
            at_once[1] = max(at_once[1], at_once[0])
        time.sleep(0.01)
        with lock:
            at_once[0] -= 1
        gate.release()

    waiting = [
        ("burst-1", Priority.PROGRAMMATIC),
        ("burst-2", Priority.PROGRAMMATIC),
        ("lineage", Priority.TRIGGERED),
        ("click", Priority.INTERACTIVE),
    ]
    threads = []
    for name, priority in waiting:
        thread = threading.Thread(target=claim, args=(name, priority))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while gate.waiting() < len(threads) and time.monotonic() < deadline:
            time.sleep(0.001)  # each in the queue before the next arrives
    assert gate.waiting() == 4
    assert gate.waiting(Priority.INTERACTIVE) == 1  # the runs_queued gauge counts them
    assert gate.waiting(Priority.PROGRAMMATIC) == 2
    gate.release()  # one of the first two holders is done: one waiter goes in
    time.sleep(0.005)
    gate.release()
    for thread in threads:
        thread.join(5)
    assert order == ["click", "burst-1", "burst-2", "lineage"]
    assert at_once[1] <= 2
    assert gate.waiting() == 0
    gate.acquire(Priority.PROGRAMMATIC)  # free again: no wait
    gate.acquire(Priority.PROGRAMMATIC)
    assert gate.waiting() == 0


def test_the_claims_gate_ages_waiters_as_the_queue_does() -> None:
    """A programmatic claim that has waited longer than the aging goes before a fresh click."""
    now = [0.0]
    gate = PriorityGate(1, aging_seconds=30.0, clock=lambda: now[0])
    gate.acquire(Priority.INTERACTIVE)
    order: list[str] = []

    def claim(name: str, priority: Priority) -> None:
        gate.acquire(priority)
        order.append(name)
        gate.release()

    old = threading.Thread(target=claim, args=("backfill", Priority.PROGRAMMATIC))
    old.start()
    while gate.waiting() < 1:
        time.sleep(0.001)
    now[0] = 31.0
    fresh = threading.Thread(target=claim, args=("click", Priority.INTERACTIVE))
    fresh.start()
    while gate.waiting() < 2:
        time.sleep(0.001)
    gate.release()
    old.join(5)
    fresh.join(5)
    assert order == ["backfill", "click"]
    with pytest.raises(ValueError):
        PriorityGate(1, aging_seconds=0)
