"""What each route does, without HTTP: identify -> check the dataset -> resolve -> write.

Nothing is written to DataHub unless every check passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from lambda_trigger.contract import (
    DEFAULT_EXECUTOR_ID,
    DataHubStatus,
    RunRequest,
    SourceType,
    is_final,
    now_ms,
    report_details,
    run_state,
)
from lambda_trigger.datahub import (
    DataHubClient,
    DataHubUnavailable,
    PreconditionFailed,
    WriteRejected,
)
from lambda_trigger.job_targets import JobRefused, resolve_job_target
from lambda_trigger.mapping import DEFAULT_LABEL, Resolution
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.runid import is_readable_run_id, new_run_id
from lambda_trigger.sanitize import describe_char, hostile_char, redact
from lambda_trigger.settings import ApiSettings
from lambda_trigger.sources import FirstUseSources, dataset_of
from lambda_trigger.urns import (
    DatasetUrn,
    InvalidUrnError,
    parse_dataset_urn,
    validate_data_job_urn,
)
from lambda_trigger_api.access import may_read, may_start, require_read, require_start
from lambda_trigger_api.authmode import GmsAuthMode
from lambda_trigger_api.errors import ApiError
from lambda_trigger_api.identity import (
    Caller,
    CredentialsRejected,
    IdentityClient,
    IdentityUnavailable,
    Unauthenticated,
)
from lambda_trigger_api.last_run import last_run
from lambda_trigger_api.limits import RateLimiter
from lambda_trigger_api.metrics import ApiMetrics
from lambda_trigger_api.run_parameters import (
    last_run_parameters,
    public_schema,
    run_parameter_args,
    run_parameters,
)
from lambda_trigger_api.runs import (
    MAX_PAGE,
    InvalidCursor,
    RunRecord,
    ServiceActor,
    read_runs,
    search_runs,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_OUR_TOKEN_REFUSED = frozenset({401, 403})  # our service token is wrong: an outage, not the caller


class _Outage(Exception):
    """DataHub did not answer usefully (its cause is the DataHubUnavailable)."""


def _client_error_status(exc: BaseException) -> int | None:
    """The HTTP status when GMS answered a read with a 4xx that is about the request."""
    cause = exc.__cause__
    if isinstance(cause, requests.HTTPError) and cause.response is not None:
        status = cause.response.status_code
        if 400 <= status < 500 and status not in _OUR_TOKEN_REFUSED and status not in (408, 429):
            return status
    return None


@dataclass(frozen=True)
class TargetCheck:
    available: bool
    resolution: Resolution | None
    reason: str | None
    dataset_found: bool = True


class RunService:
    def __init__(
        self,
        settings: ApiSettings,
        datahub: DataHubClient,
        identity: IdentityClient,
        mappings: MappingSource,
        metrics: ApiMetrics,
        *,
        executor_id: str = DEFAULT_EXECUTOR_ID,
        job_arn_property_urn: str | None = None,
        auth_mode: GmsAuthMode | None = None,
        rate_limiter: RateLimiter | None = None,
        service_actor: ServiceActor | None = None,
    ) -> None:
        self.auth_mode = auth_mode
        self.service_actor = service_actor or ServiceActor(datahub.settings, settings.service_actor)
        self.rate_limiter = rate_limiter
        self.settings = settings
        self.datahub = datahub
        self.identity = identity
        self.mappings = mappings
        self.metrics = metrics
        self.executor_id = executor_id
        self.job_arn_property_urn = job_arn_property_urn
        # Each request names its dataset's ingestion source (source_urns.py), created here on
        # the dataset's first run when `sources sync` has not made it.
        self.first_use_sources = FirstUseSources()
        # Fields GET /runs/{runId} adds for some runs (set by app.py: upstream.py's children).
        self.run_extras: Callable[[RunRecord], dict[str, Any]] | None = None
        if settings.dev_mode_no_auth:
            log.warning(
                "!!! DEV MODE: callers are NOT identified; every request acts as %s !!!",
                settings.dev_actor_urn,
            )

    # --- checks -------------------------------------------------------------------------

    def caller(self, authorization: str | None, cookie: str | None) -> Caller:
        if self.settings.dev_mode_no_auth:
            log.warning(
                "dev mode: request not authenticated, acting as %s", self.settings.dev_actor_urn
            )
            return Caller(self.settings.dev_actor_urn, "dev", True, "dev-mode")
        if not authorization and not cookie:
            # Nothing to ask DataHub about: not a DataHub call at all.
            raise ApiError(
                401, "unauthenticated", "no DataHub session or token: sign in to DataHub"
            )
        if authorization and self.auth_mode is not None:
            authorization = self._bearer_allowed(authorization, cookie)
        try:
            with self.metrics.datahub_call("identify", failures=(IdentityUnavailable,)):
                return self.identity.identify(authorization, cookie)
        except Unauthenticated as exc:
            raise ApiError(401, "unauthenticated", str(exc)) from exc
        except CredentialsRejected as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        except IdentityUnavailable as exc:
            log.warning("identity check failed: %s", exc)
            raise ApiError(
                503, "datahub_unavailable", "cannot check who is calling: DataHub is unavailable"
            ) from exc

    def _bearer_allowed(self, authorization: str, cookie: str | None) -> str | None:
        """A Bearer token is checked only if GMS checks tokens (see authmode.py)."""
        assert self.auth_mode is not None
        auth_off = self.auth_mode.auth_off()
        if auth_off is False:
            return authorization
        if auth_off is None:
            raise ApiError(
                503, "datahub_unavailable", "cannot check who is calling: DataHub is unavailable"
            )
        if cookie:
            return None  # the session cookie identifies the caller through datahub-frontend
        log.warning(
            "refused a Bearer caller: GMS authentication is off (METADATA_SERVICE_AUTH_ENABLED="
            "false), so GMS accepts any token and a token proves nothing; only DataHub UI "
            "sessions are accepted until GMS authentication is turned on"
        )
        raise ApiError(
            401,
            "unauthenticated",
            "bearer tokens are not accepted: DataHub's metadata service runs without "
            "authentication; sign in to the DataHub UI",
        )

    def may_run(self, caller: Caller) -> bool:
        return may_start(self.settings, caller)

    def _datahub(self, operation: str, call: Callable[[], T]) -> T:
        # Only an outage counts as a failed DataHub call in the metrics; a 4xx for what the
        # caller sent (a URN GMS cannot parse) is the caller's problem.
        try:
            with self.metrics.datahub_call(operation, failures=(_Outage,)):
                try:
                    return call()
                except DataHubUnavailable as exc:
                    status = _client_error_status(exc)
                    if status is None:
                        raise _Outage from exc
                    log.info("DataHub answered HTTP %s to %s: %s", status, operation, exc)
                    raise ApiError(
                        400, "invalid_request", f"DataHub refused the request (HTTP {status})"
                    ) from exc
        except _Outage as exc:
            log.warning("DataHub unavailable during %s: %s", operation, exc.__cause__)
            raise ApiError(503, "datahub_unavailable", "DataHub is unavailable") from exc

    def check_target(self, dataset: DatasetUrn, job_urn: str | None = None) -> TargetCheck:
        state = self._datahub("dataset", lambda: self.datahub.dataset_state(dataset.urn))
        if state != "present":
            reason = "dataset not found in DataHub" if state == "missing" else "dataset was deleted"
            return TargetCheck(False, None, reason, dataset_found=False)
        property_urn = self.job_arn_property_urn
        if job_urn and property_urn:
            job = self._datahub(
                "job",
                lambda: resolve_job_target(
                    self.datahub, self.mappings.current(), job_urn, dataset.urn, property_urn
                ),
            )
            if isinstance(job, JobRefused):
                return TargetCheck(False, None, job.message)
            if job is not None:
                return TargetCheck(True, job, None)
        mapping = self.mappings.current()
        tags = (
            self._datahub("tags", lambda: self.datahub.tags(dataset.urn))
            if mapping.needs_tags
            else []
        )
        resolution = mapping.resolve(dataset, tags)
        if resolution is None:
            return TargetCheck(False, None, "no ingestion job is mapped to this dataset")
        return TargetCheck(True, resolution, None)

    # --- routes -------------------------------------------------------------------------

    def request_run(
        self,
        caller: Caller,
        dataset_urn: object,
        job_urn: object,
        reason: str | None,
        *,
        parameters: object = None,
    ) -> dict[str, Any]:
        try:
            dataset = parse_dataset_urn(dataset_urn)
            job = validate_data_job_urn(job_urn) if job_urn else None
        except InvalidUrnError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        bad = hostile_char(reason) if reason else None
        if bad is not None:
            raise ApiError(400, "invalid_request", f"reason must not contain {describe_char(bad)}")
        require_start(self.settings, caller)
        slot = None
        if self.rate_limiter is not None:
            # Reserved atomically before any work (issue 19): concurrent calls cannot all pass
            # a check that is recorded only after the write. Handed back unless a run is written.
            slot, wait = self.rate_limiter.reserve(caller.urn)
            if wait is not None:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many runs started by {caller.username or caller.urn}: "
                    f"try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
        written = False
        try:
            answer = self._request_run(caller, dataset, job, reason, parameters)
            written = not answer.get("alreadyActive")
            return answer
        finally:
            if slot is not None and not written:
                assert self.rate_limiter is not None
                self.rate_limiter.release(slot)

    def _request_run(
        self,
        caller: Caller,
        dataset: DatasetUrn,
        job: str | None,
        reason: str | None,
        parameters: object,
    ) -> dict[str, Any]:
        check = self.check_target(dataset, job)
        if not check.available:
            if not check.dataset_found:
                raise ApiError(404, "dataset_not_found", f"{dataset.urn}: {check.reason}")
            raise ApiError(422, "no_target", f"{dataset.urn}: {check.reason}")
        extra_args = run_parameter_args(check.resolution, parameters)
        active = self.active_run(dataset.urn)
        if active is not None:
            # One active run per dataset: show the user that run instead of starting another
            # (the consumer enforces the rule for every writer: a duplicate ends DUPLICATE).
            return {
                "runId": active[0]["runId"],
                "status": "started",
                "alreadyActive": True,
                "message": "A run of this dataset is already in progress; showing it",
            }
        label = check.resolution.label if check.resolution else DEFAULT_LABEL
        source = self._datahub(
            "ingestion_source",
            lambda: self.first_use_sources.ensure(
                self.datahub,
                dataset.urn,
                "first-use",  # the recipe is shown in DataHub's UI: no target key in it
                label,
            ),
        )
        request = RunRequest(
            run_id=new_run_id(),
            dataset_urn=dataset.urn,
            executor_id=self.executor_id,
            source_type=SourceType.API.value,
            requested_at_ms=now_ms(),
            job_urn=job,
            reason=(reason or "").strip() or None,
            actor_urn=caller.urn,
            ingestion_source=source,
            extra_args=extra_args,
        )
        try:
            self._datahub("write_request", lambda: self.datahub.write_request(request))
        except ApiError:
            raise
        except (WriteRejected, PreconditionFailed) as exc:
            log.warning("run %s: DataHub refused the request write: %s", request.run_id, exc)
            message = "DataHub refused the run request"
            if "subType=AUTHORIZATION" in str(exc):
                # ExecuteIngestionAuthValidator (docs/datahub-privileges.md): the api's token.
                message += (
                    ": the service's DataHub token may not execute this dataset's ingestion "
                    "source (it needs MANAGE_INGESTION or EXECUTE on the source)"
                )
            raise ApiError(502, "datahub_rejected", message) from exc
        self.metrics.runs_requested.labels(source=SourceType.API.value).inc()
        label = check.resolution.label if check.resolution else DEFAULT_LABEL
        log.info("run %s requested by %s for %s", request.run_id, caller.urn, dataset.urn)
        return {
            "runId": request.run_id,
            "status": "started",
            "alreadyActive": False,
            "message": f"{label} requested",
        }

    def _service_actor(self) -> str:
        return self._datahub("service_actor", self.service_actor.urn)

    def _read_runs(self, run_ids: list[str]) -> dict[str, RunRecord]:
        timeout = self.datahub.settings.timeout_seconds
        return self._datahub("read_runs", lambda: read_runs(self.datahub, run_ids, timeout))

    def _read_run(self, run_id: str) -> RunRecord | None:
        record = self._read_runs([run_id]).get(run_id)
        if record is None or record.request.executorId != self.executor_id:
            return None
        return record

    def active_run(self, dataset_urn: str) -> tuple[dict[str, Any], str | None] | None:
        """The dataset's RUNNING run and its requester, from DataHub's search index
        (`executionResultStatus`): one search and one batch read. Best effort: the index lags
        a moment, and the consumer has the last word."""
        try:
            run_ids, _ = search_runs(
                self.datahub, self.executor_id, count=MAX_PAGE, running_only=True
            )
            timeout = self.datahub.settings.timeout_seconds
            records = read_runs(self.datahub, run_ids, timeout)
            service = self.service_actor.urn()
        except (DataHubUnavailable, InvalidCursor) as exc:
            log.warning("active run of %s unknown: %s", dataset_urn, exc)
            return None
        for run_id in run_ids:
            record = records.get(run_id)
            if (
                record is None
                or record.request.executorId != self.executor_id
                or dataset_of(dict(record.request.args)) != dataset_urn  # a source run too
                or record.result is None
                or record.result.status != DataHubStatus.RUNNING
            ):
                continue
            requester = record.requester(service)
            return {
                "runId": run_id,
                "state": run_state(record.result.status).value,
                "startTimeMs": record.result.startTimeMs,
                "requestedBy": requester,
            }, requester
        return None

    def list_runs(
        self,
        caller: Caller,
        limit: int,
        dataset_urn: str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of this executor's runs, newest first: one search and one batch read,
        whatever `limit` (a page holds at most MAX_PAGE; a larger limit gets MAX_PAGE and a
        `nextCursor`). All runs for a holder of the run privilege, the
        caller's own for anyone else (the search asks for the caller's actorUrn, the writer
        check drops forged ones). `nextCursor` asks for the next page; a page may hold fewer
        than `limit` rows when runs of other datasets or forged ones were left out."""
        if dataset_urn is not None:
            try:
                dataset_urn = parse_dataset_urn(dataset_urn).urn
            except InvalidUrnError as exc:
                raise ApiError(400, "invalid_request", str(exc)) from exc
        privileged = may_start(self.settings, caller)
        try:
            run_ids, next_cursor = self._datahub(
                "list_runs",
                lambda: search_runs(
                    self.datahub,
                    self.executor_id,
                    count=min(limit, MAX_PAGE),
                    cursor=cursor,
                    actor_urn=None if privileged else caller.urn,
                ),
            )
        except InvalidCursor as exc:
            raise ApiError(
                400, "invalid_request", "cursor is not valid (ask page 1 again)"
            ) from exc
        records = self._read_runs(run_ids) if run_ids else {}
        service = self._service_actor() if records else None
        runs = []
        for run_id in run_ids:
            record = records.get(run_id)
            if record is None or record.request.executorId != self.executor_id:
                continue
            dataset = dataset_of(dict(record.request.args))
            if dataset_urn is not None and dataset != dataset_urn:
                continue
            requester = record.requester(service)
            if not may_read(self.settings, caller, requester):
                continue
            result = record.result
            runs.append(
                {
                    "runId": run_id,
                    "datasetUrn": dataset,
                    "state": run_state(result.status if result else None).value,
                    "startTimeMs": result.startTimeMs if result else None,
                    "durationMs": result.durationMs if result else None,
                    "requestedAt": record.request.requestedAt,
                    "requestedBy": requester,
                }
            )
        return {"runs": runs, "nextCursor": next_cursor}

    def cancel_run(self, caller: Caller, run_id: str) -> dict[str, Any]:
        """Same rule as starting a run. DataHub's KILL signal is written; the consumer stops a
        Step Functions execution (or a run not started yet) and ends it CANCELLED."""
        if not is_readable_run_id(run_id):
            raise ApiError(404, "run_not_found", "no such run")
        require_start(self.settings, caller)
        record = self._read_run(run_id)
        if record is None:
            raise ApiError(404, "run_not_found", "no such run")
        result = record.result
        if result is not None and is_final(result.status):
            raise ApiError(409, "already_finished", f"the run has already ended ({result.status})")
        kind = report_details(result).get("kind")
        if kind in ("lambda", "lambda-event"):
            raise ApiError(
                409,
                "not_cancellable",
                "a Lambda function cannot be stopped once it runs; only Step Functions "
                "runs (and runs not started yet) can be cancelled",
            )
        self._datahub(
            "write_signal",
            lambda: self.datahub.write_signal(run_id, self.executor_id, caller.urn),
        )
        log.info("run %s: cancel requested by %s", run_id, caller.urn)
        return {"runId": run_id, "status": "cancelling", "message": "cancel requested"}

    def run_status(self, caller: Caller, run_id: str) -> dict[str, Any]:
        if not is_readable_run_id(run_id):
            raise ApiError(404, "run_not_found", "no such run")
        record = self._read_run(run_id)
        if record is None:
            raise ApiError(404, "run_not_found", f"no run {run_id}")
        # The requester GMS authenticated, not the aspect's claim (issue 19).
        requester = record.requester(self._service_actor())
        require_read(self.settings, caller, requester)
        request, result = record.request, record.result
        status = result.status if result else None
        report = (result.report or "") if result else ""
        details = report_details(result)
        if is_final(status):
            details["cancellable"] = False
        answer = {
            "runId": run_id,
            "datasetUrn": dataset_of(dict(request.args)),
            "jobUrn": request.args.get("jobUrn"),
            "state": run_state(status).value,
            "datahubStatus": status,
            "requestedAt": request.requestedAt,
            "requestedBy": requester,
            "startTimeMs": result.startTimeMs if result else None,
            "durationMs": result.durationMs if result else None,
            "cancellable": result is None or bool(details.get("cancellable")),
            "duplicateOf": details.get("duplicateOf"),
            "parameters": run_parameters(request.args, details),
            # Reports are written by the consumer, which keeps AWS details out; redact again
            # in case an older consumer or another writer did not.
            "message": redact(report.splitlines()[0])
            if report
            else "waiting for the consumer to pick up the run",
        }
        if self.run_extras is not None:  # a "run with upstream" parent's children (upstream.py)
            answer.update(self.run_extras(record))
        return answer

    def targets(self, caller: Caller, dataset_urn: str) -> dict[str, Any]:
        try:
            dataset = parse_dataset_urn(dataset_urn)
        except InvalidUrnError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        check = self.check_target(dataset)
        active = self.active_run(dataset.urn) if check.available else None
        latest = last_run(self.datahub, dataset.urn) if check.dataset_found else None
        if latest and check.resolution and check.resolution.parameters is not None:
            # "Run again with the same parameters" in the button's last-run line
            latest["parameters"] = last_run_parameters(self.datahub, str(latest["runId"]))
        return {
            # Only to a caller who may read that run (its requester or a run-privilege holder).
            "activeRun": active[0]
            if active is not None and may_read(self.settings, caller, active[1])
            else None,
            # The newest run on the dataset's Runs tab (last_run.py), for after a page load.
            "lastRun": latest,
            "datasetUrn": dataset.urn,
            "available": check.available,
            "canRun": check.available and self.may_run(caller),
            "label": check.resolution.label if check.resolution else None,
            # the form the dialog renders (the schema's supported keywords only)
            "parameters": public_schema(check.resolution.parameters) if check.resolution else None,
            "reason": check.reason
            if not check.available
            else (
                None
                if self.may_run(caller)
                else "you lack the 'Manage Metadata Ingestion' privilege"
            ),
        }
