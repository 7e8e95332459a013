"""When to ask Step Functions about an execution next (issue 24): few calls per run, and a
DescribeExecution rate the account's quota can carry whatever the number of executions.

DescribeExecution's quota is a token bucket per account and region shared by every caller;
polling each of 1,000 executions every 30 s is 33 calls a second from one consumer. Three rules:

1. a run's polls back off exponentially (1 s, 2 s, 4 s, ... up to `max_interval`), as before;
2. a target whose executions have finished before has an expected duration (a moving average
   of them): a run of it is first asked about when it is expected to be done, so a 2-minute
   state machine costs StartExecution and one or two DescribeExecution calls, not eight;
3. the calls of all runs together stay under `max_rate` a second: with N executions tracked,
   no run is asked about more often than every N / max_rate seconds.
Each wait is jittered by 10 %, so that runs started together are not asked about together.

With Step Functions status events expected (`events_wait`, LAMBDA_TRIGGER_SFN_STATUS_EVENTS;
sfn_events.py), an event ends the run and polling is a slow safety net for a lost event: a run
is first asked about `events_wait` seconds after it is first tracked (or at its deadline), then
every `events_wait`. A run whose event was refused (forged) goes back to the rules above, since
the genuine event may have been dropped behind it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from lambda_trigger_consumer.aws_calls import jittered

# How much of the expected duration passes before the first poll: a little early, so that a
# run that is as long as the others is reported within one short poll of its end.
EXPECTED_SHARE = 0.95
# The moving average's weight of the newest duration.
NEWEST_WEIGHT = 0.3


class PollPlan:
    def __init__(
        self,
        max_rate: float = 5.0,
        *,
        first_interval: float = 1.0,
        max_interval: float = 30.0,
        longest_wait: float = 900.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        events_wait: float | None = None,
    ) -> None:
        self._max_rate = max_rate
        self._first = first_interval
        self._max_interval = max_interval
        self._longest = longest_wait
        self._rng = rng or random.Random()
        self._clock = clock
        self._lock = threading.Lock()
        # run id -> (its next back-off interval, when it was last planned)
        self._intervals: dict[str, tuple[float, float]] = {}
        self._pruned = clock()
        self._expected: dict[str, float] = {}  # target key -> expected duration, seconds
        self._events_wait = events_wait
        # run id -> when its next DescribeExecution is due with events expected (monotonic);
        # None: its events are not trusted any more, it is polled by the rules above.
        self._due: dict[str, float | None] = {}

    def tracked(self) -> int:
        with self._lock:
            return len(self._intervals)

    def expected(self, target_key: str) -> float | None:
        with self._lock:
            return self._expected.get(target_key)

    def until_due(self, run_id: str, until_deadline: float) -> float:
        """With status events expected: seconds until this run's next DescribeExecution is due
        (0: now, or events are not expected for it). Its first is planned here."""
        if self._events_wait is None:
            return 0.0
        now = self._clock()
        with self._lock:
            if run_id not in self._due:
                wait = jittered(min(self._events_wait, until_deadline), spread=0.1, rng=self._rng)
                self._due[run_id] = now + wait
                self._intervals.setdefault(run_id, (self._first, now))
            due = self._due[run_id]
        return 0.0 if due is None else max(0.0, due - now)

    def distrusted(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._due and self._due[run_id] is None

    def distrust(self, run_id: str) -> None:
        """A forged status event was refused for this run: poll it as without events."""
        with self._lock:
            self._due[run_id] = None

    def next_delay(self, run_id: str, target_key: str, elapsed: float) -> float:
        """Seconds until the next DescribeExecution of this run, which has been running for
        `elapsed` seconds and was just found still running."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            interval = self._intervals.get(run_id, (self._first, now))[0]
            self._intervals[run_id] = (min(interval * 2, self._max_interval), now)
            delay = interval
            expected = self._expected.get(target_key)
            if expected is not None and elapsed < EXPECTED_SHARE * expected:
                delay = max(delay, min(EXPECTED_SHARE * expected - elapsed, self._longest))
            events = self._events_wait is not None and self._due.get(run_id, 0.0) is not None
            if events:
                delay = max(delay, self._events_wait or 0.0)
            if self._max_rate > 0:
                delay = max(delay, len(self._intervals) / self._max_rate)
            delay = jittered(delay, spread=0.1, rng=self._rng)
            if events:
                self._due[run_id] = now + delay
        return delay

    def _prune(self, now: float) -> None:
        """Runs not planned for longer than any wait here went elsewhere (a rebalance) or
        ended without a word: they no longer count towards the rate."""
        if now - self._pruned < 60.0:
            return
        self._pruned = now
        horizon = self._longest + self._max_interval + 60.0
        for run_id in [r for r, (_i, at) in self._intervals.items() if now - at > horizon]:
            del self._intervals[run_id]
        if self._events_wait is not None:
            late = now - 2 * (self._events_wait + horizon)
            for run_id in [
                r for r, due in self._due.items() if r not in self._intervals and (due or 0) < late
            ]:
                del self._due[run_id]

    def finished(self, run_id: str, target_key: str, duration: float | None) -> None:
        """The run's execution ended after `duration` seconds (None: unknown)."""
        with self._lock:
            self._intervals.pop(run_id, None)
            self._due.pop(run_id, None)
            if duration is None or duration <= 0:
                return
            old = self._expected.get(target_key)
            self._expected[target_key] = (
                duration if old is None else (1 - NEWEST_WEIGHT) * old + NEWEST_WEIGHT * duration
            )

    def forget(self, run_id: str) -> None:
        """The run is no longer tracked here (its partition moved on)."""
        with self._lock:
            self._intervals.pop(run_id, None)
            self._due.pop(run_id, None)
