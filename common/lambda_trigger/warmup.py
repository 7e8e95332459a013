"""Warm-up before readiness: the first request after a start is as fast as the hundredth.

A process that builds its clients lazily makes its first user pay for it: the first call to
GMS opens a connection and fetches GMS's /config (the SDK does that on its first write), the
consumer asks GMS who its service token is, botocore loads its service models and opens a
connection to AWS. Measured on the local stack (issue 25) that was 130-140 ms on the first run
after every start, deploy or rebalance. `Warmup` runs those first calls in a background thread
as soon as the process starts, retrying each failed step with a backoff, and says whether it is
done; the consumer's and the api's `/readyz` answer 503 until it is, so a rolling deploy sends
no traffic to a cold pod. Once warm, the process stays ready: later refreshes (`keep_warm`)
keep idle connections and cached facts fresh, and a failing refresh is an outage the
dependency checks report, not a warm-up.

Each step is a named callable that must be safe to repeat.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

Step = tuple[str, Callable[[], object]]


class Warmup:
    def __init__(
        self,
        steps: Sequence[Step],
        *,
        stop: threading.Event | None = None,
        first_retry_seconds: float = 0.5,
        max_retry_seconds: float = 10.0,
        keep_warm_seconds: float = 0.0,
        name: str = "warmup",
        on_done: Callable[[], object] | None = None,
    ) -> None:
        self._steps = list(steps)
        self._stop = stop or threading.Event()
        self._first_retry = first_retry_seconds
        self._max_retry = max_retry_seconds
        self._keep_warm = keep_warm_seconds
        self._name = name
        self._on_done = on_done
        self._lock = threading.Lock()
        self._pending = [step_name for step_name, _ in self._steps]
        self._errors: dict[str, str] = {}
        self._done = threading.Event()
        self._first_pass = threading.Event()
        self._again = threading.Event()
        self._started_at: float | None = None
        self._took: float | None = None
        self._thread: threading.Thread | None = None

    # --- state ----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until warm; False if `timeout` passed first."""
        return self._done.wait(timeout)

    def wait_first_pass(self, timeout: float | None = None) -> bool:
        """Until every step has been tried once (warm, or a failure to retry)."""
        return self._first_pass.wait(timeout)

    def status(self) -> tuple[bool, dict[str, object]]:
        """For /readyz: `warm`, and while not yet, what is still cold and why."""
        with self._lock:
            detail: dict[str, object] = {"warm": self._done.is_set()}
            if not self._done.is_set():
                detail["warming"] = list(self._pending)
                if self._errors:
                    detail["warmupErrors"] = dict(self._errors)
            elif self._took is not None:
                detail["warmupSeconds"] = round(self._took, 3)
        return self._done.is_set(), detail

    # --- running --------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Run every step still pending, in order; True once all have succeeded."""
        if self._started_at is None:
            self._started_at = time.monotonic()
        for step_name, step in self._steps:
            with self._lock:
                if step_name not in self._pending:
                    continue
            if self._stop.is_set():
                return False
            try:
                step()
            except Exception as exc:  # every step's failure is retried, whatever it is
                with self._lock:
                    first = step_name not in self._errors
                    self._errors[step_name] = f"{type(exc).__name__}: {exc}"[:300]
                (log.warning if first else log.debug)(
                    "%s: %s not warm yet (%s); retrying", self._name, step_name, exc
                )
                continue
            with self._lock:
                self._pending.remove(step_name)
                self._errors.pop(step_name, None)
        with self._lock:
            finished = not self._pending
        self._first_pass.set()
        if finished and not self._done.is_set():
            # Before saying ready: a clean-up (a heap trim, a collection) must not stall the
            # first request, which may come the moment /readyz says 200.
            if self._on_done is not None:
                try:
                    self._on_done()
                except Exception:  # a clean-up, never a reason to stop warming
                    log.exception("%s: after warm-up", self._name)
            self._took = time.monotonic() - self._started_at
            self._done.set()
            log.info("%s: warm after %.3f s", self._name, self._took)
        return finished

    def refresh(self) -> None:
        """Every step again (keep-warm); failures are logged, readiness is kept."""
        for step_name, step in self._steps:
            if self._stop.is_set():
                return
            try:
                step()
            except Exception as exc:
                log.info("%s: refreshing %s failed: %s", self._name, step_name, exc)

    def again(self) -> None:
        """Refresh soon (the mapping changed: new targets to warm)."""
        self._again.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def _loop(self) -> None:
        delay = self._first_retry
        while not self.run_once():
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._max_retry)
        next_refresh = time.monotonic() + self._keep_warm
        while not self._stop.is_set():
            # Woken by again() at once; otherwise a look a second, so a stop is seen soon.
            woken = self._again.wait(1.0)
            if self._stop.is_set():
                return
            due = self._keep_warm > 0 and time.monotonic() >= next_refresh
            if woken or due:
                self._again.clear()
                self.refresh()
                next_refresh = time.monotonic() + self._keep_warm


def release_free_memory() -> None:
    """Hand the heap pages start-up freed back to the OS (glibc's malloc_trim; elsewhere a
    no-op). Building the clients parses megabytes of JSON (botocore's service models and
    endpoints) that are garbage afterwards; glibc keeps those pages in the process unless
    asked, about 3 MiB of RSS for as long as the process runs."""
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
