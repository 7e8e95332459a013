"""DataHub-native run history: every run as a `dataProcessInstance` on the dataset's Runs tab.

DataHub's dataset page has a **Runs** tab (datahub-web-react/src/app/entityV2/dataset/profile/
OperationsTab.tsx). It asks GraphQL `dataset(urn) { runs(start, count, direction: OUTGOING) }`,
which EntityRunsResolver.java (datahub-graphql-core/.../resolvers/jobs/) answers by searching
`dataProcessInstance` entities whose `outputs` (DataProcessInstanceOutput.outputs, @Searchable
`outputs`) hold the dataset, newest `created` first, and showing the latest
`dataProcessInstanceRunEvent` of each (`state(limit: 1)`). So for each run this writes:

- at the claim: the DPI `urn:li:dataProcessInstance:<runId>` (properties with `created` = the
  claim time and the requester, output = the dataset, parentTemplate = the target's dataJob) and
  a run event STARTED;
- at the end: the same aspects again (a takeover may be the first to write them; GMS ignores an
  unchanged aspect) and a run event COMPLETE with result SUCCESS / FAILURE / SKIPPED, plus, on
  SUCCESS, an `operation` aspect on the dataset (CUSTOM / LAMBDA_INGESTION, with the actor), so
  the dataset's "last updated" reflects the load.

Each target is a `dataFlow` with one `dataJob` ("Task" on the Runs tab). DataHub v1.7.0 ships no
data platform for AWS Lambda or Step Functions (metadata-service/configuration/src/main/
resources/bootstrap_mcps/data-platforms.yaml has neither), so the flows use the orchestrators
`aws-lambda` and `aws-sfn`; the UI shows the name without a logo.

Records handed over while the writer is busy go out together (issue 24: a burst of 2,000 runs
made 8,000 GMS calls one after another, a third of the consumer's Python time and a share of
GMS's): every record but the run events in one batch call, then every run event in a second.

History is a side record: a failed write is logged and counted
(`lambda_trigger_consumer_history_write_failures_total`) and the run carries on. Every write is
an idempotent upsert (the run event's key is its timestampMillis), so nothing needs undoing.
`LAMBDA_TRIGGER_NATIVE_HISTORY=false` turns it off.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import (
    AuditStampClass,
    DataFlowInfoClass,
    DataJobInfoClass,
    DataProcessInstanceOutputClass,
    DataProcessInstancePropertiesClass,
    DataProcessInstanceRelationshipsClass,
    DataProcessInstanceRunEventClass,
    DataProcessInstanceRunResultClass,
    DataProcessRunStatusClass,
    DataProcessTypeClass,
    OperationClass,
    OperationSourceTypeClass,
    OperationTypeClass,
    RunResultTypeClass,
)
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambda_trigger.contract import DataHubStatus, RunResult, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger_consumer.ledger import RunEntry, Target

log = logging.getLogger(__name__)

CUSTOM_OPERATION = "LAMBDA_INGESTION"
# The execution request's source type DataHub's IngestionScheduler writes for a cron run.
SCHEDULED_SOURCE_TYPE = "SCHEDULED_INGESTION_SOURCE"
_ORCHESTRATORS = {"lambda": "aws-lambda", "lambda-event": "aws-lambda", "stepfunctions": "aws-sfn"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/@+-]")


# Runs whose records share one pair of GMS calls, at most (a batch call's body stays well
# under GMS's request limits: a run's records are about 2 KB).
BATCH_RUNS = 100


@dataclass
class _Records:
    """One run start's or end's records: the run event goes out after the rest."""

    run_id: str
    event: str  # "started" / "finished" (the writes counter's label)
    rest: list[MetadataChangeProposalWrapper]
    run_event: MetadataChangeProposalWrapper


class HistorySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    enabled: bool = Field(True, validation_alias="LAMBDA_TRIGGER_NATIVE_HISTORY")
    env: str = Field("PROD", validation_alias="LAMBDA_TRIGGER_HISTORY_ENV")


def process_instance_urn(run_id: str) -> str:
    return f"urn:li:dataProcessInstance:{run_id}"


def flow_urn(target: Target, env: str = "PROD") -> str:
    orchestrator = _ORCHESTRATORS.get(target.kind, "aws-lambda")
    # URN tuple parts must not carry `,` `(` `)`: a target key is a mapping name or an ARN.
    return f"urn:li:dataFlow:({orchestrator},{_UNSAFE.sub('_', target.key)},{env})"


def job_urn(target: Target, env: str = "PROD") -> str:
    return f"urn:li:dataJob:({flow_urn(target, env)},run)"


def result_type(status: DataHubStatus) -> str:
    if status == DataHubStatus.SUCCESS:
        return RunResultTypeClass.SUCCESS
    if status in (DataHubStatus.CANCELLED, DataHubStatus.DUPLICATE, DataHubStatus.ABORTED):
        return RunResultTypeClass.SKIPPED  # shown as "Cancelled" by OperationsTab.tsx
    return RunResultTypeClass.FAILURE  # FAILURE, TIMEOUT


class RunHistory:
    def __init__(
        self,
        datahub: DataHubClient,
        settings: HistorySettings | None = None,
        *,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.settings = settings or HistorySettings()
        self._datahub = datahub
        self._templates: set[str] = set()  # dataJobs written by this process
        # One writer thread, off the run's path: a slow DataHub delays history, never an
        # invoke; one thread keeps a run's start before its end. What is handed over while it
        # writes waits in `_pending` and goes out in the next batch.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="history")
        self._pending: list[tuple[str, Callable[..., _Records], tuple[Any, ...]]] = []
        self._pending_lock = threading.Lock()
        self._draining = False
        self.failures = Counter(
            "lambda_trigger_consumer_history_write_failures",
            "Run history writes (dataProcessInstance, run events, operation) DataHub refused "
            "or did not answer; the runs themselves were not affected",
            registry=registry,
        )
        self.writes = Counter(
            "lambda_trigger_consumer_history_writes",
            "Run history records written to DataHub (run starts and run ends)",
            ["event"],
            registry=registry,
        )
        for event in ("started", "finished"):  # exported at 0 from the start
            self.writes.labels(event=event)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    # --- hooks (called by the run driver; never raise, never wait) -------------------------

    def started(self, entry: RunEntry) -> None:
        if self.enabled:
            self._submit(entry.run_id, self._started_records, copy.deepcopy(entry))

    def finished(self, entry: RunEntry, result: RunResult) -> None:
        if self.enabled:
            self._submit(entry.run_id, self._finished_records, copy.deepcopy(entry), result)

    def warm(self) -> None:
        """Make the writer thread now (the warm-up): on the first run, handing over its
        STARTED record right before the invoke must not wait for a thread to be made."""
        if self.enabled:
            self.flush()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for the writes handed over so far (shutdown and tests)."""
        wait([self._pool.submit(lambda: None)], timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop writing; with a timeout, first wait that long for the writes handed over."""
        if timeout > 0:
            self.flush(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, run_id: str, build: Callable[..., _Records], *args: Any) -> None:
        with self._pending_lock:
            self._pending.append((run_id, build, args))
            if self._draining:
                return  # the writer takes it with the others after its current batch
            self._draining = True
        try:
            self._pool.submit(self._drain)
        except RuntimeError as exc:  # shut down: the history of these runs is skipped
            with self._pending_lock:
                skipped, self._pending, self._draining = self._pending, [], False
            for skipped_run, _build, _args in skipped:
                self._failed(skipped_run, "handover", exc)

    def _drain(self) -> None:
        """The writer thread: batches of what is pending, until nothing is."""
        while True:
            with self._pending_lock:
                batch, self._pending = self._pending[:BATCH_RUNS], self._pending[BATCH_RUNS:]
                if not batch:
                    self._draining = False
                    return
            records: list[_Records] = []
            for run_id, build, args in batch:
                try:
                    records.append(build(*args))
                except Exception as exc:  # history must never fail or strand a run
                    self._failed(run_id, "records", exc)
            self._write(records)

    # --- writes -------------------------------------------------------------------------------

    def _write(self, records: list[_Records]) -> None:
        """Several runs' records in two calls; if GMS refuses the batch, each run's on its
        own, so that one bad record costs only its own run's history."""
        if not records:
            return
        try:
            self._emit(records)
        except Exception as exc:
            if len(records) == 1:
                self._failed(records[0].run_id, records[0].event, exc)
                return
            for one in records:
                try:
                    self._emit([one])
                except Exception as each:
                    self._failed(one.run_id, one.event, each)
                else:
                    self.writes.labels(event=one.event).inc()
            return
        for one in records:
            self.writes.labels(event=one.event).inc()

    def _started_records(self, entry: RunEntry) -> _Records:
        assert entry.start_ms is not None
        return _Records(
            entry.run_id,
            "started",
            self._instance(entry),
            MetadataChangeProposalWrapper(
                entityUrn=process_instance_urn(entry.run_id),
                aspect=DataProcessInstanceRunEventClass(
                    timestampMillis=entry.start_ms,
                    status=DataProcessRunStatusClass.STARTED,
                    attempt=1,
                ),
            ),
        )

    def _finished_records(self, entry: RunEntry, result: RunResult) -> _Records:
        """The final status is in DataHub: COMPLETE with its result; an operation on success."""
        end = (
            result.start_time_ms + result.duration_ms
            if result.duration_ms is not None
            else now_ms()
        )
        urn = process_instance_urn(entry.run_id)
        # Without its request and target (a late completion for a run already ended) the
        # entry cannot describe the run: the instance written at the start stays as it is.
        mcps = (
            self._instance(entry, fallback_start=result.start_time_ms)
            if entry.request is not None and entry.target is not None
            else []
        )
        dataset = entry.dataset_urn
        if result.status == DataHubStatus.SUCCESS and dataset and entry.request is not None:
            mcps.append(
                MetadataChangeProposalWrapper(
                    entityUrn=dataset,
                    aspect=OperationClass(
                        timestampMillis=end,
                        lastUpdatedTimestamp=end,
                        operationType=OperationTypeClass.CUSTOM,
                        customOperationType=CUSTOM_OPERATION,
                        actor=self._requester(entry),
                        sourceType=OperationSourceTypeClass.DATA_PROCESS,
                        customProperties=self._properties(entry),
                    ),
                )
            )
        # The COMPLETE event last: once the Runs tab shows the run ended, the rest is there.
        return _Records(
            entry.run_id,
            "finished",
            mcps,
            MetadataChangeProposalWrapper(
                entityUrn=urn,
                aspect=DataProcessInstanceRunEventClass(
                    # A run event is keyed by its timestamp: the end must not overwrite the
                    # start (a run ending in the same millisecond moves on by one).
                    timestampMillis=max(end, (entry.start_ms or 0) + 1),
                    status=DataProcessRunStatusClass.COMPLETE,
                    attempt=1,
                    result=DataProcessInstanceRunResultClass(
                        type=result_type(result.status), nativeResultType=result.status.value
                    ),
                    durationMillis=result.duration_ms,
                ),
            ),
        )

    # --- records ----------------------------------------------------------------------------

    def _instance(
        self, entry: RunEntry, fallback_start: int | None = None
    ) -> list[MetadataChangeProposalWrapper]:
        urn = process_instance_urn(entry.run_id)
        out: list[MetadataChangeProposalWrapper] = []
        target = entry.target
        template = job_urn(target, self.settings.env) if target is not None else None
        if target is not None and template not in self._templates:
            out.extend(self._template(target))
        request = entry.request or {}
        scheduled = request.get("source_type") == SCHEDULED_SOURCE_TYPE
        created = entry.start_ms or fallback_start or now_ms()
        out.append(
            MetadataChangeProposalWrapper(
                entityUrn=urn,
                aspect=DataProcessInstancePropertiesClass(
                    name=entry.run_id,
                    created=AuditStampClass(time=created, actor=self._requester(entry)),
                    type=DataProcessTypeClass.BATCH_SCHEDULED
                    if scheduled
                    else DataProcessTypeClass.BATCH_AD_HOC,
                    customProperties=self._properties(entry),
                ),
            )
        )
        if entry.dataset_urn:
            out.append(
                MetadataChangeProposalWrapper(
                    entityUrn=urn,
                    aspect=DataProcessInstanceOutputClass(outputs=[entry.dataset_urn]),
                )
            )
        if template is not None:
            out.append(
                MetadataChangeProposalWrapper(
                    entityUrn=urn,
                    aspect=DataProcessInstanceRelationshipsClass(
                        upstreamInstances=[], parentTemplate=template
                    ),
                )
            )
        return out

    def _template(self, target: Target) -> list[MetadataChangeProposalWrapper]:
        flow = flow_urn(target, self.settings.env)
        job = job_urn(target, self.settings.env)
        kind = "Step Functions state machine" if target.kind == "stepfunctions" else "Lambda"
        return [
            MetadataChangeProposalWrapper(
                entityUrn=flow,
                aspect=DataFlowInfoClass(
                    name=target.label,
                    description=f"{kind} started by datahub-lambda-trigger",
                ),
            ),
            MetadataChangeProposalWrapper(
                entityUrn=job,
                aspect=DataJobInfoClass(
                    name=target.label,
                    type="LAMBDA" if target.kind != "stepfunctions" else "STEP_FUNCTIONS",
                    flowUrn=flow,
                ),
            ),
        ]

    def _requester(self, entry: RunEntry) -> str:
        request = entry.request or {}
        return str(request.get("actor_urn") or entry.writer or "urn:li:corpuser:__datahub_system")

    def _properties(self, entry: RunEntry) -> dict[str, str]:
        request = entry.request or {}
        props: dict[str, Any] = {
            "runId": entry.run_id,
            "executionRequestUrn": f"urn:li:dataHubExecutionRequest:{entry.run_id}",
            "requestedBy": self._requester(entry),
            "source": request.get("source_type"),
            "target": entry.target.label if entry.target else None,
            "ingestionSource": (request.get("extra_args") or {}).get("ingestionSource"),
            # the run's checked values, as the job received them (Runs tab)
            "parameters": json.dumps(entry.target.parameters, sort_keys=True)
            if entry.target and entry.target.parameters is not None
            else None,
        }
        return {k: str(v) for k, v in props.items() if v}

    def _emit(self, records: list[_Records]) -> None:
        """Every record but the run events in one batch call (issue 24: a record was one GMS
        call per aspect), then the run events: a run event is last so that once the Runs tab
        shows it, the rest is there. They cannot share the batch: GMS writes a batch's
        timeseries aspects before its versioned ones (EntityServiceImpl.ingestProposal), and
        the SDK's OpenAPI mode sends one call per entity type. A task's template goes once."""
        rest: list[MetadataChangeProposalWrapper] = []
        templates: set[tuple[str, str]] = set()
        for one in records:
            for mcp in one.rest:
                if isinstance(mcp.aspect, DataFlowInfoClass | DataJobInfoClass):
                    key = (mcp.entityUrn or "", mcp.aspectName or "")
                    if key in templates:
                        continue
                    templates.add(key)
                rest.append(mcp)
        events = [one.run_event for one in records]
        for batch in (rest, events):
            if len(batch) > 1:
                self._datahub.graph.emit_mcps(batch)
            elif batch:
                self._datahub.graph.emit_mcp(batch[0])
        for mcp in rest:
            if isinstance(mcp.aspect, DataJobInfoClass) and mcp.entityUrn:
                self._templates.add(mcp.entityUrn)

    def _failed(self, run_id: str, what: str, exc: Exception) -> None:
        self.failures.inc()
        log.warning("run %s: run history (%s) not written to DataHub: %s", run_id, what, exc)
