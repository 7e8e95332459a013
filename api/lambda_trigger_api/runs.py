"""Runs read from DataHub in batches, with the requester GMS authenticated (issue 19, item 5).

- `read_runs(ids)`: ONE call for any number of runs: Rest.li's batch get of EntityV2Resource,
  `GET /entitiesV2?ids=List(<urn>,...)&aspects=List(dataHubExecutionRequestInput,
  dataHubExecutionRequestResult)`, answered as `{results: {<urn>: {aspects: {<name>:
  EnvelopedAspect}}}, statuses, errors}`. An EnvelopedAspect carries `created {time, actor}`:
  the row's createdBy, the actor GMS authenticated for the write (EntityServiceImpl sets it from
  the ingest's AuditStamp), the same actor the MCL carries as `created.actor`, which is the
  writer the consumer checks.
- `search_runs(...)`: one page of this executor's run ids, newest `requestedAt` first, from
  GraphQL `scrollAcrossEntities` (`executorId` and `requestTimeMs` are @Searchable in
  ExecutionRequestInput.pdl, `executionResultStatus` in ExecutionRequestResult.pdl); the page's
  `nextScrollId` is the caller's cursor for the next page.
- `RunRecord.requester(service_actor)`: who the run is FOR, decided as the consumer decides it
  (lambda_trigger.contract.trusted_requester, shared with the consumer): the aspect's `actorUrn` is believed
  only when the api's own service principal wrote the request; anyone else who wrote it is the
  requester whatever `actorUrn` says. Shown as `requestedBy` and used to decide read access.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from datahub.configuration.common import GraphError, OperationalError
from datahub.metadata.schema_classes import (
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
)

from lambda_trigger.contract import DataHubStatus, trusted_requester
from lambda_trigger.datahub import DataHubClient, DataHubUnavailable
from lambda_trigger.gms_auth import TokenIdentityUnknown, token_actor
from lambda_trigger.settings import DataHubSettings
from lambda_trigger.urns import InvalidUrnError, execution_request_urn, run_id_of

log = logging.getLogger(__name__)

INPUT = ExecutionRequestInputClass.ASPECT_NAME
RESULT = ExecutionRequestResultClass.ASPECT_NAME
# Runs per page, and so URNs per batch read: the batch get is a GET whose URL lists them
# (~70 characters each, encoded); 50 stay far below Jetty's default 8 KiB request header limit.
MAX_PAGE = 50
# What `?limit=` accepts (the run panel asks 100): more than MAX_PAGE is served MAX_PAGE at a time.
MAX_LIMIT = 200
SEARCH_QUERY = """
query lambdaTriggerRuns($input: ScrollAcrossEntitiesInput!) {
  scrollAcrossEntities(input: $input) {
    nextScrollId
    searchResults { entity { urn } }
  }
}
"""


class InvalidCursor(ValueError):
    """DataHub refused the page cursor the caller sent."""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    request: ExecutionRequestInputClass
    result: ExecutionRequestResultClass | None
    writer: str | None  # created.actor of the request aspect: who GMS says wrote it

    def requester(self, service_actor: str | None) -> str | None:
        return trusted_requester(self.writer, self.request.actorUrn, service_actor)


def _envelope_value(envelope: Any) -> dict[str, Any] | None:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("value"), dict):
        return None
    value: dict[str, Any] = envelope["value"]
    return value


def _record(run_id: str, entity: Any) -> RunRecord | None:
    aspects = entity.get("aspects") if isinstance(entity, dict) else None
    if not isinstance(aspects, dict):
        return None
    request_json = _envelope_value(aspects.get(INPUT))
    if request_json is None:
        return None
    result_json = _envelope_value(aspects.get(RESULT))
    created = aspects[INPUT].get("created") or {}
    writer = created.get("actor") if isinstance(created, dict) else None
    try:
        request = ExecutionRequestInputClass.from_obj(request_json, tuples=False)
        result = (
            ExecutionRequestResultClass.from_obj(result_json, tuples=False)
            if result_json is not None
            else None
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("run %s: stored aspects do not parse: %s", run_id, exc)
        return None
    return RunRecord(run_id, request, result, str(writer) if writer else None)


def read_runs(datahub: DataHubClient, run_ids: list[str], timeout: float) -> dict[str, RunRecord]:
    """The stored request and result of each run that has a request, in ONE GMS call.
    May raise DataHubUnavailable."""
    if not run_ids:
        return {}
    urns = {execution_request_urn(run_id): run_id for run_id in run_ids}
    # Rest.li 2.0 list syntax: elements separated by a literal `,`, each percent-encoded.
    ids = ",".join(quote(urn, safe="") for urn in urns)
    url = (
        f"{datahub.settings.gms_url.rstrip('/')}/entitiesV2?ids=List({ids})"
        f"&aspects=List({INPUT},{RESULT})"
    )
    try:
        response = datahub.graph._session.get(
            url, timeout=timeout, headers={"X-RestLi-Protocol-Version": "2.0.0"}
        )
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DataHubUnavailable(f"batch read of {len(urns)} runs: {exc}") from exc
    results = body.get("results") if isinstance(body, dict) else None
    out: dict[str, RunRecord] = {}
    for urn, entity in (results or {}).items():
        run_id = urns.get(urn)
        if run_id is None:
            continue
        record = _record(run_id, entity)
        if record is not None:
            out[run_id] = record
    return out


def search_runs(
    datahub: DataHubClient,
    executor_id: str,
    *,
    count: int,
    cursor: str | None = None,
    actor_urn: str | None = None,
    running_only: bool = False,
) -> tuple[list[str], str | None]:
    """One page of run ids (newest request first) and the cursor of the next page (None at
    the end). `actor_urn` narrows to requests whose aspect names that actor (the claim, checked
    afterwards against the writer). May raise DataHubUnavailable or InvalidCursor."""
    criteria: list[dict[str, Any]] = [{"field": "executorId", "values": [executor_id]}]
    if actor_urn is not None:
        criteria.append({"field": "actorUrn", "values": [actor_urn]})
    if running_only:
        criteria.append({"field": "executionResultStatus", "values": [DataHubStatus.RUNNING.value]})
    variables = {
        "input": {
            "types": ["EXECUTION_REQUEST"],
            "query": "*",
            "count": max(1, min(count, MAX_PAGE)),
            "scrollId": cursor,
            "orFilters": [{"and": criteria}],
            "sortInput": {"sortCriterion": {"field": "requestTimeMs", "sortOrder": "DESCENDING"}},
        }
    }
    try:
        data = datahub.graph.execute_graphql(SEARCH_QUERY, variables=variables)
    except GraphError as exc:
        if cursor is not None:
            raise InvalidCursor(str(exc)) from exc
        raise DataHubUnavailable(f"searching runs: {exc}") from exc
    except (requests.RequestException, OperationalError) as exc:
        raise DataHubUnavailable(f"searching runs: {exc}") from exc
    scroll = (data or {}).get("scrollAcrossEntities") or {}
    run_ids: list[str] = []
    for hit in scroll.get("searchResults") or []:
        try:
            run_ids.append(run_id_of(str(hit["entity"]["urn"])))
        except (InvalidUrnError, KeyError, TypeError):
            continue
    next_cursor = scroll.get("nextScrollId")
    return run_ids, str(next_cursor) if next_cursor else None


class ServiceActor:
    """The principal of the api's own DATAHUB_GMS_TOKEN: the writer of every request the api
    writes. From `LAMBDA_TRIGGER_API_SERVICE_ACTOR`, else asked of GMS once (`me`)."""

    def __init__(self, settings: DataHubSettings, configured: str | None) -> None:
        self._settings = settings
        self._urn = configured
        self._lock = threading.Lock()

    def urn(self) -> str:
        """May raise DataHubUnavailable until GMS has answered once."""
        if self._urn is None:
            with self._lock:
                if self._urn is None:
                    self._urn = self._whoami()
                    log.info(
                        "api service principal: %s (the actor of DATAHUB_GMS_TOKEN)", self._urn
                    )
        return self._urn

    def _whoami(self) -> str:
        s = self._settings
        try:
            return token_actor(s.gms_url, s.gms_token, s.timeout_seconds)
        except TokenIdentityUnknown as exc:
            raise DataHubUnavailable(str(exc)) from exc
