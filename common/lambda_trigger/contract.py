"""The request/status contract written into DataHub's execution-request entity.

A run is `urn:li:dataHubExecutionRequest:<runId>`:
- `dataHubExecutionRequestInput` is the request (written by the api, the CLI, or anyone
  with the SDK); our own `executorId` keeps DataHub's executor away from it;
- `dataHubExecutionRequestResult` is the status, written only by the consumer: RUNNING
  first (the claim), then one final SUCCESS or FAILURE.
See docs/contract.md for the whole picture.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from datahub.metadata.schema_classes import (
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
    ExecutionRequestSourceClass,
    StructuredExecutionReportClass,
)

from lambda_trigger.urns import execution_request_urn, parse_dataset_urn, validate_data_job_urn

TASK = "LAMBDA_TRIGGER_RUN"
DEFAULT_EXECUTOR_ID = "lambda-trigger"
INPUT_ASPECT = "dataHubExecutionRequestInput"
RESULT_ASPECT = "dataHubExecutionRequestResult"
SIGNAL_ASPECT = "dataHubExecutionRequestSignal"
STRUCTURED_REPORT_TYPE = "LAMBDA_TRIGGER_RUN"

ARG_DATASET = "datasetUrn"
ARG_JOB = "jobUrn"
ARG_REASON = "reason"
MAX_REASON_LENGTH = 1000


class SourceType(StrEnum):
    API = "LAMBDA_TRIGGER_API"
    CLI = "LAMBDA_TRIGGER_CLI"
    SDK = "LAMBDA_TRIGGER_SDK"
    LINEAGE = "LINEAGE_TRIGGER"  # started by the consumer: an upstream changed (docs/triggers.md)


class DataHubStatus(StrEnum):
    """Statuses DataHub's UI understands (ExecutionRequestResult.status)."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    ABORTED = "ABORTED"
    DUPLICATE = "DUPLICATE"


class RunState(StrEnum):
    """What the api tells the browser."""

    REQUESTED = "requested"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def run_state(datahub_status: str | None) -> RunState:
    if datahub_status is None:
        return RunState.REQUESTED
    if datahub_status == DataHubStatus.RUNNING:
        return RunState.RUNNING
    if datahub_status == DataHubStatus.SUCCESS:
        return RunState.SUCCEEDED
    if datahub_status in (DataHubStatus.CANCELLED, DataHubStatus.ABORTED):
        return RunState.CANCELLED
    # FAILURE, TIMEOUT, DUPLICATE and anything unknown end the run as failed.
    return RunState.FAILED


# Statuses after which GMS refuses any further write of the result aspect
# (metadata-io/.../aspect/validation/ExecutionRequestResultValidator.java), plus the ones this
# project never leaves once written (FAILURE, TIMEOUT): a run in any of these has ended.
FINAL_STATUSES = frozenset(
    {
        DataHubStatus.SUCCESS,
        DataHubStatus.FAILURE,
        DataHubStatus.CANCELLED,
        DataHubStatus.TIMEOUT,
        DataHubStatus.ABORTED,
        DataHubStatus.DUPLICATE,
    }
)
# The cancel signal DataHub's own CancelIngestionExecutionRequestResolver writes
# (datahub-graphql-core/.../ingest/execution/CancelIngestionExecutionRequestResolver.java).
KILL_SIGNAL = "KILL"
# Keys of the structured report that other writers and the api rely on.
CLAIM_KEY = "claim"  # the nonce of the RUNNING write that claimed the run


def is_final(status: str | None) -> bool:
    return status is not None and status in FINAL_STATUSES


