"""Fault switches: what an unhealthy GMS looks like to its clients.

- down: the listening socket is closed and open connections are cut, so clients get
  "connection refused" (a GMS pod that is not running) rather than an HTTP answer;
- slow: every request waits this long before it is handled (an overloaded GMS);
- fail_next(n, status): the next n requests are answered with `status` and GMS's generic error
  body, before any other processing (a GMS that is up but failing).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class InjectedFailure:
    status: int


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slow_seconds = 0.0
        self._fail_remaining = 0
        self._fail_status = 500
        self.down = False

    def set_slow(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._slow_seconds = seconds

    @property
    def slow_seconds(self) -> float:
        with self._lock:
            return self._slow_seconds

    def fail_next(self, n: int, status: int = 500) -> None:
        if n < 0 or not 100 <= status <= 599:
            raise ValueError("need n >= 0 and an HTTP status")
        with self._lock:
            self._fail_remaining = n
            self._fail_status = status

    def take_failure(self) -> InjectedFailure | None:
        """Consume one injected failure, if any is left."""
        with self._lock:
            if self._fail_remaining <= 0:
                return None
            self._fail_remaining -= 1
            return InjectedFailure(self._fail_status)

    def reset(self) -> None:
        with self._lock:
            self._slow_seconds = 0.0
            self._fail_remaining = 0
            self._fail_status = 500
