# "Run with upstream" in the api: the plan, the parent request, and a parent's children.
"""POST /api/ingestion/plan, POST /api/ingestion/run {withUpstream: true}, and the `children`
of a parent run in GET /api/ingestion/runs/{runId} (docs/triggers.md#run-with-upstream).

The api only plans and writes the parent execution request (source type UPSTREAM_PLAN, the
plan in `args.upstreamPlan`); the consumer runs the waves (it holds the AWS credentials and the
run ledger) and builds the plan again before it starts anything.

Who may: the same check as POST /run (`manageIngestion`, or any signed-in user with
LAMBDA_TRIGGER_API_REQUIRED_PRIVILEGE=authenticated). That right is global, not per dataset,
so a caller allowed to run the requested dataset may run every upstream and `not_allowed` does
not occur today; the plan builder keeps the reason for per-dataset rights.
"""

from __future__ import annotations

import logging
from typing import Any

from lambda_trigger.contract import RunRequest, SourceType, is_final, now_ms, report_details
from lambda_trigger.datahub import PreconditionFailed, WriteRejected
from lambda_trigger.mapping import DEFAULT_LABEL
from lambda_trigger.runid import new_run_id
from lambda_trigger.sanitize import describe_char, hostile_char
from lambda_trigger.sources import dataset_of
from lambda_trigger.upstream_plan import (
    ARG_PLAN,
    MAX_DEPTH,
    MIN_DEPTH,
    PLAN_SOURCE_TYPE,
    Plan,
    PlanError,
    build_plan,
    child_run_id,
    decode_plan,
)
from lambda_trigger.urns import DatasetUrn, InvalidUrnError, parse_dataset_urn
from lambda_trigger_api.access import may_start, require_start
from lambda_trigger_api.errors import ApiError
from lambda_trigger_api.identity import Caller
from lambda_trigger_api.runs import RunRecord
from lambda_trigger_api.service import RunService

log = logging.getLogger(__name__)
PENDING = "PENDING"  # DataHub's status for a request no executor has picked up yet
SKIPPED = "SKIPPED"  # never started: an earlier wave failed (DataHub's DPI run result SKIPPED)


def _depth(service: RunService, max_depth: object) -> int:
    if max_depth is None:
        return service.settings.upstream_max_depth
    if (
        not isinstance(max_depth, int)
        or isinstance(max_depth, bool)
        or not MIN_DEPTH <= max_depth <= MAX_DEPTH
    ):
        raise ApiError(
            400, "invalid_request", f"maxDepth must be an integer from {MIN_DEPTH} to {MAX_DEPTH}"
        )
    return max_depth


def _checked_dataset(service: RunService, caller: Caller, dataset_urn: object) -> DatasetUrn:
    """The requested dataset, with the same checks as POST /run (caller, dataset, target)."""
    try:
        dataset = parse_dataset_urn(dataset_urn)
    except InvalidUrnError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    require_start(service.settings, caller)
    check = service.check_target(dataset)
    if not check.available:
        if not check.dataset_found:
            raise ApiError(404, "dataset_not_found", f"{dataset.urn}: {check.reason}")
        raise ApiError(422, "no_target", f"{dataset.urn}: {check.reason}")
    return dataset


def _build(service: RunService, caller: Caller, dataset: DatasetUrn, depth: int) -> Plan:
    def mapped(urn: str) -> bool:
        try:
            return service.check_target(parse_dataset_urn(urn)).available
        except InvalidUrnError:
            return False  # a lineage edge to something that is not a dataset URN we accept

    def upstreams(urn: str) -> list[str] | None:
        return service._datahub("lineage", lambda: service.datahub.upstreams(urn))

    try:
        return build_plan(
            dataset.urn, depth, upstreams, mapped, lambda _urn: may_start(service.settings, caller)
        )
    except PlanError as exc:
        raise ApiError(422, "plan_too_large", str(exc)) from exc


def plan(
    service: RunService, caller: Caller, dataset_urn: object, max_depth: object
) -> dict[str, Any]:
    depth = _depth(service, max_depth)
    dataset = _checked_dataset(service, caller, dataset_urn)
    return _build(service, caller, dataset, depth).to_public()


