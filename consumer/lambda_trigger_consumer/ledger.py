"""The run ledger: a compacted Kafka topic holding every run the consumer group has not finished.

Nothing about a run lives only in memory. A run is recorded here before anything is done for
it; whoever owns the ledger partition drives it to a final status in DataHub and then writes a
tombstone. A consumer that dies loses nothing: the partition's new owner (a surviving consumer,
or the same one restarted) reads the partition from the beginning and carries on.

- Key: the runId. Value: one JSON record; a tombstone (no value) once the run is final in
  DataHub, so compaction keeps the topic as small as the number of unfinished runs.
- Partition: crc32(datasetUrn) % partitions. Every run of one dataset has a single owner, which
  makes "one active run per dataset and target" a local decision and needs no lock service.
- Kinds: `request`, `cancel`, `completion` are facts that any consumer writes for the owner
  (it read a request or a cancel signal from the MCL, or a destination record from SQS);
  `state` is the owner's full snapshot of the run. Records are folded in offset order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from lambda_trigger.contract import DataHubStatus, RunRequest, RunResult
from lambda_trigger_consumer.ledger_auth import LedgerSigner
from lambda_trigger_consumer.sfn_events import binds, expected_execution_arn, is_status_event_fact

FORMAT_VERSION = 1
log = logging.getLogger(__name__)


class Phase(StrEnum):
    REQUESTED = "requested"  # known, nothing done yet
    CLAIMED = "claimed"  # target chosen; the owner is claiming it in DataHub (not invoked)
    INVOKING = "invoking"  # the owner is calling AWS: it may have started the job
    STARTED = "started"  # an asynchronous job runs (Event Lambda, Step Functions)


@dataclass
class Target:
    """The resolved target, as the owner needs it later (internal: never leaves the consumer)."""

    kind: str  # "lambda" (RequestResponse), "lambda-event", "stepfunctions"
    key: str  # the mapping's target name, or the job's ARN
    label: str
    matched_by: str
    function: str | None = None
    qualifier: str | None = None
    state_machine_arn: str | None = None
    region: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    tracked: bool = True  # Event targets: a destination to our queue reports the outcome
    max_seconds: int | None = None  # the mapping's maxDurationSeconds
    parameters: dict[str, Any] | None = None  # the run's checked values (parameters.py)


@dataclass
class RunEntry:
    run_id: str
    dataset_urn: str | None
    phase: Phase = Phase.REQUESTED
    request: dict[str, Any] | None = None  # RunRequest fields + "writer"
    invalid: str | None = None  # ours, but unusable: the message for the FAILURE report
    nonce: str | None = None
    target: Target | None = None
    start_ms: int | None = None
    deadline_ms: int | None = None
    request_id: str | None = None
    execution_arn: str | None = None
    # StartExecution's startDate (ms): binds Step Functions status events (sfn_events.py).
    execution_start_ms: int | None = None
    result: dict[str, Any] | None = None  # a final RunResult waiting to be written
    result_guard: bool = False  # write the result only over a RUNNING status (a takeover)
    cancel_by: str | None = None  # who asked to cancel (not yet vetted: see cancel_ok)
    completion: dict[str, Any] | None = None  # the outcome an SQS destination record reported
    # The owner checked that cancel_by may cancel this run (driver.py, _vet_cancel).
    cancel_ok: bool = False
    # Facts the owner refused: a cancel by someone who may not cancel the run, a completion
    # record not bound to this run's invoke. Kept so that a later merge never brings them back.
    cancels_ignored: list[str] = field(default_factory=list)
    completions_ignored: list[str] = field(default_factory=list)
    seq: int = 0  # the owner's snapshot number: an older snapshot never replaces a newer one
    # A "run with upstream" parent's progress (upstream_runner.py): its waves, the current
    # wave, when each wave's children were requested (their requestedAt, so a rewrite after a
    # takeover is the very same request).
    plan: dict[str, Any] | None = None
    closing: bool = False  # in memory only: the tombstone is written, its echo not yet read

    # --- conversions ----------------------------------------------------------------------

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("closing")
        data["kind"] = "state"
        data["v"] = FORMAT_VERSION
        return json.dumps(data, separators=(",", ":"), default=str).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunEntry:
        target = data.get("target")
        return cls(
            run_id=str(data["run_id"]),
            dataset_urn=data.get("dataset_urn"),
            phase=Phase(data.get("phase", Phase.REQUESTED)),
            request=data.get("request"),
            invalid=data.get("invalid"),
            nonce=data.get("nonce"),
            target=Target(**target) if isinstance(target, dict) else None,
            start_ms=data.get("start_ms"),
            deadline_ms=data.get("deadline_ms"),
            request_id=data.get("request_id"),
            execution_arn=data.get("execution_arn"),
            execution_start_ms=data.get("execution_start_ms"),
            result=data.get("result"),
            result_guard=bool(data.get("result_guard")),
            cancel_by=data.get("cancel_by"),
            completion=data.get("completion"),
            cancel_ok=bool(data.get("cancel_ok")),
            cancels_ignored=[str(a) for a in data.get("cancels_ignored") or []],
            completions_ignored=[str(r) for r in data.get("completions_ignored") or []],
            seq=int(data.get("seq") or 0),
            plan=data.get("plan") if isinstance(data.get("plan"), dict) else None,
        )

    def run_request(self) -> RunRequest | None:
        if self.request is None:
            return None
        fields = {k: v for k, v in self.request.items() if k != "writer"}
        return RunRequest(**fields)

    @property
    def writer(self) -> str | None:
        return (self.request or {}).get("writer")


def result_to_dict(result: RunResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "start_time_ms": result.start_time_ms,
        "report": result.report,
        "duration_ms": result.duration_ms,
        "details": result.details,
    }


def result_from_dict(data: dict[str, Any]) -> RunResult:
    return RunResult(
        DataHubStatus(data["status"]),
        int(data["start_time_ms"]),
        str(data["report"]),
        data.get("duration_ms"),
        dict(data.get("details") or {}),
    )


# --- facts written by non-owners ---------------------------------------------------------


def request_record(request: RunRequest, writer: str | None) -> bytes:
    data = asdict(request)
    data["writer"] = writer
    return _fact("request", request.run_id, request.dataset_urn, request=data)


def invalid_record(run_id: str, message: str) -> bytes:
    return _fact("request", run_id, None, invalid=message)


def cancel_record(run_id: str, dataset_urn: str | None, actor: str | None) -> bytes:
    return _fact("cancel", run_id, dataset_urn, cancel_by=actor or "unknown")


def completion_record(run_id: str, dataset_urn: str | None, completion: dict[str, Any]) -> bytes:
    return _fact("completion", run_id, dataset_urn, completion=completion)


# Trigger decisions (trigger_intents.py) share the ledger: same partitioning by dataset, same
# record format; their keys start with this and never name a run.
TRIGGER_KEY_PREFIX = "trigger-"


def trigger_record(kind: str, key: str, dataset_urn: str, **fields: Any) -> bytes:
    """A trigger intent or a trigger decision state, in the ledger's own record format."""
    return _fact(kind, key, dataset_urn, **fields)


