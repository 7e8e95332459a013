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
from lambda_trigger.sources import dataset_of
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
    ) -> None:
        self.auth_mode = auth_mode
        self.rate_limiter = rate_limiter
        self.settings = settings
        self.datahub = datahub
        self.identity = identity
        self.mappings = mappings
        self.metrics = metrics
        self.executor_id = executor_id
        self.job_arn_property_urn = job_arn_property_urn
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
        if self.rate_limiter is not None:
            wait = self.rate_limiter.check(caller.urn)
            if wait is not None:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many runs started by {caller.username or caller.urn}: "
                    f"try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
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
                "runId": active["runId"],
                "status": "started",
                "alreadyActive": True,
                "message": "A run of this dataset is already in progress; showing it",
            }
        request = RunRequest(
            run_id=new_run_id(),
            dataset_urn=dataset.urn,
            executor_id=self.executor_id,
            source_type=SourceType.API.value,
            requested_at_ms=now_ms(),
            job_urn=job,
            reason=(reason or "").strip() or None,
            actor_urn=caller.urn,
            extra_args=extra_args,
        )
        try:
            self._datahub("write_request", lambda: self.datahub.write_request(request))
        except ApiError:
            raise
        except (WriteRejected, PreconditionFailed) as exc:
            log.warning("run %s: DataHub refused the request write: %s", request.run_id, exc)
            raise ApiError(502, "datahub_rejected", "DataHub refused the run request") from exc
        self.metrics.runs_requested.labels(source=SourceType.API.value).inc()
        if self.rate_limiter is not None:
            self.rate_limiter.record(caller.urn)
        label = check.resolution.label if check.resolution else DEFAULT_LABEL
        log.info("run %s requested by %s for %s", request.run_id, caller.urn, dataset.urn)
        return {
            "runId": request.run_id,
            "status": "started",
            "alreadyActive": False,
            "message": f"{label} requested",
        }

    def active_run(self, dataset_urn: str) -> dict[str, Any] | None:
        """The dataset's RUNNING run, from DataHub's search index (`executionResultStatus`).
        Best effort: the index lags a moment, and the consumer has the last word."""
        try:
            run_ids = self.datahub.running_run_ids()
            for run_id in run_ids:
                request = self.datahub.read_request(run_id)
                if (
                    request is None
                    or request.executorId != self.executor_id
                    or dataset_of(dict(request.args)) != dataset_urn  # a source run too
                ):
                    continue
                result = self.datahub.read_result(run_id)
                if result is None or result.status != DataHubStatus.RUNNING:
                    continue
                return {
                    "runId": run_id,
                    "state": run_state(result.status).value,
                    "startTimeMs": result.startTimeMs,
                    "requestedBy": request.actorUrn,
                }
        except DataHubUnavailable as exc:
            log.warning("active run of %s unknown: %s", dataset_urn, exc)
        return None

    def list_runs(
        self, caller: Caller, limit: int, dataset_urn: str | None = None
    ) -> dict[str, Any]:
        """Recent runs of this executor, newest first: all of them for a holder of the run
        privilege, a user's own runs for anyone else. Labels and states only."""
        if dataset_urn is not None:
            try:
                dataset_urn = parse_dataset_urn(dataset_urn).urn
            except InvalidUrnError as exc:
                raise ApiError(400, "invalid_request", str(exc)) from exc
        run_ids = self._datahub("list_runs", lambda: self.datahub.execution_request_ids(200))
        rows: list[dict[str, Any]] = []
        for run_id in run_ids:
            request = self._datahub("read_request", lambda r=run_id: self.datahub.read_request(r))  # type: ignore[misc]
            if request is None or request.executorId != self.executor_id:
                continue
            dataset = dataset_of(dict(request.args))
            if dataset_urn is not None and dataset != dataset_urn:
                continue
            if not may_read(self.settings, caller, request.actorUrn):
                continue
            rows.append({"runId": run_id, "request": request})
        rows.sort(key=lambda row: row["request"].requestedAt, reverse=True)
        runs = []
        for row in rows[:limit]:
            run_id, request = row["runId"], row["request"]
            result = self._datahub("read_result", lambda r=run_id: self.datahub.read_result(r))  # type: ignore[misc]
            runs.append(
                {
                    "runId": run_id,
                    "datasetUrn": dataset_of(dict(request.args)),
                    "state": run_state(result.status if result else None).value,
                    "startTimeMs": result.startTimeMs if result else None,
                    "durationMs": result.durationMs if result else None,
                    "requestedAt": request.requestedAt,
                    "requestedBy": request.actorUrn,
                }
            )
        return {"runs": runs}

    def cancel_run(self, caller: Caller, run_id: str) -> dict[str, Any]:
        """Same rule as starting a run. DataHub's KILL signal is written; the consumer stops a
        Step Functions execution (or a run not started yet) and ends it CANCELLED."""
        if not is_readable_run_id(run_id):
            raise ApiError(404, "run_not_found", "no such run")
        require_start(self.settings, caller)
        request = self._datahub("read_request", lambda: self.datahub.read_request(run_id))
        if request is None or request.executorId != self.executor_id:
            raise ApiError(404, "run_not_found", "no such run")
        result = self._datahub("read_result", lambda: self.datahub.read_result(run_id))
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
        request = self._datahub("read_request", lambda: self.datahub.read_request(run_id))
        if request is None or request.executorId != self.executor_id:
            raise ApiError(404, "run_not_found", f"no run {run_id}")
        require_read(self.settings, caller, request.actorUrn)
        result = self._datahub("read_result", lambda: self.datahub.read_result(run_id))
        status = result.status if result else None
        report = (result.report or "") if result else ""
        details = report_details(result)
        if is_final(status):
            details["cancellable"] = False
        return {
            "runId": run_id,
            "datasetUrn": dataset_of(dict(request.args)),
            "jobUrn": request.args.get("jobUrn"),
            "state": run_state(status).value,
            "datahubStatus": status,
            "requestedAt": request.requestedAt,
            "requestedBy": request.actorUrn,
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

    def targets(self, caller: Caller, dataset_urn: str) -> dict[str, Any]:
        try:
            dataset = parse_dataset_urn(dataset_urn)
        except InvalidUrnError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        check = self.check_target(dataset)
        latest = last_run(self.datahub, dataset.urn) if check.dataset_found else None
        if latest and check.resolution and check.resolution.parameters is not None:
            # "Run again with the same parameters" in the button's last-run line
            latest["parameters"] = last_run_parameters(self.datahub, str(latest["runId"]))
        return {
            "activeRun": self.active_run(dataset.urn) if check.available else None,
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
