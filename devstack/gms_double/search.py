"""The search GMS answers from its Elasticsearch index, computed from the double's store.

What the SDK's `DataHubGraph.get_urns_by_filter` sends (acryl-datahub 1.7.0.17,
`datahub/ingestion/graph/client.py`): GraphQL `scrollAcrossEntities(input: {query, count,
scrollId, types, orFilters, sortInput, searchFlags})` selecting `nextScrollId` and
`searchResults { entity { urn } extraProperties { name value } }`, then the next page while
`nextScrollId` is set. GMS side:

- Documents: one per entity, built by the search indexer from the `@Searchable` fields of the
  entity's aspects (metadata-io/.../search/transformer/SearchDocumentTransformer.java); the field
  name is the annotation's `fieldName`, else the PDL field name. The wheel keeps each annotation
  in the aspect's Avro schema (e.g. ExecutionRequestResult.avsc: `status` is searchable as
  `executionResultStatus`, KEYWORD), so the double reads them from there. `removed` comes from
  the `status` aspect the same way. Only top-level fields are indexed here.
- Filters (datahub-graphql-core ResolverUtils.buildFilter, metadata-io ESUtils.getQueryBuilder
  FromCriterion): `orFilters` is a disjunction of conjunctions; a criterion matches when the
  field has one of `values` (EQUAL, the default, and IN), or has any value (EXISTS); `negated`
  inverts it. Soft-deleted documents (`removed` = true) are left out unless
  `searchFlags.includeSoftDeleted` (SearchRequestHandler's soft-delete filter).
- Order and pages (ESSearchDAO.scroll / ESUtils.buildSortOrder): by score, then by urn; with the
  query `*` every score is equal, so by urn; `sortInput` sorts by each criterion's field in its
  order (ASCENDING or DESCENDING; numbers as numbers, as in ES's long-typed COUNT and DATETIME
  fields; a document without the field last, ES's default `missing: _last`), then by urn
  ascending as the tie-breaker buildSortOrder always adds. A full page
  carries a `nextScrollId` (a search_after pointer), so the page after an exactly full last page
  is empty with `nextScrollId` null.

Not modelled (a GraphQL error names it): free-text queries other than `*`, conditions other than
EQUAL / IN / EXISTS, nested fields, views, facets, highlighting, `fetchExtraFields` (its
`extraProperties` are always empty).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from datahub.ingestion.graph.client import entity_type_to_graphql

from devstack.gms_double import entity_registry as reg
from devstack.gms_double.store import AspectStore

DEFAULT_COUNT = 10  # ScrollAcrossEntitiesResolver: DEFAULT_COUNT
_SCROLL_PREFIX = "gms-double:"


class SearchNotModelled(Exception):
    """A search the double cannot answer faithfully; surfaced as a GraphQL error."""


@dataclass(frozen=True)
class Hit:
    urn: str
    entity_type: str  # GraphQL EntityType name


@dataclass(frozen=True)
class ScrollPage:
    hits: list[Hit]
    total: int
    next_scroll_id: str | None


@cache
def graphql_entity_types() -> dict[str, str]:
    """GraphQL EntityType -> entity name (GMS: EntityTypeMapper; e.g. EXECUTION_REQUEST ->
    dataHubExecutionRequest), derived with the SDK's own conversion of the registry's names."""
    return {entity_type_to_graphql(name): name for name in reg.entity_type_names()}


@cache
def _searchable_fields(aspect_name: str) -> tuple[tuple[str, str], ...]:
    """(PDL field, index field name) of an aspect's top-level @Searchable fields."""
    cls = reg.aspect_class(aspect_name)
    if cls is None:
        return ()
    out = []
    for f in cls.RECORD_SCHEMA.to_json().get("fields", []):
        annotation = f.get("Searchable")
        if isinstance(annotation, dict):
            out.append((f["name"], str(annotation.get("fieldName") or f["name"])))
    return tuple(out)