def request_with_upstream(
    service: RunService,
    caller: Caller,
    dataset_urn: object,
    max_depth: object,
    reason: str | None,
) -> dict[str, Any]:
    """Write the parent request; the consumer runs its waves. Counts as one run in the
    caller's rate limit (each child is a run the consumer starts on their behalf)."""
    depth = _depth(service, max_depth)
    bad = hostile_char(reason) if reason else None
    if bad is not None:
        raise ApiError(400, "invalid_request", f"reason must not contain {describe_char(bad)}")
    dataset = _checked_dataset(service, caller, dataset_urn)
    slot = None
    if service.rate_limiter is not None:
        slot, wait = service.rate_limiter.reserve(caller.urn)
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"too many runs started by {caller.username or caller.urn}: try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
    written = False
    try:
        the_plan = _build(service, caller, dataset, depth)
        source = service._datahub(
            "ingestion_source",
            lambda: service.first_use_sources.ensure(
                service.datahub, dataset.urn, "first-use", DEFAULT_LABEL
            ),
        )
        request = RunRequest(
            run_id=new_run_id(),
            dataset_urn=dataset.urn,
            executor_id=service.executor_id,
            source_type=PLAN_SOURCE_TYPE,
            requested_at_ms=now_ms(),
            reason=(reason or "").strip() or None,
            actor_urn=caller.urn,
            ingestion_source=source,
            extra_args={ARG_PLAN: the_plan.encode()},
        )
        try:
            service._datahub("write_request", lambda: service.datahub.write_request(request))
        except (WriteRejected, PreconditionFailed) as exc:
            log.warning("plan %s: DataHub refused the request write: %s", request.run_id, exc)
            raise ApiError(502, "datahub_rejected", "DataHub refused the run request") from exc
        written = True
    finally:
        if slot is not None and not written:
            assert service.rate_limiter is not None
            service.rate_limiter.release(slot)
    service.metrics.runs_requested.labels(source=SourceType.API.value).inc()  # the api wrote it
    log.info(
        "run %s with upstream (%d runs in %d waves) requested by %s for %s",
        request.run_id,
        the_plan.runs,
        len(the_plan.waves),
        caller.urn,
        dataset.urn,
    )
    return {
        "runId": request.run_id,
        "status": "started",
        "alreadyActive": False,
        "message": f"{the_plan.runs} runs in {len(the_plan.waves)} waves requested",
        "plan": the_plan.to_public(),
    }


def is_parent(record: RunRecord) -> bool:
    source = record.request.source
    return source is not None and source.type == PLAN_SOURCE_TYPE


def children(service: RunService, record: RunRecord) -> list[dict[str, Any]]:
    """A parent's children, from its plan (child ids are derived, never read from a claim)
    and each child's stored status. A child with no request yet is PENDING while the parent
    runs; after the parent ended it is what the consumer's report says (SKIPPED after a
    failure, CANCELLED after a cancel)."""
    args = dict(record.request.args)
    try:
        the_plan = decode_plan(str(args.get("datasetUrn")), args.get(ARG_PLAN))
    except PlanError:
        return []
    ids = [
        (wave, urn, child_run_id(record.run_id, urn))
        for wave, urns in enumerate(the_plan.waves)
        for urn in urns
    ]
    stored = service._read_runs([i for _w, _u, i in ids])
    parent_status = record.result.status if record.result else None
    reported = {
        str(c.get("runId")): str(c.get("status"))
        for c in report_details(record.result).get("children") or []
        if isinstance(c, dict)
    }
    out = []
    for wave, urn, run_id in ids:
        child = stored.get(run_id)
        if child is not None and dataset_of(dict(child.request.args)) != urn:
            child = None  # a request someone else wrote under that id is not this child
        if child is not None and child.result is not None:
            state = child.result.status
        elif child is not None:
            state = PENDING
        elif is_final(parent_status):
            state = reported.get(run_id, SKIPPED)
        else:
            state = PENDING
        out.append({"runId": run_id, "datasetUrn": urn, "wave": wave, "status": state})
    return out