def decode_trigger_record(value: bytes) -> dict[str, Any]:
    """A trigger record's fields (the reading side of trigger_record); ValueError if not ours."""
    data = json.loads(value)
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError("not a ledger record")
    return data


class TriggerSink(Protocol):
    def reset(self, partition: int) -> None: ...

    def apply(self, partition: int, key: str, value: bytes | None) -> None: ...


def _fact(kind: str, run_id: str, dataset_urn: str | None, **fields: Any) -> bytes:
    data = {"v": FORMAT_VERSION, "kind": kind, "run_id": run_id, "dataset_urn": dataset_urn}
    data.update(fields)
    return json.dumps(data, separators=(",", ":"), default=str).encode()


class LedgerFormatError(ValueError):
    pass


def _request_id(completion: dict[str, Any] | None) -> str:
    return str((completion or {}).get("requestId") or "")


def _genuine_over_forged(entry: RunEntry, held: dict[str, Any], new: dict[str, Any]) -> bool:
    """Should `new` replace the completion fact `held`: it is the run's own and `held` is not?
    A forged record read first must not hide the genuine one."""
    if is_status_event_fact(new) or is_status_event_fact(held):
        # Before StartExecution is recorded, the ARN it will have (executions are named after
        # the run) already tells a forged event from the genuine one.
        arn = entry.execution_arn or (
            expected_execution_arn(entry.target.state_machine_arn, entry.run_id)
            if entry.target is not None
            else None
        )
        start = entry.execution_start_ms
        return binds(new, arn, start) and not binds(held, arn, start)
    return (
        entry.request_id is not None
        and _request_id(held) != entry.request_id
        and _request_id(new) == entry.request_id
    )


