# Lineage triggers at work: upstream events in, one decision per downstream dataset out.
"""Where lineage triggers meet Kafka, DataHub and the run ledger (docs/triggers.md).

- OperationReader: reads DataHub's timeseries MCL topic (`MetadataChangeLog_Timeseries_v1`,
  METADATA_CHANGE_LOG_TIMESERIES_TOPIC_NAME) in its own consumer group, so each `operation`
  event is read by one member; drops records by key (GMS keys MCLs by the entity URN:
  KafkaEventProducer.produceMetadataChangeLog) unless the URN is an upstream of a triggered
  dataset; writes one intent per triggered downstream to the ledger, then commits.
- run_success: the driver calls `run_finished` when one of our runs ended SUCCESS.
- TriggerDecider: for the ledger partitions this consumer owns, folds intents into each
  dataset's TriggerState (triggers.py), stores it, and when a window is due writes the
  triggered run as an ordinary execution request (source type LINEAGE_TRIGGER) to DataHub.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from lambda_trigger.contract import (
    MAX_REASON_LENGTH,
    DataHubStatus,
    RunRequest,
    RunResult,
    SourceType,
    now_ms,
)
from lambda_trigger.datahub import DataHubClient, DataHubUnavailable, WriteRejected
from lambda_trigger.mapping import Trigger
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.decode import (
    DecodeError,
    Registry,
    RegistryUnavailable,
    decode_change_log,
)
from lambda_trigger_consumer.ledger import LedgerView, LedgerWriter, RunEntry
from lambda_trigger_consumer.lineage import LineageCache
from lambda_trigger_consumer.trigger_intents import (
    TriggerBook,
    drop_intent,
    write_intent,
    write_state,
)
from lambda_trigger_consumer.triggers import (
    OPERATION,
    RUN_SUCCESS,
    Absorbed,
    Firing,
    Intent,
    TriggerConfig,
    TriggerState,
    Wait,
    absorb,
    due,
    fire,
    written,
)

log = logging.getLogger(__name__)
SOURCE_TYPE = SourceType.LINEAGE.value
ARG_TRIGGER_REASON = "triggerReason"  # JSON list of {upstream, event, eventTimeMs[, upstreamRunId]}
ARG_LINEAGE_CHAIN = "lineageChain"  # JSON list of [dataset, runId or null], oldest first
OPERATION_ASPECT = "operation"
# After a fire, the new run needs a moment to reach the ledger (DataHub -> MCL -> ledger):
# until it shows there (or this long passes) the dataset counts as having an active run.
_FIRED_GRACE_SECONDS = 60.0


class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        p = "lambda_trigger_consumer_triggers"
        self.events = Counter(
            f"{p}_events",
            "Upstream events counted for a triggered dataset",
            ["event"],
            registry=registry,
        )
        self.fired = Counter(f"{p}_fired", "Triggered runs started", registry=registry)
        self.debounced = Counter(
            f"{p}_debounced", "Upstream events merged into an open window", registry=registry
        )
        self.suppressed = Counter(
            f"{p}_suppressed",
            "Upstream events refused (cycle, depth) or windows held back (cooldown, rate)",
            ["reason"],
            registry=registry,
        )
        for reason in ("cooldown", "cycle", "depth", "rate"):
            self.suppressed.labels(reason=reason)
        for event in (OPERATION, RUN_SUCCESS):
            self.events.labels(event=event)


def config_of(trigger: Trigger) -> TriggerConfig:
    return TriggerConfig(
        on_upstream=frozenset(trigger.on_upstream),
        debounce_ms=trigger.debounce_seconds * 1000,
        cooldown_ms=trigger.cooldown_seconds * 1000,
        max_depth=trigger.max_depth,
    )


def chain_of(request: dict[str, Any] | None) -> tuple[tuple[str, str | None], ...]:
    """The lineage chain a run of ours carries (none for a run a person or a job started)."""
    raw = ((request or {}).get("extra_args") or {}).get(ARG_LINEAGE_CHAIN)
    if not raw:
        return ()
    try:
        return tuple((str(c[0]), c[1]) for c in json.loads(raw))
    except (ValueError, TypeError, IndexError):
        return ()


class RateLimit:
    """A token bucket: at most `per_minute` triggered runs per minute from this process."""

    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._tokens = float(per_minute)
        self._rate = per_minute / 60.0
        self._at = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now

    def available(self) -> bool:
        self._refill()
        return self._tokens >= 1.0

    def take(self) -> None:
        self._refill()
        self._tokens -= 1.0


def _write_with_retry(stopping: threading.Event, what: str, write: Any) -> bool:
    delay = 0.2
    while not stopping.is_set():
        try:
            write()
            return True
        except KafkaException as exc:
            log.warning("%s: ledger write failed (%s); retrying", what, exc)
            stopping.wait(delay)
            delay = min(delay * 2, 5.0)
    return False


class IntentWriter:
    """Turns an upstream event into one intent per triggered downstream dataset."""

    def __init__(
        self,
        ledger: LedgerWriter,
        cache: LineageCache,
        mappings: MappingSource,
        metrics: TriggerMetrics,
        stopping: threading.Event,
    ) -> None:
        self._ledger = ledger
        self._cache = cache
        self._mappings = mappings
        self._metrics = metrics
        self._stopping = stopping

    def upstream_event(
        self,
        upstream: str,
        event: str,
        event_ms: int,
        chain: tuple[tuple[str, str | None], ...] = (),
        upstream_run: str | None = None,
    ) -> bool:
        """False when stopping before every intent was stored (the caller must not commit)."""
        triggers = self._mappings.current().triggers()
        for dataset in sorted(self._cache.downstreams(upstream)):
            trigger = triggers.get(dataset)
            if trigger is None or event not in trigger.on_upstream:
                continue
            intent = Intent(dataset, upstream, event, event_ms, chain, upstream_run)
            self._metrics.events.labels(event=event).inc()
            log.info("trigger intent: %s of %s for %s", event, upstream, dataset)
            if not _write_with_retry(
                self._stopping,
                f"trigger intent for {dataset}",
                lambda i=intent: write_intent(self._ledger, i),
            ):
                return False
        return True

    def run_finished(self, entry: RunEntry, result: RunResult) -> None:
        """The driver's hook: a run of ours ended. SUCCESS is an upstream event."""
        if result.status != DataHubStatus.SUCCESS or not entry.dataset_urn:
            return
        if not self._cache.downstreams(entry.dataset_urn):
            return
        try:
            self.upstream_event(
                entry.dataset_urn,
                RUN_SUCCESS,
                now_ms(),
                chain_of(entry.request),
                entry.run_id,
            )
        except Exception:  # never fail the run's own ending
            log.exception("run %s: trigger intents not written", entry.run_id)


