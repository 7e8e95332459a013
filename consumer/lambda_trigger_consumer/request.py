"""Step 3: is this change a run request for us?

A request is an UPSERT (or CREATE) of `dataHubExecutionRequestInput` carrying this
project's executorId. RESTATE (index rebuilds re-emitting old aspects) and DELETE must never
start a run. DataHub's own UI ingestion requests carry executorId `default` and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lambda_trigger.contract import INPUT_ASPECT, InvalidRequestError, RunRequest
from lambda_trigger.urns import InvalidUrnError, run_id_of
from lambda_trigger_consumer.decode import ChangeLog

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
        request = RunRequest.from_aspect(run_id, change.aspect)
    except InvalidRequestError as exc:
        return Invalid(run_id, str(exc))
    if request.actor_urn is None and change.actor:
        # SDK callers may leave actorUrn out; GMS's audit stamp says who wrote it.
        request = replace(request, actor_urn=change.actor)
    return request
