"""Which offsets may be committed.

Requests run concurrently and finish out of order; a commit must never pass a record that
is still being handled, or a crash would lose it. Per partition we keep the offsets still
in flight; the committable offset is the lowest of them, or one past the last record seen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

TopicPartition = tuple[str, int]


class OffsetTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def seen(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def started(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            self._pending.setdefault(tp, set()).add(offset)
            self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def finished(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            self._pending.get(tp, set()).discard(offset)

    def pending(self, tps: Iterable[TopicPartition] | None = None) -> int:
        with self._lock:
            keys = list(tps) if tps is not None else list(self._pending)
            return sum(len(self._pending.get(tp, ())) for tp in keys)

    def committable(self, tps: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Offsets (Kafka's "next offset to read") that moved since the last `mark_committed`."""
        with self._lock:
            keys = list(tps) if tps is not None else list(self._next)
            out: dict[TopicPartition, int] = {}
            for tp in keys:
                if tp not in self._next:
                    continue
                pending = self._pending.get(tp)
                offset = min(pending) if pending else self._next[tp]
                if self._committed.get(tp) != offset:
                    out[tp] = offset
            return out

    def mark_committed(self, offsets: dict[TopicPartition, int]) -> None:
        with self._lock:
            self._committed.update(offsets)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        with self._lock:
            for tp in tps:
                self._pending.pop(tp, None)
                self._next.pop(tp, None)
                self._committed.pop(tp, None)
