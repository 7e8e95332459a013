"""Which waiting run step goes next when more runs are ready than there are threads (issue 24).

The run driver hands each ready step of a run to a pool: the quick steps' pool or the
synchronous invokes' pool (driver.py). A first-in first-out queue there made a click on one
dataset wait behind a burst of 500 runs of another that was queued first. Here a waiting step
is taken:

1. by priority class (`Priority`, from the request's `source.type`, see `priority_of`):
   a person waiting for the answer first, then programmatic requests, then runs the consumer
   triggered itself (lineage triggers, which a single upstream change can fan out);
2. within a class, round-robin across datasets: every dataset with waiting steps gets one in
   turn, FIFO within the dataset, so dataset Y's single run goes before the 499 remaining runs
   of dataset X;
3. with aging, so that no step waits forever: a step of class p ranks as though it had arrived
   p x `aging_seconds` later than it did. A programmatic step that has waited 30 s (the
   default) ranks with a fresh click, one that has waited longer goes before it; a stream of
   clicks can delay a lineage-triggered run by at most 2 x 30 s more than a click.

`FairExecutor` is the pool: threads made on demand up to a bound (idle ones end), and an
optional concurrency limit below the bound (invoke_limit.py lowers it when AWS throttles).
`PriorityGate` orders the same way the steps' claims in DataHub, of which only a few go at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Generic, TypeVar

from lambda_trigger.contract import SourceType

T = TypeVar("T")


class Priority(IntEnum):
    """Lower goes first. The label is the `priority` label of `runs_queued`."""

    INTERACTIVE = 0
    PROGRAMMATIC = 1
    TRIGGERED = 2

    @property
    def label(self) -> str:
        return self.name.lower()


# Someone is looking at the screen: the api's Run button, and DataHub's Ingestion page "Run"
# of one of our ingestion sources (source_request.py: CreateIngestionExecutionRequestResolver
# writes MANUAL_INGESTION_SOURCE). Everything else someone wrote from a script, a scheduler
# (SCHEDULED_INGESTION_SOURCE), the CLI or the SDK, and unknown types, is programmatic.
INTERACTIVE_SOURCE_TYPES = frozenset({SourceType.API.value, "MANUAL_INGESTION_SOURCE"})
TRIGGERED_SOURCE_TYPES = frozenset({SourceType.LINEAGE.value})


def priority_of(source_type: str | None) -> Priority:
    """The class of a run from its request's `source.type`. The type is the writer's word:
    a writer the consumer lets start runs (authorize.py) could claim the api's type. That
    buys it no more than a place in this queue, and aging bounds what it costs others."""
    if source_type in INTERACTIVE_SOURCE_TYPES:
        return Priority.INTERACTIVE
    if source_type in TRIGGERED_SOURCE_TYPES:
        return Priority.TRIGGERED
    return Priority.PROGRAMMATIC


@dataclass(eq=False)
class _Waiting(Generic[T]):
    item: T
    since: float
    taken: bool = False


class FairQueue(Generic[T]):
    """Not thread-safe: FairExecutor holds its lock around every call."""

    def __init__(
        self, aging_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if aging_seconds <= 0:
            raise ValueError("aging_seconds must be > 0")
        self._aging = aging_seconds
        self._clock = clock
        # Per class: the ring of datasets with waiting steps (the front one goes next), and
        # every waiting step in arrival order (its head is the class's oldest, for aging;
        # steps taken through the ring are dropped from it lazily).
        self._rings: dict[Priority, OrderedDict[str, deque[_Waiting[T]]]] = {
            p: OrderedDict() for p in Priority
        }
        self._arrivals: dict[Priority, deque[_Waiting[T]]] = {p: deque() for p in Priority}
        self._counts: dict[Priority, int] = dict.fromkeys(Priority, 0)

    def __len__(self) -> int:
        return sum(self._counts.values())

    def counts(self) -> dict[Priority, int]:
        return dict(self._counts)

    def put(self, item: T, priority: Priority, dataset: str) -> None:
        waiting = _Waiting(item, self._clock())
        ring = self._rings[priority]
        if dataset in ring:
            ring[dataset].append(waiting)
        else:
            ring[dataset] = deque([waiting])  # a new dataset joins at the end of the round
        self._arrivals[priority].append(waiting)
        self._counts[priority] += 1

    def take(self) -> T | None:
        now = self._clock()
        chosen: Priority | None = None
        best = 0.0
        for priority in Priority:  # ascending: on a tie the higher class wins
            arrivals = self._arrivals[priority]
            while arrivals and arrivals[0].taken:
                arrivals.popleft()
            if not arrivals:
                continue
            rank = priority - (now - arrivals[0].since) / self._aging
            if chosen is None or rank < best:
                chosen, best = priority, rank
        if chosen is None:
            return None
        # Round-robin inside the class. The class stays chosen while its oldest step waits,
        # and every dataset of the ring gets a turn, so that step is reached within one round.
        ring = self._rings[chosen]
        dataset, steps = next(iter(ring.items()))
        waiting = steps.popleft()
        if steps:
            ring.move_to_end(dataset)
        else:
            del ring[dataset]
        waiting.taken = True
        self._counts[chosen] -= 1
        return waiting.item

    def drain(self) -> list[T]:
        """Everything still waiting (shutdown)."""
        items: list[T] = []
        while (item := self.take()) is not None:
            items.append(item)
        return items


_Task = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class FairExecutor:
    """A thread pool taking its work from a FairQueue. Threads are made when work waits and
    no thread is free, up to `max_workers`; a thread idle for `idle_seconds` ends. At most
    `limit()` tasks run at once (default: `max_workers`)."""

    def __init__(
        self,
        max_workers: int,
        *,
        name: str,
        aging_seconds: float = 30.0,
        limit: Callable[[], int] | None = None,
        idle_seconds: float = 30.0,
        keep_threads: int = 0,
    ) -> None:
        self._max = max_workers
        # Threads that do not end when idle (prestart makes them): the first run after a start
        # or a quiet spell then does not wait for a thread to be made (issue 25).
        self._keep = min(keep_threads, max_workers)
        self._name = name
        self._limit = limit or (lambda: max_workers)
        self._idle_seconds = idle_seconds
        self._queue: FairQueue[_Task] = FairQueue(aging_seconds)
        self._cond = threading.Condition()
        self._workers = 0
        self._running = 0
        self._shutdown = False
        self._made = 0  # threads made so far (names)

    # --- what the driver and the metrics use ----------------------------------------------

    def submit(
        self, fn: Callable[..., Any], *args: Any, priority: Priority, dataset: str
    ) -> Future[Any]:
        future: Future[Any] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.put((future, fn, args), priority, dataset)
            self._grow()
            self._cond.notify()
        return future

    def queued(self) -> dict[Priority, int]:
        with self._cond:
            return self._queue.counts()

    def running(self) -> int:
        with self._cond:
            return self._running

    def threads(self) -> int:
        with self._cond:
            return self._workers

    def prestart(self) -> None:
        """Make the kept threads now (the warm-up), rather than on the first task."""
        with self._cond:
            while self._workers < self._keep and not self._shutdown:
                self._start_thread()

    def wake(self) -> None:
        """The limit rose: waiting work may start now."""
        with self._cond:
            self._grow()
            self._cond.notify_all()

    def shutdown(self, *, cancel_futures: bool = True) -> None:
        with self._cond:
            self._shutdown = True
            left = self._queue.drain() if cancel_futures else []
            self._cond.notify_all()
        for future, _fn, _args in left:
            future.cancel()

    # --- workers --------------------------------------------------------------------------

    def _allowed(self) -> int:
        return max(1, min(self._max, self._limit()))

    def _grow(self) -> None:
        """With self._cond held: one more thread if work waits that no free thread will take."""
        free = self._workers - self._running
        if free < len(self._queue) and self._workers < self._allowed():
            self._start_thread()

    def _start_thread(self) -> None:
        """With self._cond held."""
        self._workers += 1
        self._made += 1
        threading.Thread(target=self._work, name=f"{self._name}-{self._made}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._cond:
                idle_until = time.monotonic() + self._idle_seconds
                while not (len(self._queue) and self._running < self._allowed()):
                    if self._shutdown and not len(self._queue):
                        self._workers -= 1
                        return
                    left = idle_until - time.monotonic()
                    if left <= 0 and self._workers > self._keep:
                        self._workers -= 1
                        return
                    if left <= 0:  # a kept thread: idle on
                        idle_until = time.monotonic() + self._idle_seconds
                        left = self._idle_seconds
                    # Woken by submit and by finished tasks; the timeout also catches a limit
                    # that rose without a wake().
                    self._cond.wait(min(left, 0.5))
                task = self._queue.take()
                assert task is not None
                self._running += 1
                self._grow()
            future, fn, args = task
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # handed to the future, as ThreadPoolExecutor does
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            with self._cond:
                self._running -= 1
                self._cond.notify()


class PriorityGate:
    """At most `limit` holders at once; a waiter goes in by priority class, with the same
    aging as the queue (a class-p waiter ranks as though it came p x `aging_seconds` later),
    then in arrival order. The run driver holds it around its claims in DataHub (driver.py):
    in a burst the synchronous runs' claims came from up to `max_inflight` threads at once,
    and a click's claim queued at GMS behind all of them."""

    def __init__(
        self,
        limit: int,
        aging_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if aging_seconds <= 0:
            raise ValueError("aging_seconds must be > 0")
        self.limit = max(1, limit)
        self._aging = aging_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._held = 0
        self._waiting: list[tuple[int, float, threading.Event]] = []  # in arrival order

    def acquire(self, priority: Priority) -> None:
        with self._lock:
            if self._held < self.limit and not self._waiting:
                self._held += 1
                return
            turn = threading.Event()
            self._waiting.append((int(priority), self._clock(), turn))
        turn.wait()  # release() hands its place over: _held already counts this holder

    def release(self) -> None:
        with self._lock:
            if not self._waiting:
                self._held -= 1
                return
            now = self._clock()
            # The lowest rank; on a tie the earliest (min keeps the first of equals).
            best = min(
                range(len(self._waiting)),
                key=lambda i: self._waiting[i][0] - (now - self._waiting[i][1]) / self._aging,
            )
            _p, _since, turn = self._waiting.pop(best)
            turn.set()

    def waiting(self, priority: Priority | None = None) -> int:
        """Waiters (of one class, if given): the runs_queued gauge counts them too."""
        with self._lock:
            return sum(1 for p, _s, _t in self._waiting if priority is None or p == priority)
