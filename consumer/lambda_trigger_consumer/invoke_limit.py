"""How many synchronous Lambda invokes may run at once: up to a bound, less while AWS throttles.

A synchronous Invoke holds a thread (and a connection) for as long as the function runs, so
the number at once is the consumer's throughput for slow functions (issue 24: 667 runs of 1-5 s
need about 64 at once to be invoked within 30 s). Lambda answers 429 TooManyRequestsException
when the account's or the function's concurrency is used up; invoke.py retries that with
jittered backoff, but a consumer that keeps 64 calls going against a full account only makes
more of them fail. So the limit moves like TCP's congestion window (AIMD):

- every throttled answer halves it (at most once per `cooldown_seconds`: the calls already
  on their way when AWS started throttling all come back throttled, and count as one signal);
- every call that was not throttled adds 1 / limit, so a whole limit's worth of successful
  calls adds one slot, back up to the bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class AdaptiveLimit:
    def __init__(
        self,
        bound: int,
        *,
        floor: int = 1,
        cooldown_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_raise: Callable[[], None] | None = None,
    ) -> None:
        self.bound = max(1, bound)
        self._floor = max(1, min(floor, self.bound))
        self._cooldown = cooldown_seconds
        self._clock = clock
        self.on_raise = on_raise  # the pool's wake(): a higher limit lets waiting work start
        self._limit = float(self.bound)
        self._last_cut: float | None = None
        self._lock = threading.Lock()
        self.cuts = 0  # how often throttling lowered the limit (tests, logs)

    def current(self) -> int:
        with self._lock:
            return max(self._floor, int(self._limit))

    def throttled(self) -> None:
        with self._lock:
            now = self._clock()
            if self._last_cut is not None and now - self._last_cut < self._cooldown:
                return
            self._last_cut = now
            self._limit = max(float(self._floor), self._limit / 2)
            self.cuts += 1

    def succeeded(self) -> None:
        with self._lock:
            before = int(self._limit)
            self._limit = min(float(self.bound), self._limit + 1.0 / max(1.0, self._limit))
            raised = int(self._limit) > before
        if raised and self.on_raise is not None:
            self.on_raise()
