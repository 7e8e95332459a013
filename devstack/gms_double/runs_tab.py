"""The dataset page's Runs tab, as GMS's GraphQL answers it: `dataset(urn) { runs(...) }`.

What the UI sends: datahub-web-react/src/app/entityV2/dataset/profile/OperationsTab.tsx runs
`getDatasetRuns(urn, start, count, direction: OUTGOING)` (src/graphql/dataset.graphql) with the
`runResults` fragment (src/graphql/dataProcessInstance.graphql): per run `urn type created {time
actor} name state(startTimeMillis, endTimeMillis, limit: 1) {status attempt result {resultType
nativeResultType} timestampMillis} inputs/outputs/parentTemplate: relationships(input: {types:
["Consumes"|"Produces"|"InstanceOf"], direction: OUTGOING, ...}) externalUrl`.

What GMS does (datahub-graphql-core/src/main/java/com/linkedin/datahub/graphql/resolvers/jobs/
EntityRunsResolver.java): searches `dataProcessInstance` with `outputs.keyword` EQUAL the
dataset (direction OUTGOING; INCOMING searches `inputs.keyword`), sorted by `created`
DESCENDING, `start`/`count` (defaults 0 and 20); then batch-gets the instances and maps them
(DataProcessInstanceMapper): `name` and `created` from dataProcessInstanceProperties,
`externalUrl` from it too; `state` reads the timeseries dataProcessInstanceRunEvent
(DataProcessInstanceRunEventMapper: status, attempt, result.type as resultType,
nativeResultType, timestampMillis, durationMillis). `relationships` walks the graph edges the
aspects' @Relationship annotations make: `Produces` (outputs), `Consumes` (inputs),
`InstanceOf` (dataProcessInstanceRelationships.parentTemplate).

The slice modelled: the fields above with `entity { urn type }` on relationships (not the
Dataset/DataJob sub-selections of `runRelationshipResults`). The double keeps one (the latest)
run event per instance, so `state(limit: n)` has at most one element.
"""

from __future__ import annotations

from typing import Any

from devstack.gms_double.search import SearchIndex, graphql_entity_types
from devstack.gms_double.store import AspectStore

SDL = """
scalar Long

enum RelationshipDirection {
  INCOMING
  OUTGOING
}

extend type Query {
  dataset(urn: String!): Dataset
}

extend type Dataset {
  runs(start: Int, count: Int, direction: RelationshipDirection): DataProcessInstanceResult
}

type DataProcessInstanceResult {
  start: Int
  count: Int
  total: Int
  runs: [DataProcessInstance]
}

type DataProcessInstance implements Entity {
  urn: String!
  type: EntityType!
  name: String
  created: AuditStamp
  externalUrl: String
  state(startTimeMillis: Long, endTimeMillis: Long, limit: Int): [DataProcessRunEvent]
  relationships(input: RelationshipsInput!): EntityRelationshipsResult
}

type DataJob implements Entity {
  urn: String!
  type: EntityType!
}

type AuditStamp {
  time: Long!
  actor: String
}

type DataProcessRunEvent {
  status: DataProcessRunStatus
  attempt: Int
  result: DataProcessInstanceRunResult
  timestampMillis: Long!
  durationMillis: Long
}

enum DataProcessRunStatus {
  STARTED
  COMPLETE
}

type DataProcessInstanceRunResult {
  resultType: DataProcessInstanceRunResultType
  nativeResultType: String
}

enum DataProcessInstanceRunResultType {
  SUCCESS
  FAILURE
  SKIPPED
  UP_FOR_RETRY
}

input RelationshipsInput {
  types: [String!]!
  direction: RelationshipDirection!
  start: Int
  count: Int
  includeSoftDelete: Boolean
}

type EntityRelationshipsResult {
  start: Int
  count: Int
  total: Int
  relationships: [EntityRelationship!]!
}

type EntityRelationship {
  type: String!
  direction: RelationshipDirection!
  entity: Entity
}
"""

TYPENAMES = {"DATA_PROCESS_INSTANCE": "DataProcessInstance", "DATA_JOB": "DataJob"}

_DPI = "dataProcessInstance"
# @Relationship name -> (aspect, field) of a dataProcessInstance (DataProcessInstanceInput.pdl,
# DataProcessInstanceOutput.pdl, DataProcessInstanceRelationships.pdl).
_EDGES = {
    "Consumes": ("dataProcessInstanceInput", "inputs"),
    "Produces": ("dataProcessInstanceOutput", "outputs"),
    "InstanceOf": ("dataProcessInstanceRelationships", "parentTemplate"),
}