class InvalidRequestError(ValueError):
    """A request aspect that does not describe a run this project can start."""


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    dataset_urn: str
    executor_id: str
    source_type: str
    requested_at_ms: int
    job_urn: str | None = None
    reason: str | None = None
    actor_urn: str | None = None
    extra_args: dict[str, str] = field(default_factory=dict)
    # Who wrote the request: the MCL's `created.actor`, which GMS authenticated (consumer
    # only; never written to DataHub). `actor_urn` is what the aspect claims.
    writer_urn: str | None = None
    # `source.ingestionSource`: the dataset's ingestion source (source_urns.py), which GMS's
    # ExecuteIngestionAuthValidator requires (before v1.3.0) and checks EXECUTE on.
    ingestion_source: str | None = None

    @property
    def urn(self) -> str:
        return execution_request_urn(self.run_id)

    def to_aspect(self) -> ExecutionRequestInputClass:
        args = {ARG_DATASET: self.dataset_urn, **self.extra_args}
        if self.job_urn:
            args[ARG_JOB] = self.job_urn
        if self.reason:
            args[ARG_REASON] = self.reason
        return ExecutionRequestInputClass(
            task=TASK,
            args=args,
            executorId=self.executor_id,
            source=ExecutionRequestSourceClass(
                type=self.source_type, ingestionSource=self.ingestion_source
            ),
            requestedAt=self.requested_at_ms,
            actorUrn=self.actor_urn,
        )

    @classmethod
    def from_aspect(cls, run_id: str, aspect: dict[str, Any]) -> RunRequest:
        """Build from the aspect's JSON (as found in an MCL or read from GMS).

        Raises InvalidRequestError with a message fit for the run's FAILURE report.
        """
        args = aspect.get("args") or {}
        if not isinstance(args, dict):
            raise InvalidRequestError("args must be a map of strings")
        try:
            dataset = parse_dataset_urn(args.get(ARG_DATASET), f"args.{ARG_DATASET}").urn
            job = args.get(ARG_JOB) or None
            if job is not None:
                job = validate_data_job_urn(job, f"args.{ARG_JOB}")
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
        reason = args.get(ARG_REASON) or None
        if reason is not None and len(reason) > MAX_REASON_LENGTH:
            reason = reason[:MAX_REASON_LENGTH]
        source = aspect.get("source") or {}
        extra = {k: str(v) for k, v in args.items() if k not in (ARG_DATASET, ARG_JOB, ARG_REASON)}
        return cls(
            run_id=run_id,
            dataset_urn=dataset,
            executor_id=str(aspect.get("executorId", "")),
            source_type=str(source.get("type", SourceType.SDK)) if isinstance(source, dict) else "",
            requested_at_ms=int(aspect.get("requestedAt") or 0),
            job_urn=job,
            reason=reason,
            actor_urn=aspect.get("actorUrn"),
            extra_args=extra,
            ingestion_source=(
                str(source["ingestionSource"])
                if isinstance(source, dict) and source.get("ingestionSource")
                else None
            ),
        )


def lambda_payload(
    request: RunRequest,
    static_fields: dict[str, Any],
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON a Lambda (or Step Functions execution) receives; documented in docs/triggering.md.

    Static fields from the mapping come first so they can never overwrite the run's own
    fields: a mapping typo must not send a function someone else's runId. `parameters` (the
    run's checked values, defaults applied; lambda_trigger.parameters) is one field of its own,
    present when the target declares parameters: a value can never replace another field.
    """
    own = {} if parameters is None else {"parameters": parameters}
    return {
        **static_fields,
        "runId": request.run_id,
        "executionRequestUrn": request.urn,
        "datasetUrn": request.dataset_urn,
        "jobUrn": request.job_urn,
        "reason": request.reason,
        "requestedBy": request.actor_urn,
        "requestedAt": request.requested_at_ms,
        **own,
    }


def trusted_requester(
    writer: str | None, actor: str | None, service_actor: str | None
) -> str | None:
    """Who a run request is FOR, as both services decide it (docs/security.md).

    The request's `actorUrn` is believed only when the api's own service principal wrote the
    request: the api identified the caller through DataHub and checked their privilege before
    writing. Anyone else who writes the aspect (SDK, CLI, Airflow) IS the requester, whatever
    `actorUrn` they put in it: that is what the Lambda receives as `requestedBy`."""
    if writer is not None and service_actor is not None and writer == service_actor:
        return actor or writer
    return writer


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RunResult:
    """A status write; `details` becomes the structured report (always valid JSON, since
    DataHub's UI JSON.parses it without a guard)."""

    status: DataHubStatus
    start_time_ms: int
    report: str
    duration_ms: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_aspect(self) -> ExecutionRequestResultClass:
        return ExecutionRequestResultClass(
            status=self.status.value,
            report=self.report,
            structuredReport=StructuredExecutionReportClass(
                type=STRUCTURED_REPORT_TYPE,
                serializedValue=json.dumps(self.details, sort_keys=True, default=str),
                contentType="application/json",
            ),
            startTimeMs=self.start_time_ms,
            durationMs=self.duration_ms,
        )


def report_details(result: ExecutionRequestResultClass | None) -> dict[str, Any]:
    """The structured report of a stored result as a dict ({} when absent or not ours)."""
    if result is None or result.structuredReport is None:
        return {}
    try:
        data = json.loads(result.structuredReport.serializedValue)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