def merge_facts(snapshot: RunEntry, earlier: RunEntry) -> None:
    """Facts read after the owner's last read (a cancel, a completion) survive the owner's
    snapshot, unless the snapshot says the owner refused them."""
    if snapshot.cancel_by is None and earlier.cancel_by not in snapshot.cancels_ignored:
        snapshot.cancel_by = earlier.cancel_by
        snapshot.cancel_ok = earlier.cancel_ok
    if (
        earlier.completion is not None
        and _request_id(earlier.completion) not in snapshot.completions_ignored
        and (
            snapshot.completion is None
            or _genuine_over_forged(snapshot, snapshot.completion, earlier.completion)
        )
    ):
        snapshot.completion = earlier.completion


def fold(entry: RunEntry | None, value: bytes | None, run_id: str) -> RunEntry | None:
    """Apply one ledger record to what is known of a run. Idempotent for repeated facts."""
    if value is None:
        return None  # tombstone: the run is final in DataHub
    try:
        data = json.loads(value)
        kind = data["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerFormatError(f"ledger record for {run_id} is not ours: {exc}") from exc
    if kind == "state":
        snapshot = RunEntry.from_dict(data)
        if entry is not None and (entry.closing or snapshot.seq < entry.seq):
            return entry  # the echo of a snapshot the owner has already moved past
        if entry is not None:
            merge_facts(snapshot, entry)
        return snapshot
    if entry is None:
        entry = RunEntry(run_id=run_id, dataset_urn=data.get("dataset_urn"))
    if kind == "request":
        if entry.request is None and entry.invalid is None:
            entry = replace(entry, request=data.get("request"), invalid=data.get("invalid"))
            entry.dataset_urn = entry.dataset_urn or data.get("dataset_urn")
        return entry  # a redelivered request changes nothing
    if kind == "cancel":
        actor = str(data.get("cancel_by") or "unknown")
        if entry.cancel_by is None and actor not in entry.cancels_ignored:
            entry.cancel_by, entry.cancel_ok = actor, False
        return entry
    if kind == "completion":
        completion = data.get("completion")
        if not isinstance(completion, dict):
            raise LedgerFormatError(f"ledger record for {run_id} has no completion")
        if _request_id(completion) in entry.completions_ignored:
            return entry
        if entry.completion is None or _genuine_over_forged(entry, entry.completion, completion):
            entry.completion = completion
        return entry
    raise LedgerFormatError(f"ledger record for {run_id} has unknown kind {kind!r}")


def partition_for(dataset_urn: str | None, run_id: str, partitions: int) -> int:
    key = dataset_urn or run_id
    return zlib.crc32(key.encode()) % partitions


class LedgerWriter:
    """Produces ledger records and waits until the broker has them: a step that is recorded
    here is never lost, and one that could not be recorded is not taken."""

    def __init__(
        self,
        producer_config: dict[str, Any],
        topic: str,
        partitions: int,
        signer: LedgerSigner | None = None,
    ) -> None:
        self._producer = Producer(
            {
                **producer_config,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 0,
                # Fail a write within seconds rather than librdkafka's 5 minutes: the caller
                # retries it or gives the run back, and a partition's new owner must not wait.
                "message.timeout.ms": 15000,
            }
        )
        self.topic = topic
        self.partitions = partitions
        self.signer = signer or LedgerSigner(None)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        # One thread serves the producer's delivery reports as they arrive (librdkafka's poll
        # returns as soon as it has served one): a writer only waits for its own. Before,
        # each waiting writer polled every 2 ms itself, and in a burst (benchmarks/burst.py)
        # tens of them waking 500 times a second each were a tenth of the consumer's Python
        # time, taken from the runs' own steps. It holds the writer only weakly: a writer
        # nobody uses any more (tests make many) ends its thread.
        self.delivery_thread = threading.Thread(
            target=_serve_deliveries,
            args=(weakref.ref(self), self._producer, self._closed),
            name="ledger-deliveries",
            daemon=True,
        )
        self.delivery_thread.start()

    def close(self) -> None:
        """Stop serving delivery reports (after the last flush)."""
        self._closed.set()

    def write(
        self, run_id: str, dataset_urn: str | None, value: bytes | None, timeout: float = 20.0
    ) -> None:
        """Raises KafkaException when the record was not stored."""
        done = threading.Event()
        errors: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)
            done.set()

        key = run_id.encode()
        with self._lock:
            self._producer.produce(
                self.topic,
                key=key,
                value=value,
                partition=partition_for(dataset_urn, run_id, self.partitions),
                headers=self.signer.headers(key, value),
                on_delivery=delivered,
            )
        # The delivery thread (or a flush) serves the report; after close(), nobody does.
        if self._closed.is_set():
            end = time.monotonic() + timeout
            while not done.is_set() and time.monotonic() < end:
                self._producer.poll(0.01)
        else:
            done.wait(timeout)
        if errors:
            raise KafkaException(errors[0])
        if not done.is_set():
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "ledger write timed out"))

    def send(
        self,
        run_id: str,
        dataset_urn: str | None,
        value: bytes | None,
        on_delivery: Callable[[KafkaError | None, int], None],
    ) -> None:
        """Without waiting: `on_delivery(error, partition)` runs from a later `poll()` (the
        poll loop's path, or a step's write)."""
        key = run_id.encode()
        with self._lock:
            self._producer.produce(
                self.topic,
                key=key,
                value=value,
                partition=partition_for(dataset_urn, run_id, self.partitions),
                headers=self.signer.headers(key, value),
                on_delivery=lambda err, msg: on_delivery(err, msg.partition() or 0),
            )

    def poll(self) -> None:
        """Serve the delivery reports that are due (the delivery thread does this anyway)."""
        self._producer.poll(0)

    def state(self, entry: RunEntry) -> None:
        self.write(entry.run_id, entry.dataset_urn, entry.to_json())

    def tombstone(self, entry: RunEntry) -> None:
        self.write(entry.run_id, entry.dataset_urn, None)

    def flush(self, timeout: float = 10.0) -> int:
        return self._producer.flush(timeout)


