"""Step 3: is this change a run request for us?

A request is an UPSERT (or CREATE) of `dataHubExecutionRequestInput` carrying this
project's executorId. RESTATE (index rebuilds re-emitting old aspects) and DELETE must never
start a run. DataHub's own UI ingestion requests carry executorId `default` and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lambda_trigger.contract import (
    INPUT_ASPECT,
    KILL_SIGNAL,
    SIGNAL_ASPECT,
    InvalidRequestError,
    RunRequest,
    trusted_requester,
)
from lambda_trigger.urns import InvalidUrnError, run_id_of
from lambda_trigger_consumer.decode import ChangeLog
from lambda_trigger_consumer.source_request import from_source_aspect, is_source_run

_RUN_CHANGE_TYPES = frozenset({"UPSERT", "CREATE"})


@dataclass(frozen=True)
class Invalid:
    """Ours (our executorId) but unusable: the run ends as FAILURE with this message."""

    run_id: str
    message: str


def to_request(change: ChangeLog, executor_id: str) -> RunRequest | Invalid | None:
    if change.aspect_name != INPUT_ASPECT or change.change_type not in _RUN_CHANGE_TYPES:
        return None
    if change.aspect is None or change.aspect.get("executorId") != executor_id:
        return None
    try:
        run_id = run_id_of(change.entity_urn)
    except InvalidUrnError:
        return None
    try:
        if is_source_run(change.aspect):  # DataHub's scheduler or "Run" (source_request.py)
            request = from_source_aspect(run_id, change.aspect)
        else:
            request = RunRequest.from_aspect(run_id, change.aspect)
    except InvalidRequestError as exc:
        return Invalid(run_id, str(exc))
    # GMS authenticated the writer (MCL `created.actor`); the aspect's actorUrn is only a
    # claim, believed or replaced by `with_trusted_requester` before anything runs.
    return replace(request, writer_urn=change.actor, actor_urn=request.actor_urn or change.actor)


def with_trusted_requester(request: RunRequest, service_actor: str | None) -> RunRequest:
    """The requester a run is recorded and authorised as (contract.trusted_requester)."""
    requester = trusted_requester(request.writer_urn, request.actor_urn, service_actor)
    return request if requester == request.actor_urn else replace(request, actor_urn=requester)


@dataclass(frozen=True)
class CancelSignal:
    """A KILL written as `dataHubExecutionRequestSignal` for one of our runs, as DataHub's
    CancelIngestionExecutionRequestResolver writes it: signal KILL, executorId copied from the
    ingestion source's config (left out when it has none), createdAt {time, actor}."""

    run_id: str
    actor: str | None


def to_signal(change: ChangeLog, executor_id: str) -> CancelSignal | None:
    if change.aspect_name != SIGNAL_ASPECT or change.change_type not in _RUN_CHANGE_TYPES:
        return None
    aspect = change.aspect or {}
    if aspect.get("signal") != KILL_SIGNAL or aspect.get("executorId") not in (executor_id, None):
        return None
    try:
        run_id = run_id_of(change.entity_urn)
    except InvalidUrnError:
        return None
    created = aspect.get("createdAt")
    stamped = created.get("actor") if isinstance(created, dict) else None
    # GMS's audit stamp of the write is who asked; the aspect's own stamp is client-supplied.
    return CancelSignal(run_id, change.actor or stamped)
