"""The poll loop: record -> key filter -> decode -> request -> ledger.

One Kafka consumer reads two topics in one group:
- DataHub's MCL topic: unrelated records are dropped by key; a run request or a cancel signal
  for our executor becomes a ledger record (ledger.py), and its offset is committed once the
  broker has that record. Nothing slow happens here: no DataHub or AWS call, no retry loop.
- The run ledger: the partitions this consumer owns are read from the beginning (the topic is
  compacted) into a LedgerView; the run driver (driver.py) takes the runs from there.

Delivery is at least once: MCL offsets are committed by hand, never past a record whose ledger
record is not stored yet (OffsetTracker). Shaped after confluent-kafka-python's
examples/consumer.py (errors told from partition EOF, close() in `finally`), with consume()
in batches.

Speed (docs/operations.md, "Throughput and latency"): the loop never waits for a batch that
is not coming. It takes what librdkafka has already fetched (`consume(n, timeout=0)`); only
when that is nothing does it block, in `poll()`, which returns on the first record. So a lone
run request is handled the moment it arrives, and a backlog is drained in batches. Almost
every MCL record is dropped by key; for those the loop does no per-record work beyond the key
check: offsets and counters are settled once per batch.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from lambda_trigger.datahub import DataHubClient, DataHubUnavailable
from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.decode import (
    DecodeError,
    Registry,
    RegistryUnavailable,
    decode_change_log,
)
from lambda_trigger_consumer.driver import RunDriver
from lambda_trigger_consumer.key_filter import KEY_PREFIX, is_execution_request_key
from lambda_trigger_consumer.ledger import (
    LedgerView,
    LedgerWriter,
    cancel_record,
    invalid_record,
    partition_for,
    request_record,
)
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.offsets import OffsetTracker
from lambda_trigger_consumer.request import CancelSignal, Invalid, to_request, to_signal
from lambda_trigger_consumer.source_request import dataset_of

log = logging.getLogger(__name__)
_LAG_INTERVAL_SECONDS = 5.0
_REBALANCE_WAIT_SECONDS = 10.0
_BATCH = 500
# How long an idle loop blocks for the next record; a record ends the wait at once. This only
# paces the housekeeping (commits, lag, resuming paused partitions) while nothing arrives.
_IDLE_WAIT_SECONDS = 0.2

TP = tuple[str, int]


class Runner:
    def __init__(
        self,
        kafka_config: dict[str, Any],
        topic: str,
        executor_id: str,
        registry: Registry,
        ledger: LedgerWriter,
        view: LedgerView,
        driver: RunDriver,
        datahub: DataHubClient,
        dead_letters: DeadLetters,
        metrics: ConsumerMetrics,
        *,
        commit_interval_seconds: float = 1.0,
        shutdown_grace_seconds: float = 30.0,
    ) -> None:
        self._topic = topic
        self._executor_id = executor_id
        self._registry = registry
        self._ledger = ledger
        self._view = view
        self._driver = driver
        self._datahub = datahub
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._commit_interval = commit_interval_seconds
        self._grace = shutdown_grace_seconds
        self.stopping = threading.Event()
        self._tracker = OffsetTracker()
        # Cancel signals need one DataHub read (which dataset?) before they can be recorded.
        self._signals = ThreadPoolExecutor(2, thread_name_prefix="signal")
        self._signal_futures: set[Future[None]] = set()
        self._assignment: list[TP] = []
        # A member of the group with an assignment in force (possibly empty): set by every
        # assignment callback, cleared when the membership is lost. /readyz reads it.
        self.in_group = False
        # Assigned partitions that have not delivered anything yet (a record or their end):
        # librdkafka has not started fetching them. After an assignment it first looks up the
        # committed offset, then resets it, each step waiting for the broker's open fetch to
        # come back (fetch.wait.max.ms), so the first fetch of a new partition starts 100-300 ms
        # after the assignment. Until it has, a request written to it is not seen: /readyz
        # says not ready (issue 25: the first click after a start or rebalance waited for it).
        self._unfetched: set[TP] = set()
        # Partitions whose next record waits for the schema registry: paused, and resumed
        # (from the same offset) after a backoff, so that the poll loop never blocks.
        self._blocked: dict[TP, tuple[float, float]] = {}
        self._rejected: set[tuple[str, int, int]] = set()  # ledger records dead-lettered
        self._last_commit_try = 0.0
        self._last_lag = 0.0
        self.last_loop = time.monotonic()
        # Children made once: `.labels()` per record costs more than the key filter.
        self._received = metrics.received.labels(topic=topic)
        self._key_discarded = metrics.key_discarded.labels(topic=topic)
        self._decoded = metrics.decoded.labels(topic=topic)
        self._consumer = Consumer(
            {
                **kafka_config,
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "partition.assignment.strategy": "cooperative-sticky",
            }
        )

    # --- public ---------------------------------------------------------------------------

    @property
    def assignment(self) -> list[TP]:
        """The MCL partitions this consumer owns."""
        return [tp for tp in self._assignment if tp[0] == self._topic]

    @property
    def ledger_assignment(self) -> list[int]:
        return [p for t, p in self._assignment if t == self._ledger.topic]

    @property
    def fetching(self) -> bool:
        """Every assigned partition is being fetched: an MCL partition has delivered a record
        or its end, a ledger partition has been read to its end."""
        return not self._unfetched and all(self._view.owns(p) for p in self.ledger_assignment)

    @property
    def unfetched(self) -> int:
        return len(self._unfetched) + sum(
            1 for p in self.ledger_assignment if not self._view.owns(p)
        )

    def warm(self) -> None:
        """The cancel signals' thread, made before the first KILL needs it (issue 25)."""
        self._signals.submit(lambda: None).result(timeout=5)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        self._consumer.subscribe(
            [self._topic, self._ledger.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        # Everything built so far (the DataHub SDK's classes, boto3's models, the clients)
        # lives as long as the process: keep it out of the collector's full passes, each of
        # which would otherwise walk it all and hold the GIL (the loop and every run step)
        # for tens to hundreds of milliseconds.
        gc.freeze()
        self._driver.start()
        try:
            while not self.stopping.is_set():
                self.last_loop = time.monotonic()
                # What is already fetched, without waiting; if nothing is, wait for the first
                # record only (poll returns as soon as one is there).
                batch = self._consumer.consume(num_messages=_BATCH, timeout=0)
                if not batch:
                    first = self._consumer.poll(_IDLE_WAIT_SECONDS)
                    if first is not None:
                        batch = [first]
                self._dead_letters.poll()
                self._ledger.poll()
                self._periodic()
                if batch:
                    self._handle(batch)
            self._shutdown()
        finally:
            self._signals.shutdown(wait=False, cancel_futures=True)
            self._consumer.close()  # leaves the group: the partitions move on at once
            undelivered = self._ledger.flush(10) + self._dead_letters.flush(10)
            self._ledger.close()
            if undelivered:
                log.error(
                    "%d records were not delivered; their offsets were not committed", undelivered
                )
            self._dead_letters.close()
            log.info("consumer closed")

    # --- MCL records ----------------------------------------------------------------------

    def _handle(self, batch: list[Message]) -> None:
        """One batch, in order. The common case, an MCL record whose key is not an execution
        request, costs one pass of a comprehension (three C calls, no Python statement); its
        offset and counters are settled after the loop. Everything else (run requests, ledger
        records, errors, EOF: these have no key) goes the careful way, one by one."""
        mcl = self._topic
        prefix = KEY_PREFIX
        if self._unfetched:
            # Only while some partition has not delivered yet: a set lookup per record.
            for m in batch:
                self._unfetched.discard((m.topic() or "", m.partition() or 0))
        careful = [
            m for m in batch if (k := m.key()) is None or k.startswith(prefix) or m.topic() != mcl
        ]
        skip: dict[TP, int] = {}  # partitions blocked in this batch -> the offset to re-read
        others = 0  # MCL records that took the careful way
        not_mcl = 0  # ledger records, errors and EOF events
        for msg in careful:
            error = msg.error()
            if error is not None:
                not_mcl += 1
                if error.code() == KafkaError._PARTITION_EOF:
                    self._on_eof(msg)
                    continue
                log.error("consumer error: %s", error)
                if error.fatal():
                    raise KafkaException(error)
                continue
            tp = (msg.topic() or "", msg.partition() or 0)
            if tp[0] != mcl:
                not_mcl += 1
                if tp[0] == self._ledger.topic:
                    self._on_ledger_record(msg)
                continue
            if tp in skip:
                continue  # re-read from the seek position after the backoff
            others += 1
            if not self._on_record(msg):
                skip[tp] = msg.offset() or 0
        dropped = len(batch) - len(careful)
        if skip:
            # Dropped records after a blocked one are read (and counted) again after the seek.
            dropped -= sum(
                1
                for m in batch
                if m.topic() == mcl
                and (mcl, m.partition() or 0) in skip
                and (m.offset() or 0) > skip[(mcl, m.partition() or 0)]
                and (k := m.key()) is not None
                and not k.startswith(prefix)
            )
        self._settle_dropped()
        if dropped:
            self._key_discarded.inc(dropped)
        if dropped or others:
            self._received.inc(dropped + others)

    def _settle_dropped(self) -> None:
        """Every record of the batch has been dropped, or handed on (and tracked) by now, so
        each MCL partition's position (librdkafka: the offset after the last record returned
        to us) marks the records before it as seen. The tracker never lets a commit pass a
        record still in flight. A blocked partition is left out: it was sought back, and
        _block() marked what comes before its blocked record."""
        owned = [TopicPartition(t, p) for t, p in self._assignment if t == self._topic]
        if not owned:
            return
        for tp in self._consumer.position(owned):
            key = (tp.topic, tp.partition)
            if tp.offset > 0 and key not in self._blocked:
                self._tracker.seen(key, tp.offset - 1)

    def _on_record(self, msg: Message) -> bool:
        """An MCL record the key filter did not drop (its key names an execution request, or
        it has none). False when it must be read again later (the registry is away)."""
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        tp = (topic, partition)
        key = msg.key()
        if not is_execution_request_key(key):
            self._key_discarded.inc()
            self._tracker.seen(tp, offset)
            return True
        try:
            change = decode_change_log(msg.value(), self._registry)
            self._blocked.pop(tp, None)
            self._decoded.inc()
            request = to_request(change, self._executor_id)
            signal = to_signal(change, self._executor_id) if request is None else None
        except RegistryUnavailable as exc:
            self._metrics.decode_failures.labels(reason=exc.reason).inc()
            self._block(tp, offset, str(exc))
            return False
        except Exception as exc:
            # Any exception, not one class (issue 19: a RecursionError on nested JSON killed the
            # loop): the record is skipped, dead-lettered and counted; the consumer goes on.
            self._blocked.pop(tp, None)
            reason = exc.reason if isinstance(exc, DecodeError) else "unhandled"
            self._metrics.decode_failures.labels(reason=reason).inc()
            text = str(exc) if isinstance(exc, DecodeError) else type(exc).__name__
            log.error("undecodable record at %s[%d]@%d: %s", topic, partition, offset, text)
            self._tracker.started(tp, offset)
            self._dead_letters.send(
                f"decode_{reason}",
                text,
                key=key if isinstance(key, bytes) else None,
                value=msg.value(),
                source=(topic, partition, offset),
                on_delivered=lambda: self._tracker.finished(tp, offset),
            )
            return True
        if request is not None:
            self._metrics.accepted.inc()
            log.info("accepted run %s (partition %d, offset %d)", request.run_id, partition, offset)
            if isinstance(request, Invalid):
                record = invalid_record(request.run_id, request.message)
                self._forward(tp, offset, request.run_id, None, record)
            else:
                record = request_record(request, change.actor)
                self._forward(tp, offset, request.run_id, request.dataset_urn, record)
            return True
        if signal is not None:
            self._tracker.started(tp, offset)
            self._view.expect_cancel(signal.run_id)
            future = self._signals.submit(self._on_signal, signal, tp, offset)
            self._signal_futures.add(future)
            future.add_done_callback(self._signal_futures.discard)
            return True
        self._tracker.seen(tp, offset)
        return True

    def _forward(
        self, tp: TP, offset: int, run_id: str, dataset: str | None, record: bytes
    ) -> None:
        """Into the ledger; the MCL offset may pass this record once the broker has it.

        When the run's ledger partition is ours, the driver takes the run up at once, not
        when the broker confirms the record (a round trip: 30-100 ms in a burst) nor when it
        comes back from the ledger topic (30-330 ms; benchmarks/burst.py). Nothing can start
        the run before a record of its own is stored: its first step, CLAIMED, is a full
        snapshot (the request included) written after this one to the same partition by the
        same idempotent producer, and the RUNNING claim waits for it. Should this record be
        lost, that snapshot stands in for it. A run that ends without starting (expired,
        refused, a duplicate) writes its final status with a conditional claim: read again
        (the MCL offset waits for this record), it finds that status and closes. The echo
        changes nothing (ledger.fold: a repeated request is a no-op)."""
        self._tracker.started(tp, offset)
        partition = partition_for(dataset, run_id, self._ledger.partitions)

        def delivered(error: KafkaError | None, _partition: int) -> None:
            if error is None:
                self._tracker.finished(tp, offset)
                return
            # Kafka is unwell: keep trying; the offset stays pinned until it works.
            log.warning("run %s: ledger write failed (%s); retrying", run_id, error)
            time.sleep(0.2)
            self._ledger.send(run_id, dataset, record, delivered)

        self._ledger.send(run_id, dataset, record, delivered)
        if self._view.owns(partition):
            self._view.apply(partition, run_id, record)

    def _on_signal(self, signal: CancelSignal, tp: TP, offset: int) -> None:
        try:
            self._cancel_into_ledger(signal, tp, offset)
        finally:
            self._view.cancel_settled(signal.run_id)

    def _cancel_into_ledger(self, signal: CancelSignal, tp: TP, offset: int) -> None:
        """Which dataset (and so which ledger partition)? Only DataHub knows."""
        delay = 0.5
        while True:
            try:
                request = self._datahub.read_request(signal.run_id)
                break
            except DataHubUnavailable as exc:
                if self.stopping.wait(delay):
                    return  # uncommitted: read again after a restart
                log.warning("cancel of %s: DataHub unavailable (%s)", signal.run_id, exc)
                delay = min(delay * 2, 30.0)
        if request is not None and request.executorId != self._executor_id:
            self._tracker.finished(tp, offset)
            return
        dataset = dataset_of(dict(request.args)) if request is not None else None
        log.info("run %s: cancel requested by %s", signal.run_id, signal.actor)
        record = cancel_record(signal.run_id, dataset, signal.actor)
        while True:
            try:
                self._ledger.write(signal.run_id, dataset, record)
                # Stored: into the view now if its partition is ours (as a forwarded request),
                # so the run it may stop sees it before its claim (LedgerView.expect_cancel).
                partition = partition_for(dataset, signal.run_id, self._ledger.partitions)
                if self._view.owns(partition):
                    self._view.apply(partition, signal.run_id, record)
                break
            except KafkaException as exc:
                if self.stopping.wait(1.0):
                    return
                log.warning("cancel of %s: ledger write failed (%s)", signal.run_id, exc)
        self._tracker.finished(tp, offset)

    def _block(self, tp: TP, offset: int, why: str) -> None:
        """The registry did not answer: read this record again later, without blocking."""
        _until, delay = self._blocked.get(tp, (0.0, 0.25))
        delay = min(delay * 2, 30.0)
        self._blocked[tp] = (time.monotonic() + delay, delay)
        log.warning("%s; partition %s[%d] waits %.1f s", why, tp[0], tp[1], delay)
        if offset > 0:
            self._tracker.seen(tp, offset - 1)  # everything before it was handled
        partition = TopicPartition(tp[0], tp[1], offset)
        self._consumer.pause([partition])
        self._consumer.seek(partition)

    # --- ledger records -------------------------------------------------------------------

    def _on_ledger_record(self, msg: Message) -> None:
        """Nothing on the ledger is believed for what it says (issue 19): a record must carry
        the consumers' MAC (ledger_auth.py), and one that cannot be folded (any exception) is
        skipped. Either way it is dead-lettered by reference and counted; the loop goes on."""
        key, value = msg.key(), msg.value()
        partition = msg.partition() or 0
        verdict = self._ledger.signer.verify(key, value, msg.headers())
        if not verdict.ok:
            self._reject_ledger_record(msg, verdict.reason, f"not authenticated ({verdict.reason})")
            return
        try:
            if not isinstance(key, bytes):
                raise ValueError("a ledger record without a key")
            self._view.apply(partition, key.decode(), value)
        except Exception as exc:
            self._reject_ledger_record(msg, "unreadable", f"cannot be read ({type(exc).__name__})")

    def _reject_ledger_record(self, msg: Message, reason: str, why: str) -> None:
        source = (msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
        self._metrics.ledger_rejected.labels(reason=reason).inc()
        # A partition is re-read from its start on every assignment: one dead letter per
        # record and process is enough.
        if source in self._rejected:
            return
        self._rejected.add(source)
        log.error("skipping ledger record %s[%d]@%d: %s", *source, why)
        # By reference: the source offset, never the record (its bytes are the attacker's).
        self._dead_letters.send(
            f"ledger_{reason}",
            f"ledger record {why}",
            key=None,
            value=None,
            source=source,
        )

    def _on_eof(self, msg: Message) -> None:
        if msg.topic() == self._ledger.topic:
            self._view.loaded(msg.partition() or 0)

    # --- loop housekeeping ----------------------------------------------------------------

    def _periodic(self) -> None:
        now = time.monotonic()
        for tp, (until, _delay) in list(self._blocked.items()):
            if now >= until and tp in self._assignment:
                self._consumer.resume([TopicPartition(*tp)])
        if now - self._last_commit_try >= self._commit_interval:
            self._last_commit_try = now
            self._commit()
        if now - self._last_lag >= _LAG_INTERVAL_SECONDS:
            self._last_lag = now
            self._update_lag()

    def _commit(self, tps: list[TP] | None = None) -> None:
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
        mcl = self.assignment
        if not mcl:
            return
        try:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in mcl])
        except KafkaException:
            return
        for tp in positions:
            try:
                # Cached: a broker round trip per partition would stall this loop; the cache
                # is refreshed by fetches and by statistics, and paused partitions are rare now
                # that nothing slow runs on this thread.
                low, high = self._consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
            except KafkaException:
                continue
            if tp.offset < 0:
                # Nothing read yet since the assignment: librdkafka has no position, and the
                # low watermark would count the whole partition as unread. Wait for one.
                continue
            position = tp.offset
            if high >= 0 and position >= low:
                self._metrics.lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, high - position)
                )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assigned: list[TopicPartition] = []
        for p in partitions:
            if p.topic == self._ledger.topic:
                # Always the whole (compacted) history: it is the state of the runs.
                self._view.assign(p.partition)
                self._driver.on_assign(p.partition)
                assigned.append(TopicPartition(p.topic, p.partition, OFFSET_BEGINNING))
            else:
                assigned.append(TopicPartition(p.topic, p.partition, OFFSET_INVALID))
                self._unfetched.add((p.topic, p.partition))
        # Assign here rather than let the client do it: only this call takes the offsets.
        consumer.incremental_assign(assigned)
        added = [(p.topic, p.partition) for p in partitions]
        self._assignment = sorted(set(self._assignment) | set(added))
        # librdkafka calls this at the end of every cooperative rebalance, also with nothing new
        # for this member: from here it holds its (possibly empty) share of the group.
        self.in_group = True
        log.info("assigned %s", added)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Give the new owner a clean start: ledger partitions are fenced (no invoke starts
        here any more); MCL partitions commit what is recorded."""
        tps = [(p.topic, p.partition) for p in partitions]
        for topic, partition in tps:
            if topic == self._ledger.topic:
                self._driver.on_revoke(partition)
                self._view.revoke(partition)
        deadline = time.monotonic() + _REBALANCE_WAIT_SECONDS
        while self._tracker.pending(tps) and time.monotonic() < deadline:
            self._ledger.poll()
            time.sleep(0.02)
        self._commit(tps)
        self._release(tps)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Out of the group (session timed out) until the next assignment.
        self.in_group = False
        tps = [(p.topic, p.partition) for p in partitions]
        for topic, partition in tps:
            if topic == self._ledger.topic:
                self._driver.on_revoke(partition, timeout=0.0)
                self._view.revoke(partition)
        self._release(tps)

    def _release(self, tps: list[TP]) -> None:
        self._tracker.forget(tps)
        self._unfetched.difference_update(tps)
        self._assignment = [tp for tp in self._assignment if tp not in tps]
        for tp in tps:
            self._blocked.pop(tp, None)
            with contextlib.suppress(KeyError):
                self._metrics.lag.remove(tp[0], str(tp[1]))
        log.info("revoked %s", tps)

    def _shutdown(self) -> None:
        """SIGTERM/SIGINT, in order: no new records; the driver finishes the steps it runs
        (every client is still open, so their final writes go out); cancels in hand finish;
        MCL offsets are committed. Then `run` closes Kafka (leaving the group)."""
        left = self._driver.stop(self._grace)
        if left:
            log.warning("%d run steps still running at shutdown; the next owner resumes them", left)
        if self._signal_futures:
            wait(set(self._signal_futures), timeout=5)
        self._ledger.poll()
        self._commit()