def _serve_deliveries(
    writer: weakref.ref[LedgerWriter], producer: Producer, closed: threading.Event
) -> None:
    """LedgerWriter's delivery thread: until the writer is closed or gone."""
    while not closed.is_set() and writer() is not None:
        try:
            producer.poll(0.1)
        except Exception:  # a delivery callback raised: log it, keep serving the others
            log.exception("ledger delivery report")


class RunCensus(NamedTuple):
    """One open run as the run driver's dispatch loop counts it (LedgerView.census)."""

    partition: int
    run_id: str
    phase: Phase
    has_result: bool
    target_kind: str | None


@dataclass
class _Partition:
    loaded: bool = False
    entries: dict[str, RunEntry] = field(default_factory=dict)
    # dataset URN -> run ids (a superset: read through `entries`). The run driver asks for a
    # dataset's runs before every start (one active run per dataset); a scan of every run
    # there cost a burst of 2,000 runs 4 million look-ups (benchmarks/burst.py).
    by_dataset: dict[str, set[str]] = field(default_factory=dict)

    def index(self, entry: RunEntry) -> None:
        if entry.dataset_urn:
            self.by_dataset.setdefault(entry.dataset_urn, set()).add(entry.run_id)

    def unindex(self, entry: RunEntry) -> None:
        runs = self.by_dataset.get(entry.dataset_urn or "")
        if runs is not None:
            runs.discard(entry.run_id)
            if not runs:
                del self.by_dataset[entry.dataset_urn or ""]