def _graphql_type(urn: str) -> str:
    entity = urn.split(":", 3)[2] if urn.count(":") >= 3 else ""
    by_name = {v: k for k, v in graphql_entity_types().items()}
    return by_name.get(entity, "DATASET")


def _value(store: AspectStore, urn: str, aspect: str) -> dict[str, Any]:
    row = store.latest(urn, aspect)
    return row.value if row is not None else {}


def _removed(store: AspectStore, urn: str) -> bool:
    return bool(_value(store, urn, "status").get("removed"))


def instance(store: AspectStore, urn: str) -> dict[str, Any]:
    """DataProcessInstanceMapper.map, for the modelled fields."""
    props = _value(store, urn, "dataProcessInstanceProperties")

    def state(_info: Any, **_args: Any) -> list[dict[str, Any]]:
        row = store.timeseries_latest(urn, "dataProcessInstanceRunEvent")
        if row is None:
            return []
        event = row.value
        result = event.get("result")
        return [
            {
                "status": event.get("status"),
                "attempt": event.get("attempt"),
                "timestampMillis": event.get("timestampMillis"),
                "durationMillis": event.get("durationMillis"),
                "result": {
                    "resultType": result.get("type"),
                    "nativeResultType": result.get("nativeResultType"),
                }
                if isinstance(result, dict)
                else None,
            }
        ]

    def relationships(_info: Any, input: dict[str, Any]) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        if input["direction"] == "OUTGOING":
            for kind in input["types"]:
                aspect, field = _EDGES.get(kind, ("", ""))
                targets = _value(store, urn, aspect).get(field) if aspect else None
                for target in targets if isinstance(targets, list) else [targets]:
                    if isinstance(target, str):
                        found.append(
                            {
                                "type": kind,
                                "direction": "OUTGOING",
                                "entity": {"urn": target, "type": _graphql_type(target)},
                            }
                        )
        start, count = input.get("start") or 0, input.get("count") or 200
        page = found[start : start + count]
        return {"start": start, "count": len(page), "total": len(found), "relationships": page}

    created = props.get("created") or {}
    return {
        "urn": urn,
        "type": "DATA_PROCESS_INSTANCE",
        "name": props.get("name"),
        "created": {"time": created.get("time", 0), "actor": created.get("actor")}
        if props
        else None,
        "externalUrl": props.get("externalUrl"),
        "state": state,
        "relationships": relationships,
    }


# application.yaml searchService.limit.results.max (SEARCH_SERVICE_LIMIT_RESULTS_MAX), default.
SEARCH_RESULTS_LIMIT = 10000


def entity_runs(
    store: AspectStore, entity_urn: str, start: int, count: int, direction: str
) -> dict[str, Any]:
    """EntityRunsResolver.get: filter on inputs/outputs, sort by created desc, page."""
    aspect, field = (
        ("dataProcessInstanceInput", "inputs")
        if direction == "INCOMING"
        else ("dataProcessInstanceOutput", "outputs")
    )
    matches: list[tuple[int, str]] = []
    for urn in store.urns():
        if not urn.startswith(f"urn:li:{_DPI}:") or _removed(store, urn):
            continue
        if entity_urn in (_value(store, urn, aspect).get(field) or []):
            created = _value(store, urn, "dataProcessInstanceProperties").get("created") or {}
            matches.append((int(created.get("time") or 0), urn))
    matches.sort(key=lambda m: (-m[0], m[1]))
    page = matches[start : start + count]
    return {
        "start": start,
        # result.setCount(gmsResult.getPageSize()): SearchRequestHandler.extractResult sets
        # pageSize = ConfigUtils.applyLimit(searchServiceConfig, size), the requested count
        # capped at the search limit (metadata-io/.../search/elasticsearch/query/request/
        # SearchRequestHandler.java @ 009bd3cc5c6d43669dadf96ce7bbbd883dd6ff7c), not the number
        # of runs on the page.
        "count": min(count, SEARCH_RESULTS_LIMIT),
        "total": len(matches),
        "runs": [instance(store, urn) for _time, urn in page],
    }


def root_values(search: SearchIndex | None) -> dict[str, Any]:
    """Query fields this module adds (merged into gql.execute's root value)."""

    def dataset(_info: Any, urn: str) -> dict[str, Any] | None:
        if search is None:
            return None
        store = search._store
        if store.latest(urn, "datasetKey") is None and not store.aspect_names(urn):
            return None  # DatasetType.batchLoad: no entity, null

        def runs(
            _info: Any, start: int = 0, count: int = 20, direction: str = "INCOMING"
        ) -> dict[str, Any]:
            return entity_runs(store, urn, start or 0, count or 20, direction or "INCOMING")

        return {"urn": urn, "type": "DATASET", "runs": runs}

    return {"dataset": dataset}
