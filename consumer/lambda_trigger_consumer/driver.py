"""Steps 4-6 for every run of the ledger partitions this consumer owns:
target -> claim -> invoke -> track -> status, until DataHub holds a final status.

A run moves through the ledger's phases (ledger.py). Each step is recorded in the ledger
before the side effect it announces, so that whoever owns the run next knows what may have
happened:

    REQUESTED --resolve, dedupe--> CLAIMED --claim in DataHub--> INVOKING --AWS--> STARTED
        |                            |                               |                |
        +-- not started: FAILURE, CANCELLED, DUPLICATE               +-- result ------+--> tombstone

- The claim is a RUNNING write with `If-Version-Match: -1` carrying a nonce minted by this
  process: of two owners racing for a run (a rebalance, a restart), exactly one claim lands.
- INVOKING is in the ledger before AWS is called. A new owner that finds INVOKING never calls
  AWS again for a Lambda: it waits for the deadline and ends the run TIMEOUT ("outcome
  unknown"). A Step Functions start is idempotent by execution name, so it is checked and, if
  missing, started.
- Every run has a deadline: a synchronous Lambda's own timeout plus a margin; for Event Lambdas
  and Step Functions the target's `maxDurationSeconds` or the consumer's default.
- An exception in a step ends the run FAILURE with a plain message; nothing strands a run.

Nothing in the ledger is believed for what it says (issue 19; docs/security.md). Besides the
records' MAC (ledger_auth.py), right before any invoke the run is checked again: its target must
be the one the current mapping resolves for its dataset, and its recorded writer must pass the
writer check. A cancel counts only when its writer may cancel the run (its requester, or
someone who may start runs); a destination record only when it carries the request id of this
run's invoke and the run's function (completion.py, `unbound_reason`).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import KafkaException

from lambda_trigger.contract import (
    CLAIM_KEY,
    DataHubStatus,
    RunRequest,
    RunResult,
    is_final,
    lambda_payload,
    now_ms,
    report_details,
)
from lambda_trigger.datahub import DataHubClient, DataHubUnavailable, WriteRejected
from lambda_trigger.mapping import LambdaTarget, Resolution
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.parameters import ARG_PARAMETERS, ParameterError, checked_parameters
from lambda_trigger.sanitize import printable
from lambda_trigger_consumer import status
from lambda_trigger_consumer.aws_calls import AwsTransient, jittered
from lambda_trigger_consumer.completion import unbound_reason
from lambda_trigger_consumer.history import RunHistory
from lambda_trigger_consumer.invoke import ExecutionStatus, Invoker, execution_arn
from lambda_trigger_consumer.invoke_limit import AdaptiveLimit
from lambda_trigger_consumer.ledger import (
    LedgerView,
    LedgerWriter,
    Phase,
    RunEntry,
    Target,
    result_from_dict,
    result_to_dict,
)
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.poll_plan import PollPlan
from lambda_trigger_consumer.sfn_events import (
    FINAL_STATUSES,
    event_unbound_reason,
    is_status_event_fact,
    start_matches,
)
from lambda_trigger_consumer.status_writer import StatusWriter
from lambda_trigger_consumer.step_queue import FairExecutor, Priority, PriorityGate, priority_of
from lambda_trigger_consumer.target import NoTarget, resolve_target
from lambda_trigger_consumer.upstream_runner import PlanRunner

log = logging.getLogger(__name__)
# How often the dispatch loop looks at every run; between, only at runs with news or a due look.
FULL_SCAN_SECONDS = 0.5

# The `kind` label of runs_inflight for the asynchronous targets, counted by the dispatch loop
# (a synchronous invoke counts itself while it waits for the function, in _invoke).
# How long a run waits, before its claim, for a KILL of it that has been read from the MCL
# to reach the ledger (one GMS read and one ledger write; longer only while DataHub is away).
CANCEL_WAIT_SECONDS = 5.0
ASYNC_KINDS = {"lambda-event": "event", "stepfunctions": "stepfunctions"}
# Clocks differ a little between writers and the consumer; more than this is not skew.
FUTURE_TOLERANCE_SECONDS = 300.0

# The pre-start check of the trust boundary (authorize.py): the request as it may run (its
# requester decided by who wrote it), or the message for the FAILURE report.
Gate = Callable[[RunRequest], tuple[RunRequest, str | None]]
# May this actor (a KILL signal's writer) cancel this run (None: its request is not known)?
CancelGate = Callable[[str, RunRequest | None], bool]


@dataclass(frozen=True)
class DriverConfig:
    job_arn_property_urn: str | None = None
    # Older requests are not started: after an outage or a consumer-group reset, a backlog of
    # day-old clicks must not all fire at once.
    max_request_age_seconds: float = 3600.0
    # Added to a synchronous Lambda's own timeout before its run counts as lost.
    sync_margin_seconds: float = 60.0
    async_max_seconds: float = 7 * 3600.0  # Event Lambdas without maxDurationSeconds
    sfn_max_seconds: float = 24 * 3600.0  # Step Functions without maxDurationSeconds
    # How long a throttled invoke is retried (AWS guarantees the function did not run).
    throttle_retry_seconds: float = 900.0
    sfn_poll_max_seconds: float = 30.0
    # DescribeExecution calls a second, all tracked executions together (poll_plan.py).
    sfn_poll_rate: float = 5.0
    # Threads for the quick steps (checks, claims, status writes, Step Functions and Event
    # invokes, polls): each mostly waits for GMS or AWS, so a burst of runs needs more than a
    # few, or a lone click queues behind hundreds of other runs' steps (benchmarks/burst.py).
    step_threads: int = 16
    # Claims in DataHub at once (the final ones of unstarted runs too): in a burst the
    # synchronous runs' claims came from up to `max_inflight` threads at once, and a click's
    # queued at GMS behind all of them. Waiting claims go in by priority (PriorityGate).
    max_claims: int = 8
    # One active run per dataset and target: a second request ends DUPLICATE.
    one_active_run: bool = True
    completion_queue_arn: str | None = None
    # Synchronous invokes at once, at most: threads are made as runs wait for one, and fewer
    # run while Lambda throttles (invoke_limit.py).
    max_inflight: int = 256
    # Waiting steps are taken by priority class, then round-robin across datasets; a step
    # moves up one class for every this many seconds it has waited (step_queue.py).
    queue_aging_seconds: float = 30.0
    # Step Functions status events reach the completion queue (sfn_events.py): polling is
    # then a safety net, every `sfn_events_poll_seconds`.
    sfn_status_events: bool = False
    sfn_events_poll_seconds: float = 900.0


class RunDriver:
    def __init__(
        self,
        view: LedgerView,
        ledger: LedgerWriter,
        datahub: DataHubClient,
        mappings: MappingSource,
        invoker: Invoker,
        metrics: ConsumerMetrics,
        config: DriverConfig,
        *,
        gate: Gate | None = None,
        cancel_gate: CancelGate | None = None,
        on_unwritable: Callable[[RunEntry, str], None] | None = None,
        history: RunHistory | None = None,
        on_finished: Callable[[RunEntry, RunResult], None] | None = None,
        status_writer: StatusWriter | None = None,
        plans: PlanRunner | None = None,
    ) -> None:
        self._view = view
        self._ledger = ledger
        self._datahub = datahub
        self._mappings = mappings
        self._invoker = invoker
        self._metrics = metrics
        self._config = config
        self._gate = gate
        self._cancel_gate = cancel_gate
        self._on_unwritable = on_unwritable
        self._history = history  # the Runs tab records (history.py): never fails a run
        # Final statuses of many runs share one GMS call (status_writer.py); claims stay single.
        self._write_status = (status_writer or datahub).write_result
        self._status_writer = status_writer
        self._on_finished = on_finished  # lineage triggers' run_success (trigger_decider.py)
        self._plans = plans  # "run with upstream" parents (upstream_runner.py)
        self._stopping = threading.Event()
        # Long AWS calls (synchronous Invokes) get their own pool, so that they never hold up
        # the quick steps (claims, Step Functions polls, status writes) of other runs. Both
        # take waiting runs by priority and round-robin across datasets (step_queue.py).
        self.invoke_limit = AdaptiveLimit(config.max_inflight)
        # One thread of each pool is kept (and made by warm()): the first run after a start
        # or a quiet spell does not wait for threads to be made (issue 25).
        self._invokes = FairExecutor(
            config.max_inflight,
            name="invoke",
            aging_seconds=config.queue_aging_seconds,
            limit=self.invoke_limit.current,
            keep_threads=1,
        )
        self.invoke_limit.on_raise = self._invokes.wake
        self._steps = FairExecutor(
            config.step_threads,
            name="step",
            aging_seconds=config.queue_aging_seconds,
            keep_threads=1,
        )
        # Claims at GMS at once, waiting ones by priority (DriverConfig.max_claims).
        self._claims = PriorityGate(config.max_claims, config.queue_aging_seconds)
        # Counted when scraped: exact, and it costs nothing between scrapes.
        metrics.open_runs.set_function(view.open_count)
        for priority in Priority:
            metrics.runs_queued.labels(priority=priority.label).set_function(
                functools.partial(self._queued, priority)
            )
        self._lock = threading.Lock()
        self._busy: dict[str, Future[None]] = {}
        self._next_look: dict[str, float] = {}
        # (when, partition, run id) of the runs whose steps asked for a look at a given time.
        self._due_heap: list[tuple[float, int, str]] = []
        self._backoff: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._seen_at: dict[str, float] = {}  # when this process first took the run up
        self._minted: set[str] = set()  # claim nonces this process made
        # Outcomes this process knows but may not have recorded yet (Kafka away): they must
        # survive a rebuild of the view after the partition came back to us.
        self._known: dict[str, tuple[dict[str, Any], bool]] = {}
        self._stop_sent: set[str] = set()
        self._touched_busy: set[str] = set()  # runs that got a new fact during a step
        self._polls = PollPlan(
            config.sfn_poll_rate,
            max_interval=config.sfn_poll_max_seconds,
            events_wait=config.sfn_events_poll_seconds if config.sfn_status_events else None,
        )
        self._dataset_locks: dict[str, threading.Lock] = {}
        # The fence between a revoked ledger partition and its runs' invokes (see on_revoke).
        self._fence = threading.Condition()
        self._revoked: set[int] = set()
        self._passing: dict[int, int] = {}
        self._thread = threading.Thread(target=self._loop, name="run-driver", daemon=True)
        self.last_loop = time.monotonic()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def warm(self) -> None:
        """The threads a run passes through, made before the first run (issue 25): a step
        thread (checks, claim), an invoke thread, the history writer, the status writer."""
        self._steps.prestart()
        self._invokes.prestart()
        if self._history is not None:
            self._history.warm()
        if self._status_writer is not None:
            self._status_writer.warm()

    def stop(self, grace_seconds: float) -> int:
        """No new steps; wait up to the grace period for the running ones (their writes still
        go out: no client is closed yet). Returns how many were still running."""
        self._stopping.set()
        self._view.changed.set()
        self._thread.join(5)
        with self._lock:
            pending = list(self._busy.values())
        if pending:
            log.info("waiting up to %.0f s for %d run steps", grace_seconds, len(pending))
            wait(pending, timeout=grace_seconds)
        with self._lock:
            left = sum(1 for f in self._busy.values() if not f.done())
        self._invokes.shutdown(cancel_futures=True)
        self._steps.shutdown(cancel_futures=True)
        return left

    def on_assign(self, partition: int) -> None:
        with self._fence:
            self._revoked.discard(partition)

    def on_revoke(self, partition: int, timeout: float = 20.0) -> None:
        """Called on the poll thread before the partition goes to another consumer: no run of
        it may start an invoke after this, and every invoke already past the fence has its
        INVOKING record in the ledger, so the next owner never starts it again."""
        deadline = time.monotonic() + timeout
        with self._fence:
            self._revoked.add(partition)
            while self._passing.get(partition, 0) and time.monotonic() < deadline:
                self._fence.wait(0.05)

    def _queued(self, priority: Priority) -> int:
        """Runs of this class waiting for a step thread, a synchronous invoke slot or their
        turn to claim."""
        return (
            self._invokes.queued()[priority]
            + self._steps.queued()[priority]
            + self._claims.waiting(priority)
        )

    def busy(self) -> int:
        with self._lock:
            return sum(1 for f in self._busy.values() if not f.done())

    # --- dispatch -------------------------------------------------------------------------

    def _loop(self) -> None:
        """Wakes on news (a ledger record, a step's end) and starts the next step of every run
        that has news or whose next look is due. Every FULL_SCAN_SECONDS, and whenever the
        owned partitions change, it looks at every run instead (and counts those in flight for the
        metrics). Looking at every run on every wake cost milliseconds per thousand runs, many
        times a second in a burst (benchmarks/burst.py), with the ledger view's lock held."""
        last_scan = -FULL_SCAN_SECONDS
        generation = -1
        while not self._stopping.is_set():
            self.last_loop = time.monotonic()
            self._view.changed.wait(self._wait_seconds(last_scan))
            self._view.changed.clear()
            if self._stopping.is_set():
                return
            touched = self._view.take_touched()
            with self._lock:
                for run_id in touched:
                    self._next_look.pop(run_id, None)
                    if run_id in self._busy:
                        # A fact (a completion, a cancel) arrived while a step of the run is
                        # running: that step's "next look" must not swallow the wake-up.
                        self._touched_busy.add(run_id)
            now = time.monotonic()
            if now - last_scan >= FULL_SCAN_SECONDS or self._view.generation != generation:
                last_scan, generation = now, self._view.generation
                candidates = self._census(now)
            else:
                candidates = [*touched.items(), *self._due(now)]
            for run_id, partition in candidates:
                self._look(partition, run_id, now)

    def _wait_seconds(self, last_scan: float) -> float:
        """Until the next full scan or the next run's look, whichever is sooner."""
        now = time.monotonic()
        wait = last_scan + FULL_SCAN_SECONDS - now
        with self._lock:
            if self._due_heap:
                wait = min(wait, self._due_heap[0][0] - now)
        return max(0.0, wait)

    def _due(self, now: float) -> list[tuple[str, int]]:
        """The runs whose next look has come (their steps asked for one at that time)."""
        due: list[tuple[str, int]] = []
        with self._lock:
            while self._due_heap and self._due_heap[0][0] <= now:
                _at, partition, run_id = heapq.heappop(self._due_heap)
                due.append((run_id, partition))
        return due

    def _census(self, now: float) -> list[tuple[str, int]]:
        """Every open run (the runs in flight by kind are counted here)."""
        census = self._view.census()
        started = dict.fromkeys(ASYNC_KINDS.values(), 0)
        for run in census:
            if (
                not run.has_result
                and run.phase in (Phase.INVOKING, Phase.STARTED)
                and run.target_kind in ASYNC_KINDS
            ):
                started[ASYNC_KINDS[run.target_kind]] += 1
        with self._lock:
            if len(self._next_look) > 2 * len(census) + 100:  # forget finished runs
                alive = {run.run_id for run in census}
                for run_id in [r for r in self._next_look if r not in alive]:
                    self._next_look.pop(run_id, None)
        self._due(now)  # every run is looked at now: the due ones too
        for kind, count in started.items():
            self._metrics.runs_inflight.labels(kind=kind).set(count)
        return [(run.run_id, run.partition) for run in census]

    def _look(self, partition: int, run_id: str, now: float) -> None:
        """Start the run's next step, unless one is running or its next look is later."""
        with self._lock:
            if run_id in self._busy or self._next_look.get(run_id, 0.0) > now:
                return
        entry = self._view.get(partition, run_id)
        if entry is None or entry.closing or not self._view.owns(partition):
            return
        with self._lock:
            if run_id not in self._busy:
                self._submit(partition, entry)

    def _submit(self, partition: int, entry: RunEntry) -> None:
        """Start the run's next step (with self._lock held: a run has one step at a time)."""
        long_call = entry.phase == Phase.CLAIMED and (
            entry.target is not None and entry.target.kind == "lambda"
        )
        pool = self._invokes if long_call else self._steps
        request = entry.request or {}
        self._busy[entry.run_id] = pool.submit(
            self._step,
            partition,
            entry,
            priority=priority_of(request.get("source_type")),
            dataset=entry.dataset_urn or str(request.get("dataset_urn") or ""),
        )

    def _step(self, partition: int, entry: RunEntry) -> None:
        run_id = entry.run_id
        self._seen_at.setdefault(run_id, time.monotonic())
        delay: float | None = None
        returned = False
        try:
            try:
                # The run as it is now, not as it was when this step was queued: the dispatch
                # loop takes its snapshot of every run before it submits, and a step may wait
                # in the queue for seconds in a burst. Meanwhile an earlier step of the run may
                # have ended (a completion arriving during it asks for a look at once), and a
                # step from the older snapshot would claim and invoke a STARTED run again, or
                # "recover" it and drop the request id its invoke recorded (benchmarks/burst.py
                # found both: runs invoked twice, completions ignored, runs left RUNNING).
                current = self._view.get(partition, run_id)
                if current is None or current.closing:
                    delay = None
                else:
                    delay = self._advance(partition, current)
                self._backoff.pop(run_id, None)
                self._failures.pop(run_id, None)
            except (DataHubUnavailable, KafkaException, AwsTransient) as exc:
                # Transient: DataHub or the ledger is away, or AWS throttles. Nothing was
                # skipped; look again later (jittered: runs that waited together part).
                delay = jittered(self._backoff.get(run_id, 0.5))
                self._backoff[run_id] = min(delay * 2, 30.0)
                log.warning("run %s: %s; retrying in %.1f s", run_id, exc, delay)
            except Exception as exc:
                delay = self._unexpected(partition, entry, exc)
            returned = True
        finally:
            with self._lock:
                if returned:
                    self._next_look[run_id] = time.monotonic() + (
                        delay if delay is not None else 3600.0
                    )
                    if delay is not None:  # (None: only news brings the next look)
                        heapq.heappush(self._due_heap, (self._next_look[run_id], partition, run_id))
                if run_id in self._touched_busy:
                    self._touched_busy.discard(run_id)
                    self._next_look.pop(run_id, None)  # look again at once
                    heapq.heappush(self._due_heap, (0.0, partition, run_id))
                if not (returned and delay == 0.0 and self._chain(partition, run_id)):
                    self._busy.pop(run_id, None)
        self._view.changed.set()

    def _chain(self, partition: int, run_id: str) -> bool:
        """A step that wants the next one at once (REQUESTED -> CLAIMED -> INVOKING) hands the
        run straight to it, with self._lock held: no trip through the dispatch loop (a wake-up
        and a scan of every run per step), and the run is never seen idle in between, so the
        loop cannot start a step of it from an older snapshot. The entry is the one the step
        has just saved (LedgerView.update_local), read fresh from the view."""
        if self._stopping.is_set() or not self._view.owns(partition):
            return False
        entry = self._view.get(partition, run_id)
        if entry is None or entry.closing:
            return False
        self._submit(partition, entry)
        return True

    def _advance(self, partition: int, entry: RunEntry) -> float | None:
        """One step; returns seconds until the run needs another look (None: only when a new
        ledger record for it arrives)."""
        if entry.result is not None:
            return self._finish(partition, entry)
        self._vet_cancel(partition, entry)
        if self._plans is not None and self._plans.is_plan(entry):
            return self._plans.advance(partition, entry, self)
        if entry.phase == Phase.REQUESTED:
            return self._begin(partition, entry)
        if entry.phase == Phase.CLAIMED:
            return self._claim_and_invoke(partition, entry)
        if entry.phase == Phase.INVOKING:
            return self._recover(partition, entry)
        return self._track(partition, entry)

    # --- the trust boundary, again (issue 19) ---------------------------------------------

    def _vet_cancel(self, partition: int, entry: RunEntry) -> None:
        """A KILL counts only from the run's requester or someone who may start runs, like a
        start; anyone else's is ignored (and remembered as ignored) and the run goes on."""
        if not entry.cancel_by or entry.cancel_ok or self._cancel_gate is None:
            return
        request = entry.run_request() if entry.request is not None else None
        if self._cancel_gate(entry.cancel_by, request):
            entry.cancel_ok = True
            return
        self._metrics.cancels_ignored.inc()
        log.warning(
            "run %s: cancel by %s ignored: they neither requested the run nor may start runs",
            entry.run_id,
            printable(entry.cancel_by),
        )
        entry.cancels_ignored.append(entry.cancel_by)
        entry.cancel_by = None
        entry.seq += 1
        self._save(partition, entry, required=False)

    def _pre_invoke_check(self, entry: RunEntry, target: Target) -> RunRequest | str:
        """From the ledger entry, right before the invoke: the request as it may run, or the
        reason it may not. May raise DataHubUnavailable (nothing was invoked; retried)."""
        request = entry.run_request()
        if request is None:
            return "not started: the run has no request"
        if self._gate is not None:
            request, refusal = self._gate(request)
            if refusal is not None:
                self._metrics.pre_invoke_refusals.labels(reason="writer").inc()
                return refusal
        resolution = resolve_target(
            request, self._mappings.current(), self._datahub, self._config.job_arn_property_urn
        )
        if isinstance(resolution, NoTarget) or not _same_target(resolution, target):
            self._metrics.pre_invoke_refusals.labels(reason="target").inc()
            return (
                "not started: its target is not the one the mapping names for "
                f"dataset {request.dataset_urn} now"
            )
        return request

    # --- REQUESTED: checks, target, duplicates --------------------------------------------

    def _begin(self, partition: int, entry: RunEntry) -> float | None:
        start = now_ms()
        if entry.request is None and entry.invalid is None:
            return self._orphan_fact(partition, entry)
        if entry.invalid is not None:
            return self._unstarted(partition, entry, DataHubStatus.FAILURE, entry.invalid)
        request = entry.run_request()
        assert request is not None
        if entry.cancel_by:
            return self._unstarted(
                partition, entry, DataHubStatus.CANCELLED, f"cancelled by {entry.cancel_by}"
            )
        # A requestedAt in the future is the writer's claim: a little is clock skew, more is a
        # way around the expiry, and refused.
        age = (start - request.requested_at_ms) / 1000
        if age < -FUTURE_TOLERANCE_SECONDS:
            return self._unstarted(
                partition,
                entry,
                DataHubStatus.FAILURE,
                "request refused: requestedAt is in the future",
            )
        if age > self._config.max_request_age_seconds:
            return self._unstarted(
                partition,
                entry,
                DataHubStatus.FAILURE,
                f"request expired: requested {age:.0f} s ago, "
                f"limit {self._config.max_request_age_seconds:.0f} s",
            )
        if self._gate is not None:
            request, refusal = self._gate(request)
            if refusal is not None:
                return self._unstarted(partition, entry, DataHubStatus.FAILURE, refusal)
            entry.request = {**asdict(request), "writer": entry.writer}
        resolution = resolve_target(
            request, self._mappings.current(), self._datahub, self._config.job_arn_property_urn
        )
        if isinstance(resolution, NoTarget):
            return self._unstarted(partition, entry, DataHubStatus.FAILURE, resolution.message)
        try:  # again here: a writer may bypass the api (parameters.py)
            parameters = checked_parameters(
                resolution.parameters, request.extra_args.get(ARG_PARAMETERS)
            )
        except ParameterError as exc:
            return self._unstarted(
                partition, entry, DataHubStatus.FAILURE, f"invalid parameters: {exc}"
            )
        target = self._target(resolution)
        target.parameters = parameters
        dataset = entry.dataset_urn or request.dataset_urn
        with self._dataset_lock(dataset):
            active = (
                self._active_run(partition, dataset, target.key, entry.run_id)
                if self._config.one_active_run
                else None
            )
            if active is not None:
                self._metrics.duplicates.inc()
                return self._unstarted(
                    partition,
                    entry,
                    DataHubStatus.DUPLICATE,
                    f"run {active} of this dataset and target is still active",
                    duplicateOf=active,
                )
            entry.phase = Phase.CLAIMED
            entry.target = target
            entry.start_ms = start
            entry.deadline_ms = start + int(self._max_seconds(target) * 1000)
            entry.nonce = self._mint()
            self._save(partition, entry)
        return 0.0

    def _target(self, resolution: Resolution) -> Target:
        t = resolution.target
        if isinstance(t, LambdaTarget):
            target = Target(
                kind="lambda-event" if t.invocation_type == "Event" else "lambda",
                key=resolution.target_key,
                label=resolution.label,
                matched_by=resolution.matched_by,
                function=t.function,
                qualifier=t.qualifier,
                region=t.region,
                payload=dict(t.payload),
                max_seconds=t.max_duration_seconds,
            )
            if target.kind == "lambda-event":
                target.tracked = self._invoker.reports_to(target, self._config.completion_queue_arn)
            return target
        return Target(
            kind="stepfunctions",
            key=resolution.target_key,
            label=resolution.label,
            matched_by=resolution.matched_by,
            state_machine_arn=t.state_machine_arn,
            region=t.region,
            payload=dict(t.payload),
            max_seconds=t.max_duration_seconds,
        )

    def _max_seconds(self, target: Target) -> float:
        if target.kind == "lambda":
            timeout = self._invoker.function_timeout(target) or 900
            return timeout + self._config.sync_margin_seconds
        if target.max_seconds:
            return float(target.max_seconds)
        if target.kind == "lambda-event":
            return self._config.async_max_seconds if target.tracked else 120.0
        return self._config.sfn_max_seconds

    def _active_run(
        self, partition: int, dataset: str, target_key: str, other_than: str
    ) -> str | None:
        for run in self._view.runs_of(partition, dataset):
            if (
                run.run_id != other_than
                and run.result is None
                and run.phase in (Phase.CLAIMED, Phase.INVOKING, Phase.STARTED)
                and run.target is not None
                and run.target.key == target_key
            ):
                return run.run_id
        return None

    def _dataset_lock(self, dataset: str) -> threading.Lock:
        with self._lock:
            return self._dataset_locks.setdefault(dataset, threading.Lock())

    def _orphan_fact(self, partition: int, entry: RunEntry) -> float | None:
        """A cancel or a completion for a run with no request in the ledger: the run ended
        already (tombstoned), or its request has not been forwarded yet."""
        stored = self._datahub.read_result(entry.run_id)
        if is_status_event_fact(entry.completion):
            # A Step Functions event for a run that ended (a duplicate, or one read late: it
            # never reopens a run) or never was ours (forged).
            if stored is None or not is_final(stored.status):
                self._ignore_completion(partition, entry, "no open run of this consumer has it")
            self._close(partition, entry)
            return None
        if entry.completion is not None:
            # A destination record after the deadline: the truth beats our TIMEOUT guess, but
            # only the record of the invoke the TIMEOUT report names (its request id).
            recorded = report_details(stored).get("requestId") if stored is not None else None
            if stored is not None and stored.status in (
                DataHubStatus.RUNNING,
                DataHubStatus.TIMEOUT,
            ):
                unbound = unbound_reason(entry.completion, recorded, None)
                if unbound is not None:
                    self._ignore_completion(partition, entry, unbound)
                    self._close(partition, entry)
                    return None
                start = stored.startTimeMs or now_ms()
                entry.result = result_to_dict(
                    status.from_destination(start, None, entry.completion)
                )
                entry.result_guard = False
                entry.seq += 1
                self._save(partition, entry)
                return self._finish(partition, entry)
            self._close(partition, entry)
            return None
        if stored is None and entry.cancel_by:
            # Cancelled before its request arrived: claim it as CANCELLED so it never starts.
            return self._unstarted(
                partition, entry, DataHubStatus.CANCELLED, f"cancelled by {entry.cancel_by}"
            )
        self._close(partition, entry)
        return None

    def _unstarted(
        self,
        partition: int,
        entry: RunEntry,
        final: DataHubStatus,
        message: str,
        **details: Any,
    ) -> float | None:
        """End a run that was never started, unless someone else claimed it first."""
        log.warning("run %s not started (%s): %s", entry.run_id, final.value, message)
        result = status.not_started(now_ms(), message, final, **details)
        request = entry.request or {}
        self._claims.acquire(priority_of(request.get("source_type")))
        try:
            outcome = self._datahub.claim(entry.run_id, result)
        finally:
            self._claims.release()
        if outcome.ours:
            self._metrics.status_writes.labels(status=final.value).inc()
            self._metrics.runs_finished.labels(status=final.value).inc()
        elif outcome.stored is not None and not is_final(outcome.stored.status):
            # Claimed by an earlier owner of this run: find out what it did.
            entry.phase = Phase.INVOKING
            entry.seq += 1
            self._save(partition, entry)
            return 0.0
        self._close(partition, entry)
        return None

    # --- CLAIMED: claim in DataHub, then invoke -------------------------------------------

    def _claim_and_invoke(self, partition: int, entry: RunEntry) -> float | None:
        target = entry.target
        assert target is not None and entry.start_ms is not None and entry.deadline_ms
        if entry.nonce not in self._minted:
            # Claimed in the ledger by an earlier owner of the partition.
            stored = self._datahub.read_result(entry.run_id)
            if stored is not None and is_final(stored.status):
                self._close(partition, entry)
                return None
            if stored is not None:
                if report_details(stored).get(CLAIM_KEY) == entry.nonce:
                    # It claimed the run but never recorded INVOKING, so it never called AWS.
                    return self._set_result(
                        partition,
                        entry,
                        status.not_started(
                            entry.start_ms,
                            "the consumer that claimed it stopped before starting it; "
                            "request the run again",
                        ),
                        guard=True,
                    )
                entry.phase = Phase.INVOKING
                entry.seq += 1
                self._save(partition, entry)
                return 0.0
            entry.nonce = self._mint()
            entry.seq += 1
            self._save(partition, entry)
        if self._view.cancel_expected(entry.run_id, CANCEL_WAIT_SECONDS):
            # A KILL of this run has been read from the MCL and is on its way into the ledger
            # (runner.py): it is judged before the run may start. DataHub's UI can write one
            # right after the request, and the run would otherwise win the race.
            return 0.02
        request = self._pre_invoke_check(entry, target)
        if isinstance(request, str):
            return self._unstarted(partition, entry, DataHubStatus.FAILURE, request)
        claim = status.running(entry.start_ms, target, entry.nonce, entry.deadline_ms)
        # The claims gate first (clicks go first), then the fence: a run waiting for its turn
        # must not hold up a revoke.
        self._claims.acquire(priority_of(request.source_type))
        # The fence covers the claim and the INVOKING record together: once on_revoke has
        # returned, this process neither claims nor invokes a run of that partition, and every
        # run it claimed has INVOKING in the ledger. So the next owner never finds a run that
        # was claimed here but never started (it would have to end it "outcome unknown").
        if not self._pass_fence(partition):
            self._claims.release()
            log.info(
                "run %s: partition %d was revoked; not starting it here", entry.run_id, partition
            )
            return None
        try:
            try:
                outcome = self._datahub.claim(entry.run_id, claim)
            finally:
                self._claims.release()
            if not outcome.ours:
                stored = outcome.stored
                if stored is None or is_final(stored.status):
                    # Another writer ended it first (e.g. a DataHub executor that writes
                    # FAILURE when it cannot dispatch our executorId): its result stands.
                    log.warning(
                        "run %s: not started: DataHub already holds a final result written by "
                        "another writer (%s: %s)",
                        entry.run_id,
                        stored.status if stored else "unknown",
                        ((stored.report or "").splitlines() or [""])[0][:200] if stored else "",
                    )
                    self._close(partition, entry)
                    return None
                log.info(
                    "run %s: claimed by an earlier owner; finding out what it did", entry.run_id
                )
                entry.phase = Phase.INVOKING
                entry.seq += 1
                self._save(partition, entry)
                return 0.0
            self._metrics.status_writes.labels(status=DataHubStatus.RUNNING.value).inc()
            if entry.cancel_by:
                return self._set_result(
                    partition,
                    entry,
                    status.not_started(
                        entry.start_ms, f"cancelled by {entry.cancel_by}", DataHubStatus.CANCELLED
                    ),
                )
            entry.phase = Phase.INVOKING
            if target.kind == "lambda":
                # The deadline counts from the call: a throttled run may have waited.
                entry.deadline_ms = now_ms() + int(self._max_seconds(target) * 1000)
            entry.seq += 1
            self._save(partition, entry)
        finally:
            self._leave_fence(partition)
        if self._history is not None:
            # The claim's STARTED record, handed over once INVOKING is in the ledger: nothing
            # may widen the window between the claim and that record (a stop inside it ends
            # the run "stopped before starting it").
            self._history.started(entry)
        return self._invoke(partition, entry, target, request)

    def _invoke(
        self, partition: int, entry: RunEntry, target: Target, request: RunRequest
    ) -> float | None:
        assert entry.start_ms is not None
        if request.requested_at_ms:
            self._metrics.request_to_invoke.observe(
                max(0.0, (now_ms() - request.requested_at_ms) / 1000)
            )
        log.info("run %s: invoking %s (%s)", entry.run_id, target.key, target.matched_by)
        self._metrics.inflight.inc()
        sync = target.kind == "lambda"
        if sync:
            self._metrics.runs_inflight.labels(kind="sync").inc()
        try:
            invocation = self._invoker.invoke(
                target,
                lambda_payload(request, target.payload, target.parameters),
                entry.run_id,
                # Only the synchronous invokes' concurrency adapts: they hold a thread each.
                on_throttle=self.invoke_limit.throttled if sync else None,
            )
        finally:
            self._metrics.inflight.dec()
            if sync:
                self._metrics.runs_inflight.labels(kind="sync").dec()
        if sync and invocation.outcome != "throttled":
            self.invoke_limit.succeeded()
        self._metrics.invocations.labels(target=target.label, outcome=invocation.outcome).inc()
        self._metrics.invocation_duration.labels(target=target.label).observe(
            invocation.duration_seconds
        )
        log.info(
            "run %s: %s in %.3f s", entry.run_id, invocation.outcome, invocation.duration_seconds
        )
        if invocation.outcome == "throttled":
            waited = (now_ms() - entry.start_ms) / 1000
            if waited < self._config.throttle_retry_seconds:
                # AWS did not run it: back to CLAIMED, and try again a little later.
                entry.phase = Phase.CLAIMED
                entry.seq += 1
                self._save(partition, entry)
                return jittered(min(60.0, 2.0 + waited / 4))
        if invocation.outcome == "started":
            if target.kind == "lambda-event" and not target.tracked:
                return self._set_result(
                    partition, entry, status.accepted_untracked(entry.start_ms, target, invocation)
                )
            entry.phase = Phase.STARTED
            entry.request_id = invocation.request_id
            entry.execution_arn = invocation.execution_arn
            entry.execution_start_ms = invocation.details.get("startDateMs")
            entry.seq += 1
            self._save(partition, entry, required=False)
            return 1.0 if target.kind == "stepfunctions" else self._until_deadline(entry)
        return self._set_result(
            partition, entry, status.after_invocation(entry.start_ms, target, invocation)
        )

    # --- INVOKING found by a new owner ----------------------------------------------------

    def _recover(self, partition: int, entry: RunEntry) -> float | None:
        known = self._known.get(entry.run_id)
        if known is not None:  # this process invoked it and knows how it went
            entry.result, entry.result_guard = known
            return self._finish(partition, entry)
        stored = self._datahub.read_result(entry.run_id)
        if stored is not None and is_final(stored.status):
            self._close(partition, entry)
            return None
        details = report_details(stored)
        start = entry.start_ms or (stored.startTimeMs if stored else None) or now_ms()
        entry.start_ms = start
        if entry.deadline_ms is None:
            entry.deadline_ms = int(details.get("deadlineMs") or start + 3600_000)
        target = entry.target
        request = entry.run_request()
        if target is not None and target.kind == "stepfunctions" and request is not None:
            arn = entry.execution_arn or execution_arn(target, entry.run_id)
            execution = self._invoker.describe_execution(target, arn)
            if execution.exists:
                entry.phase = Phase.STARTED
                entry.execution_arn = arn
                entry.seq += 1
                self._save(partition, entry)
                return 0.0
            # Never started: StartExecution is idempotent by name, so this cannot run it twice.
            checked = self._pre_invoke_check(entry, target)
            if isinstance(checked, str):
                return self._set_result(
                    partition, entry, status.not_started(start, checked), guard=True
                )
            request = checked
            return self._invoke(partition, entry, target, request)
        if target is not None and target.kind == "lambda-event" and target.tracked:
            entry.phase = Phase.STARTED
            entry.seq += 1
            self._save(partition, entry)
            return 0.0
        if now_ms() < entry.deadline_ms:
            # The owner that called the function may still be waiting for it: its final write
            # (seen here, or as its ledger records) or the deadline ends the run.
            return min(5.0, self._until_deadline(entry))
        self._metrics.takeovers.labels(reason="lost_owner").inc()
        return self._set_result(
            partition,
            entry,
            status.timed_out(
                start,
                target,
                "outcome unknown: the consumer that started it stopped before the job answered",
                request_id=entry.request_id,
            ),
            guard=True,
        )

    # --- STARTED: follow the asynchronous job ---------------------------------------------

    def _track(self, partition: int, entry: RunEntry) -> float | None:
        target = entry.target
        assert target is not None and entry.start_ms is not None and entry.deadline_ms
        past_deadline = now_ms() >= entry.deadline_ms
        if target.kind == "stepfunctions":
            arn = entry.execution_arn or execution_arn(target, entry.run_id)
            execution, confirm = None, False
            if entry.completion is not None:
                if self._refuse_event(partition, entry, target, arn):
                    # Polled from now on, at the back-off's pace (a forger sending event
                    # after event gets no DescribeExecution per event).
                    elapsed = max(0.0, (now_ms() - entry.start_ms) / 1000)
                    return self._polls.next_delay(entry.run_id, target.key, elapsed)
                execution, confirm = self._event_outcome(entry)
            if execution is None and not (confirm or entry.cancel_by or past_deadline):
                # Status events expected: DescribeExecution only when the safety net is due.
                due = self._polls.until_due(entry.run_id, self._until_deadline(entry))
                if due > 0:
                    return due
            # `execution` set: a bound status event said how it ended, without asking AWS.
            if execution is None and (entry.cancel_by or past_deadline):
                why = (
                    f"cancelled by {entry.cancel_by}"
                    if entry.cancel_by
                    else "deadline passed (maxDurationSeconds)"
                )
                with contextlib.suppress(Exception):  # already finished: describe tells
                    self._invoker.stop_execution(
                        target, arn, error="Cancelled" if entry.cancel_by else "Timeout", cause=why
                    )
            if execution is None:
                execution = self._invoker.describe_execution(target, arn)
                if confirm and execution.status not in FINAL_STATUSES:
                    self._ignore_completion(partition, entry, "AWS says the execution runs on")
                    self._polls.distrust(entry.run_id)
            final = status.sfn_final(entry.start_ms, target, entry.run_id, execution)
            if final is not None and execution.status == "ABORTED" and not entry.cancel_by:
                if past_deadline:
                    self._metrics.takeovers.labels(reason="deadline").inc()
                    final = status.timed_out(
                        entry.start_ms,
                        target,
                        "stopped: it ran past its deadline (maxDurationSeconds)",
                        execution_name=entry.run_id,
                    )
            elif final is not None and execution.status == "ABORTED":
                final = status.cancelled(entry.start_ms, target, entry.cancel_by)
            if final is None and not execution.exists:
                final = status.timed_out(
                    entry.start_ms, target, "the execution no longer exists in AWS"
                )
            elapsed = max(0.0, (now_ms() - entry.start_ms) / 1000)
            if final is not None:
                self._polls.finished(entry.run_id, target.key, elapsed)
                return self._set_result(partition, entry, final)
            return self._polls.next_delay(entry.run_id, target.key, elapsed)
        # An Event Lambda whose destination reports to our queue.
        if entry.completion is not None:
            unbound = unbound_reason(entry.completion, entry.request_id, target)
            if unbound is None:
                return self._set_result(
                    partition,
                    entry,
                    status.from_destination(entry.start_ms, target, entry.completion),
                )
            self._ignore_completion(partition, entry, unbound)
        if entry.cancel_by and entry.run_id not in self._stop_sent:
            self._stop_sent.add(entry.run_id)
            log.warning("run %s: a Lambda function cannot be stopped; cancel ignored", entry.run_id)
        if past_deadline:
            self._metrics.takeovers.labels(reason="deadline").inc()
            return self._set_result(
                partition,
                entry,
                status.timed_out(
                    entry.start_ms,
                    target,
                    "no completion record from Lambda before the deadline",
                    request_id=entry.request_id,
                ),
                guard=True,
            )
        return self._until_deadline(entry)

    def _refuse_event(self, partition: int, entry: RunEntry, target: Target, arn: str) -> bool:
        """Refuse the run's completion fact unless it is its own execution's status event."""
        assert entry.completion is not None
        why = event_unbound_reason(entry.completion, arn, target.state_machine_arn)
        if why is None and not (
            self._polls.distrusted(entry.run_id)
            and not start_matches(entry.completion, entry.execution_start_ms)
        ):
            return False
        why = why or "AWS contradicted an earlier event of this run; this one is not confirmed"
        self._ignore_completion(partition, entry, why)
        # The genuine event may have been dropped behind the forged one: poll as without.
        self._polls.distrust(entry.run_id)
        return True

    def _event_outcome(self, entry: RunEntry) -> tuple[ExecutionStatus | None, bool]:
        """(How the execution ended, per the run's bound status event; or None), and whether
        AWS must confirm it first: its start date is not the one StartExecution answered, or
        this owner does not know that one (a takeover)."""
        fact = entry.completion
        assert fact is not None
        if not start_matches(fact, entry.execution_start_ms):
            return None, True
        return (
            ExecutionStatus(
                str(fact.get("status")),
                output=fact.get("output"),
                error=fact.get("error"),
                cause=fact.get("cause"),
            ),
            False,
        )

    def _ignore_completion(self, partition: int, entry: RunEntry, why: str) -> None:
        assert entry.completion is not None
        self._metrics.completion_records.labels(result="unbound").inc()
        log.warning(
            "run %s: destination record ignored: %s (request id %s)",
            entry.run_id,
            why,
            printable(str(entry.completion.get("requestId"))),
        )
        entry.completions_ignored.append(str(entry.completion.get("requestId") or ""))
        entry.completion = None
        entry.seq += 1
        self._save(partition, entry, required=False)

    # --- the end --------------------------------------------------------------------------

    def _set_result(
        self, partition: int, entry: RunEntry, result: RunResult, *, guard: bool = False
    ) -> float | None:
        entry.result = result_to_dict(status.with_parameters(result, entry.target))
        entry.result_guard = guard
        entry.seq += 1
        self._known[entry.run_id] = (entry.result, guard)
        # Not required: DataHub can take the status even while Kafka is away.
        self._save(partition, entry, required=False)
        return self._finish(partition, entry)

    def _finish(self, partition: int, entry: RunEntry) -> float | None:
        assert entry.result is not None
        # A KILL that reached the run as it ended (merged into the entry by the last save, or
        # read since) is judged too: it changes nothing now, but an unauthorised one is
        # counted and logged like any other.
        self._vet_cancel(partition, entry)
        result = result_from_dict(entry.result)
        if entry.result_guard:
            stored = self._datahub.read_result(entry.run_id)
            if stored is not None and is_final(stored.status):
                log.info(
                    "run %s: already ended %s; not writing %s",
                    entry.run_id,
                    stored.status,
                    result.status,
                )
                self._close(partition, entry)
                return None
        try:
            written = self._write_status(entry.run_id, result)
        except WriteRejected as exc:
            self._metrics.status_write_failures.inc()
            log.error(
                "run %s: DataHub refused the final status %s: %s", entry.run_id, result.status, exc
            )
            written = self._write_minimal(entry, result)
        except DataHubUnavailable:
            self._metrics.status_write_failures.inc()
            raise
        if written:
            self._metrics.status_writes.labels(status=result.status.value).inc()
            self._metrics.runs_finished.labels(status=result.status.value).inc()
            # A plan's parent ran nothing itself: its children have their own Runs-tab
            # records and run_success events.
            parent = self._plans is not None and self._plans.is_plan(entry)
            if self._history is not None and not parent:
                self._history.finished(entry, result)
            if self._on_finished is not None and not parent:
                self._on_finished(entry, result)
        self._close(partition, entry)
        return None

    def _write_minimal(self, entry: RunEntry, result: RunResult) -> bool:
        """DataHub refused the report (size, validation): the status matters more than it."""
        minimal = RunResult(
            result.status, result.start_time_ms, result.report[:500], result.duration_ms, {}
        )
        try:
            return self._datahub.write_result(entry.run_id, minimal)
        except WriteRejected as exc:
            if self._on_unwritable is not None:
                self._on_unwritable(entry, str(exc))
            return False

    def _unexpected(self, partition: int, entry: RunEntry, exc: Exception) -> float | None:
        """A bug must not strand a run: end it FAILURE with a plain message. If even that
        fails again and again, give it to the dead-letter topic and let it go."""
        count = self._failures.get(entry.run_id, 0) + 1
        self._failures[entry.run_id] = count
        log.exception(
            "run %s: unexpected error in phase %s", entry.run_id, entry.phase, exc_info=exc
        )
        self._metrics.unexpected_errors.inc()
        message = (
            f"internal error in the consumer ({type(exc).__name__}); "
            f"the consumer log has the details for run {entry.run_id}"
        )
        try:
            if count >= 3:
                if self._on_unwritable is not None:
                    self._on_unwritable(entry, message)
                self._close(partition, entry)
                return None
            if entry.phase == Phase.REQUESTED and entry.result is None:
                return self._unstarted(partition, entry, DataHubStatus.FAILURE, message)
            start = entry.start_ms or now_ms()
            return self._set_result(
                partition,
                entry,
                RunResult(
                    DataHubStatus.FAILURE,
                    start,
                    message,
                    max(0, now_ms() - start),
                    {"error": message},
                ),
                guard=entry.phase != Phase.INVOKING,
            )
        except Exception:
            log.exception("run %s: could not record the failure; retrying", entry.run_id)
            return 5.0

    # --- what a "run with upstream" parent borrows (upstream_runner.PlanSteps) ------------

    def save_step(self, partition: int, entry: RunEntry, *, required: bool = True) -> None:
        self._save(partition, entry, required=required)

    def end_run(self, partition: int, entry: RunEntry, result: RunResult) -> float | None:
        return self._set_result(partition, entry, result)

    def end_unstarted(
        self, partition: int, entry: RunEntry, final: DataHubStatus, message: str
    ) -> float | None:
        return self._unstarted(partition, entry, final, message)

    def drop(self, partition: int, entry: RunEntry) -> None:
        self._close(partition, entry)

    # --- helpers --------------------------------------------------------------------------

    def _mint(self) -> str:
        nonce = secrets.token_hex(8)
        self._minted.add(nonce)
        return nonce

    def _save(self, partition: int, entry: RunEntry, *, required: bool = True) -> None:
        """Record a step in the ledger. A step that announces a side effect (CLAIMED before the
        claim, INVOKING before AWS) is `required`: if Kafka does not take it, the side effect
        does not happen. One that records a known outcome is not: the outcome is kept here and
        the run goes on, and the next record (or the tombstone) carries it."""
        try:
            self._ledger.state(entry)
        except KafkaException as exc:
            if required:
                raise
            log.warning("run %s: ledger not updated yet (%s); going on", entry.run_id, exc)
        self._view.update_local(partition, entry)

    def _close(self, partition: int, entry: RunEntry) -> None:
        self._ledger.tombstone(entry)
        self._view.close_local(partition, entry.run_id)
        self._known.pop(entry.run_id, None)
        self._next_look.pop(entry.run_id, None)
        seen = self._seen_at.pop(entry.run_id, None)
        if seen is not None and (entry.request is not None or entry.invalid is not None):
            # One observation per run request this process ended: from taking it up to the
            # final status in DataHub.
            self._metrics.processed_duration.observe(time.monotonic() - seen)
        self._backoff.pop(f"poll:{entry.run_id}", None)
        self._stop_sent.discard(entry.run_id)
        if entry.nonce:
            self._minted.discard(entry.nonce)

    def _until_deadline(self, entry: RunEntry) -> float:
        assert entry.deadline_ms is not None
        return max(0.0, (entry.deadline_ms - now_ms()) / 1000) + 0.05

    def _pass_fence(self, partition: int) -> bool:
        with self._fence:
            if partition in self._revoked or not self._view.owns(partition):
                return False
            self._passing[partition] = self._passing.get(partition, 0) + 1
            return True

    def _leave_fence(self, partition: int) -> None:
        with self._fence:
            self._passing[partition] -= 1
            self._fence.notify_all()


def _same_target(resolution: Resolution, target: Target) -> bool:
    """Is the ledger's target the one this resolution names (what would be invoked, and with
    which fixed payload)? Labels, tracking and deadlines are not part of it."""
    t = resolution.target
    if resolution.target_key != target.key or dict(t.payload) != target.payload:
        return False
    if t.region != target.region:
        return False
    if isinstance(t, LambdaTarget):
        kind = "lambda-event" if t.invocation_type == "Event" else "lambda"
        return (
            kind == target.kind
            and t.function == target.function
            and t.qualifier == target.qualifier
            and target.state_machine_arn is None
        )
    return target.kind == "stepfunctions" and t.state_machine_arn == target.state_machine_arn