class OperationReader:
    """`operation` timeseries MCLs of upstream datasets -> intents (own consumer group)."""

    def __init__(
        self,
        kafka_config: dict[str, Any],
        topic: str,
        registry: Registry,
        cache: LineageCache,
        intents: IntentWriter,
        stopping: threading.Event,
        *,
        dead_letters: DeadLetters | None = None,
        decode_failures: Counter | None = None,
    ) -> None:
        self._topic = topic
        self._registry = registry
        self._cache = cache
        self._intents = intents
        self._stopping = stopping
        self._dead_letters = dead_letters
        self._decode_failures = decode_failures  # ConsumerMetrics.decode_failures{reason}
        self._consumer = Consumer(
            {
                **kafka_config,
                "enable.auto.commit": False,
                # A new group starts at the end: a first start must not trigger every dataset
                # for every operation DataHub ever recorded.
                "auto.offset.reset": "latest",
                "partition.assignment.strategy": "cooperative-sticky",
            }
        )
        self.assigned = threading.Event()
        self._thread = threading.Thread(target=self._run, name="operations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """A partition this group never committed starts at its end offset, taken here: a
        first start must not trigger every dataset for every operation DataHub ever recorded,
        and an event written once `assigned` is set is read."""
        try:
            committed = consumer.committed(partitions, timeout=10)
            starts = []
            fresh = []
            for tp in committed:
                if tp.offset < 0:
                    _low, high = consumer.get_watermark_offsets(tp, timeout=10)
                    fresh.append(TopicPartition(tp.topic, tp.partition, max(high, 0)))
                else:
                    starts.append(tp)
            if fresh:
                # Committed at once: a member that takes the partition over after this one
                # died starts here too, not at a later end (the events between would be lost).
                consumer.commit(offsets=fresh, asynchronous=False)
                starts += fresh
        except KafkaException as exc:
            log.warning("operations: start offsets not read (%s); using the reset policy", exc)
            starts = partitions
        consumer.incremental_assign(starts)
        log.info("operations: reading %s", [(t.partition, t.offset) for t in starts])
        self.assigned.set()

    def _run(self) -> None:
        self._consumer.subscribe([self._topic], on_assign=self._on_assign)
        try:
            while not self._stopping.is_set():
                batch = self._consumer.consume(500, timeout=0.5)
                keys = self._cache.upstream_keys.keys
                done = True
                for index, msg in enumerate(batch):
                    if msg.error() is not None:
                        continue
                    if msg.key() not in keys:
                        continue  # not an upstream of a triggered dataset
                    if not self._on_record(msg):
                        done = False
                        self._rewind(batch[index:])
                        self._stopping.wait(1.0)
                        break
                if batch and done:
                    try:
                        self._consumer.commit(asynchronous=False)
                    except KafkaException as exc:
                        log.warning("operations: commit failed (%s)", exc)
        finally:
            self._consumer.close()

    def _rewind(self, unhandled: list[Message]) -> None:
        """Read these again (nothing of them is committed): each partition from its first."""
        first: dict[tuple[str, int], int] = {}
        for msg in unhandled:
            if msg.error() is None:
                tp = (msg.topic() or "", msg.partition() or 0)
                first[tp] = min(first.get(tp, msg.offset() or 0), msg.offset() or 0)
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                log.warning("operations: seek failed (%s)", exc)

    def _on_record(self, msg: Message) -> bool:
        """False: not handled (registry away, or stopping): read it again later. Any other
        failure skips the record with a log line, a count and a dead letter: the topic is
        written by whoever may write an `operation`, and no record may stop this thread (it
        would stop every `operation` trigger, silently)."""
        try:
            change = decode_change_log(msg.value(), self._registry)
            if change.aspect_name != OPERATION_ASPECT or change.aspect is None:
                return True
            event_ms = _event_ms(change.aspect, change.created_ms)
        except RegistryUnavailable as exc:
            log.warning("operations: schema registry unavailable (%s); reading again", exc)
            return False
        except Exception as exc:
            self._skip(msg, exc)
            return True
        return self._intents.upstream_event(change.entity_urn, OPERATION, event_ms)

    def _skip(self, msg: Message, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, DecodeError) else "unhandled"
        text = str(exc) if isinstance(exc, DecodeError) else type(exc).__name__
        source = (msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
        log.warning("operations: record %s[%d]@%d skipped: %s", *source, text)
        if self._decode_failures is not None:
            self._decode_failures.labels(reason=reason).inc()
        if self._dead_letters is not None:
            key = msg.key()
            self._dead_letters.send(
                f"decode_{reason}",
                text,
                key=key if isinstance(key, bytes) else None,
                value=msg.value(),
                source=source,
            )


def _event_ms(aspect: dict[str, Any], created_ms: int | None) -> int:
    """When the upstream changed: the operation's timestampMillis (it differs between two
    operations of one dataset), else its lastUpdatedTimestamp, else when GMS logged it.

    Never later than now. The time is the writer's word (anyone who may write an `operation`
    aspect chooses it), and triggers.absorb drops every later event of the upstream that is
    not newer than the newest it has seen: one operation dated in the year 9999 would silence
    the upstream's triggers for good. A future time is taken as the time it was read."""
    now = now_ms()
    at = aspect.get("timestampMillis") or aspect.get("lastUpdatedTimestamp") or created_ms or now
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise DecodeError("aspect", f"operation time is {type(at).__name__}")
    return min(int(at), now)