class LedgerView:
    """The runs of the ledger partitions this consumer owns, folded from the topic.

    The poll loop feeds records in; the run driver reads. A partition counts only once it has
    been read to its end (partition EOF): acting on half a history could start a run whose
    later records say it already ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partitions: dict[int, _Partition] = {}
        self._touched: dict[str, int] = {}  # run id -> its partition
        self.changed = threading.Event()
        # Counts changes of the loaded partitions (assigned, loaded, revoked): the run driver
        # then looks at every run again, not only at those with news.
        self.generation = 0
        self.trigger_sink: TriggerSink | None = None  # trigger_intents.TriggerBook
        # Runs with a KILL read from the MCL and on its way into the ledger (runner.py): since
        # when. The run driver does not claim such a run until the KILL is here (or a while
        # has passed), so a KILL written before the run was taken up is judged before it starts.
        self._expected: dict[str, float] = {}

    def expect_cancel(self, run_id: str) -> None:
        with self._lock:
            self._expected.setdefault(run_id, time.monotonic())

    def cancel_settled(self, run_id: str) -> None:
        with self._lock:
            self._expected.pop(run_id, None)

    def cancel_expected(self, run_id: str, within: float) -> bool:
        """A KILL of the run was read less than `within` seconds ago and is not in the view."""
        with self._lock:
            since = self._expected.get(run_id)
        return since is not None and time.monotonic() - since < within

    def assign(self, partition: int) -> None:
        with self._lock:
            self._partitions[partition] = _Partition()
            self.generation += 1
        if self.trigger_sink is not None:
            self.trigger_sink.reset(partition)

    def revoke(self, partition: int) -> None:
        with self._lock:
            self._partitions.pop(partition, None)
            self.generation += 1

    def owns(self, partition: int) -> bool:
        with self._lock:
            part = self._partitions.get(partition)
            return part is not None and part.loaded

    def loaded(self, partition: int) -> None:
        with self._lock:
            part = self._partitions.get(partition)
            if part is not None and not part.loaded:
                part.loaded = True
                self.generation += 1
                self.changed.set()

    def apply(self, partition: int, run_id: str, value: bytes | None) -> None:
        if run_id.startswith(TRIGGER_KEY_PREFIX):
            if self.trigger_sink is not None:
                self.trigger_sink.apply(partition, run_id, value)
            return
        with self._lock:
            part = self._partitions.get(partition)
            if part is None:
                return
            entry = fold(part.entries.get(run_id), value, run_id)
            if entry is None:
                gone = part.entries.pop(run_id, None)
                if gone is not None:
                    part.unindex(gone)
            else:
                part.entries[run_id] = entry
                part.index(entry)
            self._touched[run_id] = partition
        self.changed.set()

    def take_touched(self) -> dict[str, int]:
        """Runs that got a new record since the last call (a request, a cancel, a
        completion...), each with its partition."""
        with self._lock:
            touched, self._touched = self._touched, {}
            return touched

    def update_local(self, partition: int, entry: RunEntry) -> None:
        """The owner's own snapshot, as soon as the broker has it (before its echo is read)."""
        with self._lock:
            part = self._partitions.get(partition)
            if part is None:
                return
            current = part.entries.get(entry.run_id)
            if current is None or (not current.closing and current.seq <= entry.seq):
                if current is not None:  # facts read meanwhile stay
                    merge_facts(entry, current)
                part.entries[entry.run_id] = entry
                part.index(entry)

    def close_local(self, partition: int, run_id: str) -> None:
        """The owner wrote the tombstone: nothing more to do until its echo removes the run."""
        with self._lock:
            part = self._partitions.get(partition)
            current = part.entries.get(run_id) if part else None
            if current is not None:
                current.closing = True

    def get(self, partition: int, run_id: str) -> RunEntry | None:
        with self._lock:
            part = self._partitions.get(partition)
            entry = part.entries.get(run_id) if part else None
            return replace(entry) if entry is not None else None

    def runs(
        self, *, partition: int | None = None, where: Callable[[RunEntry], bool] | None = None
    ) -> Iterator[tuple[int, RunEntry]]:
        """A snapshot of the runs in the loaded partitions (of `partition` only, if given)
        that `where` accepts. Only those are copied: a copy of every run costs milliseconds
        per thousand runs, with the lock held."""
        with self._lock:
            items = [
                (number, replace(entry))
                for number, part in self._partitions.items()
                if part.loaded and (partition is None or number == partition)
                for entry in part.entries.values()
                if not entry.closing and (where is None or where(entry))
            ]
        return iter(items)

    def runs_of(self, partition: int, dataset: str) -> list[RunEntry]:
        """A snapshot of the open runs of one dataset in a loaded partition (every run of a
        dataset is in one partition: `partition_for`)."""
        with self._lock:
            part = self._partitions.get(partition)
            if part is None or not part.loaded:
                return []
            found = (part.entries.get(run_id) for run_id in part.by_dataset.get(dataset, ()))
            return [
                replace(entry)
                for entry in found
                if entry is not None and not entry.closing and entry.dataset_urn == dataset
            ]

    def census(self) -> list[RunCensus]:
        """Every open run of the loaded partitions, in brief and without copying it."""
        with self._lock:
            return [
                RunCensus(
                    number,
                    entry.run_id,
                    entry.phase,
                    entry.result is not None,
                    entry.target.kind if entry.target is not None else None,
                )
                for number, part in self._partitions.items()
                if part.loaded
                for entry in part.entries.values()
                if not entry.closing
            ]

    def size(self) -> int:
        with self._lock:
            return sum(len(p.entries) for p in self._partitions.values())

    def open_count(self) -> int:
        """How many runs census() would list, counted when asked (the open-runs gauge)."""
        with self._lock:
            return sum(
                1
                for part in self._partitions.values()
                if part.loaded
                for entry in part.entries.values()
                if not entry.closing
            )
