"""ledger.LedgerWriter on a real broker: a write returns once its own record is stored, its
delivery report served by the writer's delivery thread, not by the writing thread polling
(issue 24: tens of writers polling every 2 ms were a tenth of a burst's Python time)."""

from __future__ import annotations

import gc
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer

from lambda_trigger_consumer.ledger import LedgerWriter


class _CountingProducer:
    """The writer's producer, counting who polls it (the delivery thread holds the real one)."""

    def __init__(self, inner: Producer) -> None:
        self._inner = inner
        self.polled_by: list[str] = []

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self._inner.produce(*args, **kwargs)

    def poll(self, timeout: float = 0) -> int:
        self.polled_by.append(threading.current_thread().name)
        return int(self._inner.poll(timeout))

    def flush(self, timeout: float = 10.0) -> int:
        return int(self._inner.flush(timeout))


def _records(bootstrap: str, topic: str, expected: int) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 30
    try:
        while seen < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen += 1
    finally:
        consumer.close()
    return seen


def test_concurrent_writes_return_once_stored_without_polling_themselves(
    kafka_bootstrap: str,
) -> None:
    topic = f"runs-{uuid.uuid4().hex[:8]}"
    writer = LedgerWriter({"bootstrap.servers": kafka_bootstrap}, topic, 1)
    counting = _CountingProducer(writer._producer)
    writer._producer = counting  # type: ignore[assignment]
    errors: list[BaseException] = []

    def write_ten(n: int) -> None:
        try:
            for i in range(10):
                writer.write(f"lt-{n}-{i}", f"urn:li:dataset:{n}", b"{}", timeout=30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write_ten, args=(n,), name=f"w{n}") for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert counting.polled_by == []  # every report was served by the delivery thread
    assert _records(kafka_bootstrap, topic, 200) == 200
    writer.close()


def test_the_delivery_thread_ends_when_its_writer_is_closed_or_dropped(
    kafka_bootstrap: str,
) -> None:
    """Tests and tools make many writers: none may leave a thread (and a producer) behind."""
    closed = LedgerWriter({"bootstrap.servers": kafka_bootstrap}, "unused", 1)
    dropped = LedgerWriter({"bootstrap.servers": kafka_bootstrap}, "unused", 1)
    closed_thread, dropped_thread = closed.delivery_thread, dropped.delivery_thread
    assert closed_thread.is_alive() and dropped_thread.is_alive()
    closed.close()
    closed_thread.join(5)
    assert not closed_thread.is_alive()
    assert dropped_thread.is_alive()  # nothing told it yet
    del dropped
    gc.collect()
    dropped_thread.join(5)
    assert not dropped_thread.is_alive()


def test_a_write_after_close_still_waits_for_its_record(kafka_bootstrap: str) -> None:
    """Shutdown closes the writer after its last flush; a late write is served by its own
    polls, and still returns only once the broker has the record."""
    topic = f"runs-{uuid.uuid4().hex[:8]}"
    writer = LedgerWriter({"bootstrap.servers": kafka_bootstrap}, topic, 1)
    writer.close()
    writer.write("lt-late", None, b"{}", timeout=30)
    assert _records(kafka_bootstrap, topic, 1) == 1