def _as_terms(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [t for v in value for t in _as_terms(v)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, dict):
        return []  # nested records are not indexed by the double
    return [str(value)]


class SearchIndex:
    """Documents are computed on each query from the store (no separate index to keep in step,
    which GMS's asynchronous indexing would only make lag behind)."""

    def __init__(self, store: AspectStore) -> None:
        self._store = store

    def document(self, urn: str) -> dict[str, list[str]]:
        doc: dict[str, list[str]] = {"urn": [urn]}
        for aspect in self._store.aspect_names(urn):
            row = self._store.latest(urn, aspect)
            if row is None:
                continue
            for pdl_name, field_name in _searchable_fields(aspect):
                terms = _as_terms(row.value.get(pdl_name))
                if terms:
                    doc.setdefault(field_name, []).extend(terms)
        return doc

    def scroll(
        self,
        *,
        types: list[str] | None,
        query: str,
        or_filters: list[dict[str, Any]] | None,
        count: int | None,
        scroll_id: str | None,
        include_soft_deleted: bool,
        sort: list[dict[str, Any]] | None = None,
    ) -> ScrollPage:
        if query.strip() not in ("", "*"):
            raise SearchNotModelled(
                f"GMS test double: only the query '*' is modelled, not {query!r}"
            )
        wanted = self._entity_names(types)
        hits: list[tuple[dict[str, list[str]], Hit]] = []
        by_name = {v: k for k, v in graphql_entity_types().items()}
        for urn in self._store.urns():
            entity = reg.parse_urn(urn).entity_type
            spec = reg.entity_spec(entity)
            if spec is None or spec.name not in wanted:
                continue
            if self._store.latest(urn, spec.key_aspect) is None:
                continue  # no key aspect: not an entity GMS would have indexed
            doc = self.document(urn)
            if not include_soft_deleted and "true" in doc.get("removed", []):
                continue
            if or_filters and not any(_matches_all(doc, g.get("and") or []) for g in or_filters):
                continue
            hits.append((doc, Hit(urn, by_name[spec.name])))
        hits = _sorted(hits, sort)
        size = DEFAULT_COUNT if count is None else max(0, count)
        start = _decode_scroll_id(scroll_id)
        page = [hit for _, hit in hits[start : start + size]]
        full = size > 0 and len(page) == size
        return ScrollPage(page, len(hits), _encode_scroll_id(start + size) if full else None)

    @staticmethod
    def _entity_names(types: list[str] | None) -> set[str]:
        known = graphql_entity_types()
        if not types:
            return set(known.values())
        return {known[t] for t in types if t in known}


def _matches_all(doc: dict[str, list[str]], criteria: list[dict[str, Any]]) -> bool:
    return all(_matches(doc, c) for c in criteria)


def _matches(doc: dict[str, list[str]], criterion: dict[str, Any]) -> bool:
    field = str(criterion.get("field", ""))
    if field.endswith(".keyword"):
        field = field[: -len(".keyword")]
    condition = criterion.get("condition") or "EQUAL"
    values = criterion.get("values")
    if values is None and criterion.get("value") is not None:
        values = [criterion["value"]]
    present = doc.get(field, [])
    if condition in ("EQUAL", "IN"):
        result = any(str(v) in present for v in (values or []))
    elif condition == "EXISTS":
        result = bool(present)
    else:
        raise SearchNotModelled(f"GMS test double: filter condition {condition} is not modelled")
    return not result if criterion.get("negated") else result


def _sort_value(value: str) -> tuple[int, Any]:
    try:
        return (0, float(value))  # COUNT / DATETIME fields are numbers in the index
    except ValueError:
        return (1, value)


def _sorted(
    hits: list[tuple[dict[str, list[str]], Hit]], sort: list[dict[str, Any]] | None
) -> list[tuple[dict[str, list[str]], Hit]]:
    """Stable sorts, last key first: urn ascending, then each criterion from the last one."""
    out = sorted(hits, key=lambda pair: pair[0]["urn"][0])
    for criterion in reversed(sort or []):
        field = str(criterion.get("field"))
        descending = criterion.get("sortOrder") == "DESCENDING"
        present = [pair for pair in out if pair[0].get(field)]
        missing = [pair for pair in out if not pair[0].get(field)]
        present.sort(key=lambda pair: _sort_value(pair[0][field][0]), reverse=descending)
        out = present + missing  # missing: _last, whatever the order
    return out


def _encode_scroll_id(offset: int) -> str:
    return base64.urlsafe_b64encode(
        (_SCROLL_PREFIX + json.dumps({"from": offset})).encode()
    ).decode()


def _decode_scroll_id(scroll_id: str | None) -> int:
    if not scroll_id:
        return 0
    try:
        text = base64.urlsafe_b64decode(scroll_id.encode()).decode()
        if not text.startswith(_SCROLL_PREFIX):
            raise ValueError(text)
        return int(json.loads(text[len(_SCROLL_PREFIX) :])["from"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SearchNotModelled(f"Invalid scrollId {scroll_id!r}") from exc
