"""Status writes of many runs coalesced into one DataHub call (issue 24: bursts).

The run driver's step threads each wrote a run's final status with one blocking GMS call. In a
burst, hundreds of runs end within seconds, so this writer gathers the unconditional status
writes handed to it by all step threads for a few milliseconds and sends them as one batch
(`DataHubClient.write_results`: OpenAPI v3's list POST, or Rest.li's ingestProposalBatch).
The calling thread still waits for its own write to be in DataHub, so the driver's order of
things does not change: the status is written before the run's ledger entry is closed.

What is batched, and what is not (DataHub v1.7, metadata-io/.../entity/EntityServiceImpl.java,
`ingestAspectsToLocalDB`): GMS validates a batch as a whole before committing it, and for an
API request any failed item (a failed `If-Version-Match`, the immutable-state check of
ExecutionRequestResultValidator) throws for the whole batch: nothing is written and there are
no per-item results. So:

- claims (`If-Version-Match: -1`, exactly one winner) stay single calls: one lost race in a
  batch would fail every other run's claim with it;
- unconditional status writes are batched; when GMS refuses a batch (412/422 or another 4xx),
  none of it was written, and each of its writes is sent again alone through
  `DataHubClient.write_result`, which reads the stored result back to tell "already there" and
  "another writer's final status" from a real refusal; when DataHub is away, every waiting
  caller gets DataHubUnavailable, as a single write would (the driver retries the step later:
  no status is lost).

Order per run: one thread sends, batches go one after the other, a run appears at most once in
a batch and its writes go in the order they were handed over. A later write of a run waits for
the next batch, so an older write (e.g. RUNNING) can never land after a newer one (a final
status).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from lambda_trigger.contract import RunResult
from lambda_trigger.datahub import (
    DataHubClient,
    DataHubUnavailable,
    PreconditionFailed,
    WriteRejected,
)

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    run_id: str
    result: RunResult
    done: threading.Event = field(default_factory=threading.Event)
    written: bool = False
    error: BaseException | None = None


class StatusWriter:
    """`write_result` has DataHubClient.write_result's meaning (True: DataHub holds the status;
    False: another writer's final status is there; WriteRejected / DataHubUnavailable) but
    shares one GMS call with the other runs' writes of the same few milliseconds.

    `linger_seconds` is how long the first write of a batch waits for others; `max_batch` how
    many runs one call carries. `max_batch` 1 (or `linger_seconds` 0) sends each write alone,
    from the caller's thread, as before."""

    def __init__(
        self,
        datahub: DataHubClient,
        *,
        linger_seconds: float = 0.005,
        max_batch: int = 50,
    ) -> None:
        self._datahub = datahub
        self._linger = max(0.0, linger_seconds)
        self._max = max(1, max_batch)
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.batches = 0  # calls that carried more than one write (tests, logs)

    @property
    def batching(self) -> bool:
        return self._max > 1 and self._linger > 0

    def write_result(self, run_id: str, result: RunResult) -> bool:
        if not self.batching:
            return self._datahub.write_result(run_id, result)
        item = _Pending(run_id, result)
        with self._cond:
            if self._closed:
                raise DataHubUnavailable("the status writer is closed")
            self._queue.append(item)
            self._start()
            self._cond.notify()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.written

    def warm(self) -> None:
        """Make the sending thread now (the warm-up), not on the first run's final status."""
        if self.batching:
            with self._cond:
                if not self._closed:
                    self._start()

    def _start(self) -> None:
        """With self._cond held."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="status-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, then stop; later writes raise DataHubUnavailable."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- the sending thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                full = len(self._queue) >= self._max
            if not full and not self._closed:
                time.sleep(self._linger)  # let the other step threads' writes join
            self._send(self._take())

    def _take(self) -> list[_Pending]:
        """Up to max_batch writes in hand-over order, at most one per run: a run's later write
        stays queued, in its place, for the next batch."""
        batch: list[_Pending] = []
        runs: set[str] = set()
        kept: deque[_Pending] = deque()
        with self._cond:
            while self._queue:
                item = self._queue.popleft()
                if len(batch) < self._max and item.run_id not in runs:
                    batch.append(item)
                else:
                    kept.append(item)
                runs.add(item.run_id)  # also blocks the run behind a write that did not fit
            self._queue = kept
        return batch

    def _send(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                self._alone(batch[0])
                return
            try:
                self._datahub.write_results([(i.run_id, i.result) for i in batch])
                self.batches += 1
                for item in batch:
                    item.written = True
            except (PreconditionFailed, WriteRejected) as exc:
                # None of it was written (GMS fails the whole batch): each alone, in order.
                log.info("status batch of %d refused (%s); writing each alone", len(batch), exc)
                for item in batch:
                    self._alone(item)
            except Exception as exc:  # DataHubUnavailable and anything unexpected
                for item in batch:
                    item.error = exc
        finally:
            for item in batch:
                item.done.set()

    def _alone(self, item: _Pending) -> None:
        try:
            item.written = self._datahub.write_result(item.run_id, item.result)
        except Exception as exc:
            item.error = exc
