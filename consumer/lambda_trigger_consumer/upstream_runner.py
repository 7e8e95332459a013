# Runs a "run with upstream" parent's waves (docs/triggers.md#run-with-upstream).
"""The consumer's side of a "run with upstream": one parent run, children in waves.

The parent is an execution request with our executorId and source type UPSTREAM_PLAN (the api
writes it; anyone who may write to DataHub could). It enters the run ledger like any run, on
the ledger partition of its requested dataset, and the driver hands its steps here instead of
invoking anything:

    REQUESTED --checks, plan rebuilt--> CLAIMED --RUNNING claim--> STARTED --waves--> result

- Checks (the parent is hostile input): the same writer check as any request (the gate), the
  same age limits, the plan's shape and bounds (upstream_plan.decode_plan), and the plan must
  equal the one this consumer builds now from DataHub's lineage and the current mapping.
  Anything else ends the parent FAILURE before any child exists.
- Waves: each child is an ordinary execution request written by this consumer's principal
  (source type UPSTREAM_PLAN_STEP, `args.parentRunId`, `args.planWave`, a `reason`), with the
  parent's (checked) requester as actorUrn; it runs like any run (writer check, target, one
  active run). Its id is derived from the parent id and the dataset, and the time its wave
  started is in the ledger before any child of the wave is written, so an owner that takes the
  parent over rewrites the very same requests (GMS stores them once) and never starts a child
  twice.
- A wave ends when each child has a final status: all SUCCESS starts the next wave; any other
  final status ends the parent FAILURE and the later waves are never written (SKIPPED in the
  report). A cancel of the parent sends DataHub's KILL signal to the current wave's unfinished
  children (a Step Functions child stops; a Lambda cannot be stopped) and ends the parent
  CANCELLED; no later wave starts.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict
from typing import Any, Protocol

from lambda_trigger.contract import (
    CLAIM_KEY,
    MAX_REASON_LENGTH,
    DataHubStatus,
    RunRequest,
    RunResult,
    is_final,
    now_ms,
)
from lambda_trigger.datahub import DataHubClient, PreconditionFailed, WriteRejected
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.upstream_plan import (
    ARG_PARENT,
    ARG_PLAN,
    ARG_WAVE,
    CHILD_SOURCE_TYPE,
    PLAN_SOURCE_TYPE,
    Plan,
    PlanError,
    build_plan,
    child_run_id,
    decode_plan,
)
from lambda_trigger_consumer.ledger import Phase, RunEntry
from lambda_trigger_consumer.target import NoTarget, resolve_target

log = logging.getLogger(__name__)
KIND = "upstream-plan"  # the parent's structured report `kind` (the api's cancel reads it)
SKIPPED = "SKIPPED"  # a child never written: an earlier wave failed
POLL_SECONDS = 1.0  # how often a parent reads its current wave's statuses
FUTURE_TOLERANCE_MS = 300_000  # the driver's tolerance for a writer's clock skew


class PlanSteps(Protocol):
    """What the driver lends a parent run (driver.py)."""

    def save_step(self, partition: int, entry: RunEntry, *, required: bool = True) -> None: ...

    def end_run(self, partition: int, entry: RunEntry, result: RunResult) -> float | None: ...

    def end_unstarted(
        self, partition: int, entry: RunEntry, final: DataHubStatus, message: str
    ) -> float | None: ...

    def drop(self, partition: int, entry: RunEntry) -> None: ...


class PlanRunner:
    def __init__(
        self,
        datahub: DataHubClient,
        mappings: MappingSource,
        executor_id: str,
        *,
        gate: Any = None,  # driver.Gate: (RunRequest) -> (RunRequest, refusal or None)
        service_actor: Any = None,  # () -> the consumer's own actor (KILL signals' writer)
        max_request_age_seconds: float = 3600.0,
        job_arn_property_urn: str | None = None,
    ) -> None:
        self._datahub = datahub
        self._mappings = mappings
        self._executor_id = executor_id
        self._gate = gate
        self._service_actor = service_actor
        self._max_age_ms = int(max_request_age_seconds * 1000)
        self._job_property = job_arn_property_urn

    @staticmethod
    def is_plan(entry: RunEntry) -> bool:
        return (entry.request or {}).get("source_type") == PLAN_SOURCE_TYPE

    def advance(self, partition: int, entry: RunEntry, steps: PlanSteps) -> float | None:
        if entry.phase == Phase.REQUESTED:
            return self._begin(partition, entry, steps)
        if entry.plan is None:
            # Claimed by someone else before this consumer recorded a plan (the driver's
            # "not ours" path): nothing of it is ours to run.
            log.warning("plan %s: no recorded plan in phase %s; dropped", entry.run_id, entry.phase)
            steps.drop(partition, entry)
            return None
        if entry.phase in (Phase.CLAIMED, Phase.INVOKING):
            return self._claim(partition, entry, steps)
        return self._waves(partition, entry, steps)

    # --- REQUESTED: the parent is hostile input -------------------------------------------

    def _begin(self, partition: int, entry: RunEntry, steps: PlanSteps) -> float | None:
        request = entry.run_request()
        assert request is not None
        if entry.cancel_by:
            return steps.end_unstarted(
                partition, entry, DataHubStatus.CANCELLED, f"cancelled by {entry.cancel_by}"
            )
        age_ms = now_ms() - request.requested_at_ms
        if age_ms < -FUTURE_TOLERANCE_MS:
            return steps.end_unstarted(
                partition,
                entry,
                DataHubStatus.FAILURE,
                "request refused: requestedAt is in the future",
            )
        if age_ms > self._max_age_ms:
            return steps.end_unstarted(
                partition, entry, DataHubStatus.FAILURE, "request expired before it started"
            )
        if self._gate is not None:
            request, refusal = self._gate(request)
            if refusal is not None:
                return steps.end_unstarted(partition, entry, DataHubStatus.FAILURE, refusal)
            entry.request = {**asdict(request), "writer": entry.writer}
        try:
            claimed = decode_plan(request.dataset_urn, request.extra_args.get(ARG_PLAN))
            if not self._mapped(request.dataset_urn):
                raise PlanError(f"no ingestion job is mapped to dataset {request.dataset_urn}")
            current = self.build(request.dataset_urn, claimed.max_depth)
        except PlanError as exc:
            return steps.end_unstarted(
                partition, entry, DataHubStatus.FAILURE, f"invalid plan: {exc}"
            )
        if current.waves != claimed.waves:
            return steps.end_unstarted(
                partition,
                entry,
                DataHubStatus.FAILURE,
                "the plan no longer matches DataHub's lineage and the mapping: plan again",
            )
        entry.phase = Phase.CLAIMED
        entry.start_ms = now_ms()
        entry.nonce = secrets.token_hex(8)
        entry.plan = {"waves": current.waves, "wave": 0, "startedAt": {}, "written": -1}
        entry.seq += 1
        steps.save_step(partition, entry)  # recorded before the claim, as for any run
        return 0.0

    def build(self, dataset_urn: str, max_depth: int) -> Plan:
        """The plan as this consumer sees it now. May raise DataHubUnavailable (retried)."""
        return build_plan(
            dataset_urn,
            max_depth,
            self._datahub.upstreams,
            self._mapped,
            # The writer check is global (authorize.py): a writer who may start the parent
            # may start every child, so nothing is `not_allowed` here.
            lambda _urn: True,
        )

    def _mapped(self, dataset_urn: str) -> bool:
        probe = RunRequest("plan", dataset_urn, self._executor_id, CHILD_SOURCE_TYPE, 0)
        resolution = resolve_target(
            probe, self._mappings.current(), self._datahub, self._job_property
        )
        return not isinstance(resolution, NoTarget)

    # --- CLAIMED: RUNNING in DataHub ------------------------------------------------------

    def _claim(self, partition: int, entry: RunEntry, steps: PlanSteps) -> float | None:
        assert entry.plan is not None and entry.start_ms is not None
        outcome = self._datahub.claim(entry.run_id, self._running(entry))
        if not outcome.ours:
            stored = outcome.stored
            log.warning(
                "plan %s: its status is not ours (%s); not running it",
                entry.run_id,
                stored.status if stored else None,
            )
            steps.drop(partition, entry)
            return None
        entry.phase = Phase.STARTED
        entry.seq += 1
        steps.save_step(partition, entry)
        log.info(
            "plan %s of %s: %d waves", entry.run_id, entry.dataset_urn, len(entry.plan["waves"])
        )
        return 0.0

    def _running(self, entry: RunEntry) -> RunResult:
        assert entry.plan is not None and entry.start_ms is not None
        waves = entry.plan["waves"]
        wave = int(entry.plan["wave"])
        return RunResult(
            DataHubStatus.RUNNING,
            entry.start_ms,
            f"Running with upstream: wave {wave + 1} of {len(waves)}",
            details={
                "kind": KIND,
                CLAIM_KEY: entry.nonce,
                "cancellable": True,
                "wave": wave,
                "waves": len(waves),
                "children": self._children(entry, {}),
            },
        )

    # --- STARTED: the waves ---------------------------------------------------------------

    def _waves(self, partition: int, entry: RunEntry, steps: PlanSteps) -> float | None:
        plan = entry.plan
        assert plan is not None and entry.start_ms is not None
        waves: list[list[str]] = plan["waves"]
        wave = int(plan["wave"])
        started: dict[str, int] = plan["startedAt"]
        if entry.cancel_by:
            return self._cancel(partition, entry, steps)
        if str(wave) not in started:
            started[str(wave)] = now_ms()
            entry.seq += 1
            steps.save_step(partition, entry)  # before any child of the wave is written
        if int(plan.get("written", -1)) < wave:
            refused = self._write_children(entry, wave, started[str(wave)])
            if refused is not None:
                return steps.end_run(
                    partition, entry, self._final(entry, DataHubStatus.FAILURE, refused)
                )
            plan["written"] = wave
            entry.seq += 1
            steps.save_step(partition, entry, required=False)  # a rewrite is harmless
        statuses = self._statuses(entry, wave)
        failed = [
            (d, s) for d, s in statuses.items() if s is not None and is_final(s) and s != "SUCCESS"
        ]
        if failed:
            dataset, status = failed[0]
            return steps.end_run(
                partition,
                entry,
                self._final(
                    entry,
                    DataHubStatus.FAILURE,
                    f"{dataset} ended {status} in wave {wave + 1}; its dependents were skipped",
                ),
            )
        if any(s != "SUCCESS" for s in statuses.values()):
            return POLL_SECONDS
        if wave + 1 >= len(waves):
            return steps.end_run(
                partition,
                entry,
                self._final(entry, DataHubStatus.SUCCESS, f"all {len(waves)} waves succeeded"),
            )
        plan["wave"] = wave + 1
        entry.seq += 1
        steps.save_step(partition, entry)
        log.info("plan %s: wave %d of %d", entry.run_id, wave + 2, len(waves))
        try:
            self._datahub.write_result(entry.run_id, self._running(entry))
        except WriteRejected as exc:  # only the wave number in the UI
            log.warning("plan %s: RUNNING update refused: %s", entry.run_id, exc)
        return 0.0

    def _write_children(self, entry: RunEntry, wave: int, requested_at: int) -> str | None:
        """Write the wave's child requests (idempotent); the refusal message, if one fails."""
        plan = entry.plan
        assert plan is not None
        parent = entry.run_request()
        assert parent is not None
        waves = plan["waves"]
        for dataset in waves[wave]:
            reason = (
                f"upstream of {parent.dataset_urn}: wave {wave + 1} of {len(waves)} "
                f"of run {entry.run_id}"
            )[:MAX_REASON_LENGTH]
            child = RunRequest(
                run_id=child_run_id(entry.run_id, dataset),
                dataset_urn=dataset,
                executor_id=self._executor_id,
                source_type=CHILD_SOURCE_TYPE,
                requested_at_ms=requested_at,
                reason=reason,
                actor_urn=parent.actor_urn,
                extra_args={ARG_PARENT: entry.run_id, ARG_WAVE: str(wave)},
            )
            try:
                self._datahub.write_request(child)
            except PreconditionFailed:
                return f"run id {child.run_id} for {dataset} is taken by another request"
            except WriteRejected as exc:
                log.error("plan %s: child request refused: %s", entry.run_id, exc)
                return f"DataHub refused the run request for {dataset}"
        return None

    def _statuses(self, entry: RunEntry, wave: int) -> dict[str, str | None]:
        assert entry.plan is not None
        out: dict[str, str | None] = {}
        for dataset in entry.plan["waves"][wave]:
            result = self._datahub.read_result(child_run_id(entry.run_id, dataset))
            out[dataset] = result.status if result is not None else None
        return out

    def _cancel(self, partition: int, entry: RunEntry, steps: PlanSteps) -> float | None:
        plan = entry.plan
        assert plan is not None
        wave = int(plan["wave"])
        actor = self._service_actor() if self._service_actor is not None else entry.cancel_by
        if str(wave) in plan["startedAt"]:
            for dataset, status in self._statuses(entry, wave).items():
                if not is_final(status):
                    self._datahub.write_signal(
                        child_run_id(entry.run_id, dataset), self._executor_id, str(actor)
                    )
        return steps.end_run(
            partition,
            entry,
            self._final(
                entry,
                DataHubStatus.CANCELLED,
                f"cancelled by {entry.cancel_by} in wave {wave + 1}; no later wave started",
            ),
        )

    # --- the report -----------------------------------------------------------------------

    def _children(self, entry: RunEntry, statuses: dict[str, str | None]) -> list[dict[str, Any]]:
        assert entry.plan is not None
        return [
            {
                "runId": child_run_id(entry.run_id, dataset),
                "datasetUrn": dataset,
                "wave": index,
                "status": statuses.get(dataset),
            }
            for index, wave in enumerate(entry.plan["waves"])
            for dataset in wave
        ]

    def _final(self, entry: RunEntry, status: DataHubStatus, message: str) -> RunResult:
        """The parent's result; its report lists every child with its status then (a child
        never written: SKIPPED, or CANCELLED when the parent was cancelled)."""
        assert entry.plan is not None and entry.start_ms is not None
        never = DataHubStatus.CANCELLED.value if status == DataHubStatus.CANCELLED else SKIPPED
        statuses: dict[str, str | None] = {}
        started = entry.plan["startedAt"]
        for index, wave in enumerate(entry.plan["waves"]):
            for dataset in wave:
                if str(index) not in started:
                    statuses[dataset] = never
                    continue
                result = self._datahub.read_result(child_run_id(entry.run_id, dataset))
                statuses[dataset] = result.status if result is not None else "PENDING"
        children = self._children(entry, statuses)
        lines = [f"Run with upstream: {message}"] + [
            f"wave {c['wave'] + 1}: {c['datasetUrn']} {c['status']}" for c in children
        ]
        return RunResult(
            status,
            entry.start_ms,
            "\n".join(lines),
            duration_ms=max(0, now_ms() - entry.start_ms),
            details={
                "kind": KIND,
                "cancellable": False,
                "waves": len(entry.plan["waves"]),
                "children": children,
                "message": message,
            },
        )
