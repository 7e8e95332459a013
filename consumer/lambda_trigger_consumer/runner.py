"""The poll loop: record -> key filter -> decode -> request, then a worker thread runs the
request (handler: target -> invoke -> status).

Delivery is at least once, invocation at most once:
- offsets are committed by hand, only up to the lowest record still in flight (OffsetTracker);
- the handler claims a run (conditional RUNNING write) before invoking it, so a redelivered
  record finds the claim and is not invoked again.
Shaped after confluent-kafka-python's examples/consumer.py (errors told from partition EOF,
close() in `finally`), with consume() in batches instead of poll() per record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from lambda_trigger.contract import RunRequest, RunResult
from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.decode import (
    DecodeError,
    RegistryUnavailable,
    SchemaRegistry,
    decode_change_log,
)
from lambda_trigger_consumer.handler import Handler, Outcome
from lambda_trigger_consumer.key_filter import is_execution_request_key
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.offsets import OffsetTracker
from lambda_trigger_consumer.request import Invalid, to_request

log = logging.getLogger(__name__)
_LAG_INTERVAL_SECONDS = 5.0
_REBALANCE_WAIT_SECONDS = 10.0
_BATCH = 500


class Runner:
    def __init__(
        self,
        kafka_config: dict[str, Any],
        topic: str,
        executor_id: str,
        registry: SchemaRegistry,
        handler_factory: Any,
        dead_letters: DeadLetters,
        metrics: ConsumerMetrics,
        *,
        max_inflight: int = 8,
        commit_interval_seconds: float = 1.0,
        shutdown_grace_seconds: float = 30.0,
    ) -> None:
        self._topic = topic
        self._executor_id = executor_id
        self._registry = registry
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_inflight = max_inflight
        self._commit_interval = commit_interval_seconds
        self._grace = shutdown_grace_seconds
        self.stopping = threading.Event()
        self._handler: Handler = handler_factory(self.stopping, self._final_write_failed)
        self._tracker = OffsetTracker()
        self._pool = ThreadPoolExecutor(max_workers=max_inflight, thread_name_prefix="run")
        self._futures: set[Future[Outcome]] = set()
        self._paused = False
        self._assignment: list[tuple[str, int]] = []
        self._last_commit_try = 0.0
        self._last_lag = 0.0
        self.last_loop = time.monotonic()
        self._consumer = Consumer(
            {
                **kafka_config,
                "enable.auto.commit": False,
                "partition.assignment.strategy": "cooperative-sticky",
            }
        )

    # --- public ---------------------------------------------------------------------------

    @property
    def assignment(self) -> list[tuple[str, int]]:
        return list(self._assignment)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        self._consumer.subscribe(
            [self._topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self.stopping.is_set():
                self.last_loop = time.monotonic()
                self._throttle()
                # A batch per call: per-record poll() costs more than the key filter it feeds.
                batch = self._consumer.consume(num_messages=_BATCH, timeout=0.2)
                self._dead_letters.poll()
                self._periodic()
                for msg in batch:
                    if self.stopping.is_set():
                        break  # the rest stays uncommitted and is delivered again
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        log.error("consumer error: %s", error)
                        if error.fatal():
                            raise KafkaException(error)
                        continue
                    self._on_record(msg)
            self._drain()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._consumer.close()
            remaining = self._dead_letters.flush(10)
            if remaining:
                log.error(
                    "%d dead-letter records were not delivered; their offsets were not committed",
                    remaining,
                )
            self._dead_letters.close()
            log.info("consumer closed")

    # --- one record ---------------------------------------------------------------------

    def _on_record(self, msg: Message) -> None:
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        tp = (topic, partition)
        self._metrics.received.labels(topic=topic).inc()
        key = msg.key()
        if not is_execution_request_key(key):
            self._metrics.key_discarded.labels(topic=topic).inc()
            self._tracker.seen(tp, offset)
            return
        change = self._decode(msg)
        if change is None:
            return  # dead-lettered, or handed back at shutdown
        self._metrics.decoded.labels(topic=topic).inc()
        request = to_request(change, self._executor_id)
        if request is None:
            self._tracker.seen(tp, offset)
            return
        self._metrics.accepted.inc()
        log.info("accepted run %s (partition %d, offset %d)", request.run_id, partition, offset)
        self._tracker.started(tp, offset)
        future = self._pool.submit(self._work, request, tp, offset)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _decode(self, msg: Message) -> Any:
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        tp = (topic, partition)
        delay = 0.5
        while True:
            try:
                return decode_change_log(msg.value(), self._registry)
            except RegistryUnavailable as exc:
                # Transient: retry the same record; never dead-letter a good record because
                # the registry blinked. At shutdown, leave it uncommitted.
                self._metrics.decode_failures.labels(reason=exc.reason).inc()
                log.warning("%s; retrying in %.1f s", exc, delay)
                if self.stopping.wait(delay):
                    return None
                delay = min(delay * 2, 30.0)
            except DecodeError as exc:
                self._metrics.decode_failures.labels(reason=exc.reason).inc()
                log.error("undecodable record at %s[%d]@%d: %s", topic, partition, offset, exc)
                self._tracker.started(tp, offset)
                self._dead_letters.send(
                    f"decode_{exc.reason}",
                    str(exc),
                    key=msg.key() if isinstance(msg.key(), bytes) else None,
                    value=msg.value() if isinstance(msg.value(), bytes) else None,
                    source=(topic, partition, offset),
                    on_delivered=lambda: self._tracker.finished(tp, offset),
                )
                return None

    def _work(self, request: RunRequest | Invalid, tp: tuple[str, int], offset: int) -> Outcome:
        try:
            outcome = self._handler.handle(request)
        except Exception:
            # A bug must not kill the worker silently nor advance the offset past the record.
            log.exception("run %s: unexpected error; the record stays uncommitted", request.run_id)
            return Outcome.HANDED_BACK
        if outcome is Outcome.DONE:
            self._tracker.finished(tp, offset)
        return outcome

    def _final_write_failed(self, run_id: str, result: RunResult, error: str) -> None:
        self._dead_letters.send(
            "status_write_failed",
            f"final status of run {run_id} not written: {error}",
            key=f"urn:li:dataHubExecutionRequest:{run_id}".encode(),
            value=json.dumps(result.to_aspect().to_obj()).encode(),
            extra={"runId": run_id, "status": result.status.value},
        )

    # --- loop housekeeping --------------------------------------------------------------

    def _throttle(self) -> None:
        """Bounded concurrency: stop fetching while every worker is busy, keep polling so the
        group membership stays alive."""
        busy = len(self._futures) >= self._max_inflight
        if busy and not self._paused and self._assignment:
            self._consumer.pause([TopicPartition(t, p) for t, p in self._assignment])
            self._paused = True
        elif not busy and self._paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._assignment])
            self._paused = False

    def _periodic(self) -> None:
        now = time.monotonic()
        if now - self._last_commit_try >= self._commit_interval:
            self._last_commit_try = now
            self._commit()
        if now - self._last_lag >= _LAG_INTERVAL_SECONDS:
            self._last_lag = now
            self._update_lag()

    def _commit(self, tps: list[tuple[str, int]] | None = None) -> None:
        offsets = self._tracker.committable(tps)
        if not offsets:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            log.warning("offset commit failed (will retry): %s", exc)
            return
        self._tracker.mark_committed(offsets)
        self._metrics.last_commit.set_to_current_time()

    def _update_lag(self) -> None:
        if not self._assignment:
            return
        try:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in self._assignment])
        except KafkaException:
            return
        for tp in positions:
            try:
                # Asked of the broker, not the cache: the cached high watermark only moves
                # with fetched messages, so paused partitions (all workers busy on a hung
                # Lambda) would show no lag exactly when lag matters.
                watermarks = self._consumer.get_watermark_offsets(tp, timeout=2.0, cached=False)
            except KafkaException:
                continue
            if watermarks is None:  # timed out: keep the last value
                continue
            low, high = watermarks
            position = tp.offset if tp.offset >= 0 else low
            if high >= 0 and position >= 0:
                self._metrics.lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, high - position)
                )

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        added = [(p.topic, p.partition) for p in partitions]
        self._assignment = sorted(set(self._assignment) | set(added))
        log.info("assigned %s", added)
        if self._paused and partitions:
            self._consumer.pause(partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Give the new owner a clean start: wait briefly for in-flight runs of these
        partitions, commit what finished. Runs still going keep going and write their
        status; the new owner's redelivery finds the claim and skips them."""
        tps = [(p.topic, p.partition) for p in partitions]
        deadline = time.monotonic() + _REBALANCE_WAIT_SECONDS
        while self._tracker.pending(tps) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._commit(tps)
        self._release(tps)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release([(p.topic, p.partition) for p in partitions])

    def _release(self, tps: list[tuple[str, int]]) -> None:
        self._tracker.forget(tps)
        self._assignment = [tp for tp in self._assignment if tp not in tps]
        for topic, partition in tps:
            with contextlib.suppress(KeyError):
                self._metrics.lag.remove(topic, str(partition))
        log.info("revoked %s", tps)

    def _drain(self) -> None:
        """SIGTERM/SIGINT: no new records; wait up to the grace period for runs in flight;
        commit what finished. Unfinished records stay uncommitted (delivered again later,
        where their claim prevents a second invocation)."""
        # Requests still queued for a worker never started: cancel them, so their offsets stay
        # uncommitted and they are delivered again (to us after a restart, or to a new owner).
        for future in list(self._futures):
            future.cancel()
        pending = {f for f in self._futures if not f.cancelled()}
        if pending:
            log.info("waiting up to %.0f s for %d runs in flight", self._grace, len(pending))
            wait(pending, timeout=self._grace)
        self._commit()