class TriggerDecider:
    """Debounces and decides for the triggered datasets of the owned ledger partitions."""

    def __init__(
        self,
        view: LedgerView,
        book: TriggerBook,
        ledger: LedgerWriter,
        datahub: DataHubClient,
        mappings: MappingSource,
        executor_id: str,
        metrics: TriggerMetrics,
        per_minute: int,
        stopping: threading.Event,
    ) -> None:
        self._view = view
        self._book = book
        self._ledger = ledger
        self._datahub = datahub
        self._mappings = mappings
        self._executor_id = executor_id
        self._metrics = metrics
        self._rate = RateLimit(per_minute)
        self._stopping = stopping
        self._fired: dict[str, tuple[str, float]] = {}  # dataset -> (run id, monotonic)
        self._rate_noted: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="trigger-decider", daemon=True)
        self.last_loop = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.last_loop = time.monotonic()
            self._book.changed.wait(0.5)
            self._book.changed.clear()
            for partition in range(self._ledger.partitions):
                if not self._view.owns(partition):
                    continue
                try:
                    self.decide(partition)
                except (KafkaException, DataHubUnavailable) as exc:
                    log.warning("trigger decisions of partition %d wait: %s", partition, exc)
                except Exception:
                    log.exception("trigger decisions of partition %d failed", partition)

    def _active(self, partition: int, dataset: str, running: set[str], ids: set[str]) -> bool:
        if dataset in running:
            return True
        fired = self._fired.get(dataset)
        if fired is None:
            return False
        run_id, at = fired
        if run_id in ids:
            return True  # never reached here: `dataset in running` already
        if time.monotonic() - at < _FIRED_GRACE_SECONDS and not self._seen_run(run_id):
            return True
        self._fired.pop(dataset, None)
        return False

    def _seen_run(self, run_id: str) -> bool:
        # The run reached the ledger and left it again (finished) or never will: DataHub
        # holding its result means it is no longer pending.
        try:
            return self._datahub.read_result(run_id) is not None
        except DataHubUnavailable:
            return False

    def decide(self, partition: int) -> None:
        triggers = self._mappings.current().triggers()
        states, intents = self._book.snapshot(partition)
        runs = [e for _p, e in self._view.runs(partition=partition)]
        running = {e.dataset_urn for e in runs if e.dataset_urn}
        ids = {e.run_id for e in runs}
        by_dataset: dict[str, list[tuple[str, Intent]]] = {}
        for key, intent in intents.items():
            by_dataset.setdefault(intent.dataset, []).append((key, intent))
        now = now_ms()
        for dataset in sorted(set(states) | set(by_dataset)):
            trigger = triggers.get(dataset)
            seq, state = states.get(dataset) or (0, TriggerState(dataset))
            consumed = [key for key, _ in by_dataset.get(dataset, [])]
            changed = False
            if trigger is not None:
                config = config_of(trigger)
                for _key, intent in sorted(
                    by_dataset.get(dataset, []), key=lambda k: k[1].event_ms
                ):
                    outcome = absorb(state, intent, config, now)
                    if outcome == Absorbed.OPENED:
                        log.info(
                            "trigger window of %s opened by %s of %s (partition %d)",
                            dataset,
                            intent.event,
                            intent.upstream,
                            partition,
                        )
                    changed = changed or outcome in (Absorbed.OPENED, Absorbed.DEBOUNCED)
                    self._count(dataset, intent, outcome)
                if state.firing is not None:  # decided by an owner that stopped: finish it
                    self._request(dataset, state.firing)
                    written(state)
                    changed = True
                elif state.pending:
                    active = self._active(partition, dataset, running, ids)
                    wait = due(state, config, now, active=active, rate_ok=self._rate.available())
                    if wait is None:
                        self._rate.take()
                        self._rate_noted.discard(dataset)
                        firing = fire(state, now)
                        seq += 1
                        self._store(partition, state, seq)  # decided before it is done
                        self._request(dataset, firing)
                        written(state)
                        changed = True
                    elif wait == Wait.COOLDOWN and not state.cooldown_noted:
                        self._metrics.suppressed.labels(reason="cooldown").inc()
                        state.cooldown_noted = True
                        changed = True
                    elif wait == Wait.RATE and dataset not in self._rate_noted:
                        self._metrics.suppressed.labels(reason="rate").inc()
                        self._rate_noted.add(dataset)
            if changed:
                self._store(partition, state, seq + 1)
            for key in consumed:  # counted in the stored state (or not triggered any more)
                drop_intent(self._ledger, key, dataset)
                self._book.dropped(partition, key)

    def _count(self, dataset: str, intent: Intent, outcome: Absorbed) -> None:
        if outcome == Absorbed.DEBOUNCED:
            self._metrics.debounced.inc()
        elif outcome in (Absorbed.CYCLE, Absorbed.DEPTH):
            self._metrics.suppressed.labels(reason=outcome.value).inc()
            log.info(
                "trigger of %s by %s of %s suppressed: %s",
                dataset,
                intent.event,
                intent.upstream,
                outcome.value,
            )

    def _store(self, partition: int, state: TriggerState, seq: int) -> bool:
        write_state(self._ledger, state, seq)
        self._book.stored(partition, state.dataset, seq, TriggerState.from_dict(state.to_dict()))
        return True

    def _request(self, dataset: str, firing: Firing) -> None:
        """The triggered run, as an ordinary execution request written by this consumer's
        own principal (DATAHUB_GMS_TOKEN). Same run id on a retry: idempotent."""
        first = firing.reasons[0] if firing.reasons else {}
        more = f" (+{len(firing.reasons) - 1} more)" if len(firing.reasons) > 1 else ""
        reason = (
            f"lineage trigger: {first.get('event')} of {first.get('upstream')} "
            f"at {first.get('eventTimeMs')}{more}"
        )[:MAX_REASON_LENGTH]
        request = RunRequest(
            run_id=firing.run_id,
            dataset_urn=dataset,
            executor_id=self._executor_id,
            source_type=SOURCE_TYPE,
            requested_at_ms=firing.requested_at_ms,
            reason=reason,
            extra_args={
                ARG_TRIGGER_REASON: json.dumps(firing.reasons, separators=(",", ":")),
                ARG_LINEAGE_CHAIN: json.dumps(firing.chain, separators=(",", ":")),
            },
        )
        try:
            self._datahub.write_request(request)
        except WriteRejected as exc:
            log.error("triggered run %s of %s refused by DataHub: %s", firing.run_id, dataset, exc)
            return
        self._metrics.fired.inc()
        self._fired[dataset] = (firing.run_id, time.monotonic())
        log.info("triggered run %s of %s: %s", firing.run_id, dataset, reason)
