"""The slice of DataHub's GraphQL API the project and its users need: `me` and
`scrollAcrossEntities`.

The schema below is copied from datahub-graphql-core/src/main/resources/app.graphql
(`Query.me: AuthenticatedUser`, `AuthenticatedUser`, `PlatformPrivileges`), entity.graphql
(`EntityType`, the `Entity` interface, `CorpUser.urn/type/username`) and search.graphql
(`scrollAcrossEntities(input: ScrollAcrossEntitiesInput!): ScrollResults`, its inputs
`AndFilterInput`, `FacetFilterInput`, `FilterOperator`, `SearchFlags`, `SearchSortInput`, and
`ScrollResults` / `SearchResult` / `ExtraProperty`); MeResolver fills `platformPrivileges` from
the actor's policies, ScrollAcrossEntitiesResolver runs the search (search.py). EntityType lists
every entity of the registry under its GraphQL name.
Queries are parsed, validated and executed by graphql-core, so field selection, aliases,
fragments and variables behave as with graphql-java; anything outside this slice fails
validation (`Cannot query field ...`), returned as a normal GraphQL error with HTTP 200 as GMS's
GraphQLController does, and marked as coming from the double.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from graphql import GraphQLInterfaceType, GraphQLSchema, build_schema, graphql_sync

from devstack.gms_double import runs_tab, scheduler
from devstack.gms_double.auth import Principal
from devstack.gms_double.search import SearchIndex, SearchNotModelled, graphql_entity_types

_PRIVILEGES = (
    "viewAnalytics",
    "managePolicies",
    "manageIdentities",
    "generatePersonalAccessTokens",
    "createDomains",
    "manageDomains",
    "manageIngestion",
    "manageSecrets",
    "manageTokens",
    "viewTests",
    "manageTests",
    "manageGlossaries",
    "manageUserCredentials",
    "createTags",
    "manageTags",
    "manageGlobalViews",
    "manageOwnershipTypes",
    "manageGlobalAnnouncements",
    "createBusinessAttributes",
    "manageBusinessAttributes",
    "manageStructuredProperties",
    "viewStructuredPropertiesPage",
)

_SEARCH_SDL = """
interface Entity {
  urn: String!
  type: EntityType!
}

type ExecutionRequest implements Entity {
  urn: String!
  type: EntityType!
}

type Dataset implements Entity {
  urn: String!
  type: EntityType!
}

type OtherEntity implements Entity {
  urn: String!
  type: EntityType!
}

input ScrollAcrossEntitiesInput {
  types: [EntityType!]
  query: String!
  scrollId: String
  keepAlive: String
  count: Int
  orFilters: [AndFilterInput!]
  viewUrn: String
  searchFlags: SearchFlags
  sortInput: SearchSortInput
}

input AndFilterInput {
  and: [FacetFilterInput!]
}

input FacetFilterInput {
  field: String!
  value: String
  values: [String!]
  negated: Boolean
  condition: FilterOperator
}

enum FilterOperator {
  CONTAIN
  EQUAL
  IEQUAL
  IN
  EXISTS
  GREATER_THAN
  GREATER_THAN_OR_EQUAL_TO
  LESS_THAN
  LESS_THAN_OR_EQUAL_TO
  START_WITH
  END_WITH
  DESCENDANTS_INCL
  ANCESTORS_INCL
  RELATED_INCL
}

input SearchFlags {
  skipCache: Boolean
  maxAggValues: Int
  fulltext: Boolean
  skipHighlighting: Boolean
  skipAggregates: Boolean
  getSuggestions: Boolean
  includeSoftDeleted: Boolean
  includeRestricted: Boolean
  customHighlightingFields: [String!]
  includeStructuredPropertyFacets: Boolean
  filterNonLatestVersions: Boolean
  fetchExtraFields: [String!]
}

input SearchSortInput {
  sortCriterion: SortCriterion
  sortCriteria: [SortCriterion!]
}

input SortCriterion {
  field: String!
  sortOrder: SortOrder!
}

enum SortOrder {
  ASCENDING
  DESCENDING
}

type ScrollResults {
  nextScrollId: String
  count: Int!
  total: Int!
  searchResults: [SearchResult!]!
}

type SearchResult {
  entity: Entity!
  extraProperties: [ExtraProperty!]
}

type ExtraProperty {
  name: String!
  value: String!
}
"""


def _sdl() -> str:
    entity_types = "\n".join(f"  {name}" for name in sorted(graphql_entity_types()))
    return (
        """
type Query {
  me: AuthenticatedUser
  scrollAcrossEntities(input: ScrollAcrossEntitiesInput!): ScrollResults
}

type AuthenticatedUser {
  corpUser: CorpUser!
  platformPrivileges: PlatformPrivileges!
}
"""
        + f"\nenum EntityType {{\n{entity_types}\n}}\n"
        + """
type CorpUser implements Entity {
  urn: String!
  type: EntityType!
  username: String!
}

type PlatformPrivileges {
"""
        + "\n".join(f"  {name}: Boolean!" for name in _PRIVILEGES)
        + "\n}\n"
        + _SEARCH_SDL
        + runs_tab.SDL  # the dataset Runs tab (runs_tab.py)
        + scheduler.SDL  # a source's run history (scheduler.py)
    )


_TYPENAMES = {
    "EXECUTION_REQUEST": "ExecutionRequest",
    "DATASET": "Dataset",
    "CORP_USER": "CorpUser",
    **runs_tab.TYPENAMES,
}

DOUBLE_NOTE = (
    "GMS test double: only `me` and `scrollAcrossEntities` of DataHub's GraphQL API are modelled"
)


@cache
def _schema() -> GraphQLSchema:
    schema = build_schema(_sdl())
    entity = schema.get_type("Entity")
    assert isinstance(entity, GraphQLInterfaceType)
    entity.resolve_type = lambda value, *_: _TYPENAMES.get(value["type"], "OtherEntity")
    return schema


def _scroll_resolver(search: SearchIndex | None) -> Any:
    def resolve(_info: Any, input: dict[str, Any]) -> dict[str, Any]:
        if search is None:
            raise SearchNotModelled("GMS test double: no search on this endpoint")
        flags = input.get("searchFlags") or {}
        sort_input = input.get("sortInput") or {}
        sort = sort_input.get("sortCriteria") or (
            [sort_input["sortCriterion"]] if sort_input.get("sortCriterion") else None
        )
        page = search.scroll(
            types=input.get("types"),
            query=input["query"],
            or_filters=input.get("orFilters"),
            count=input.get("count"),
            scroll_id=input.get("scrollId"),
            include_soft_deleted=bool(flags.get("includeSoftDeleted")),
            sort=sort,
        )
        return {
            "nextScrollId": page.next_scroll_id,
            "count": len(page.hits),
            "total": page.total,
            "searchResults": [
                {"entity": {"urn": h.urn, "type": h.entity_type}, "extraProperties": []}
                for h in page.hits
            ],
        }

    return resolve


def _upper_snake(name: str) -> str:
    return "".join(f"_{c}" if c.isupper() else c.upper() for c in name)


def _me(principal: Principal) -> dict[str, Any]:
    return {
        "corpUser": {
            "urn": principal.actor_urn,
            "type": "CORP_USER",
            "username": principal.username,
        },
        # MeResolver: each field is the platform privilege of the same name in UPPER_SNAKE
        # (manageIngestion = MANAGE_INGESTION), from the actor's policies.
        "platformPrivileges": {name: principal.allows(_upper_snake(name)) for name in _PRIVILEGES},
    }


def execute(
    principal: Principal,
    body: Any,
    search: SearchIndex | None = None,
    ingestion: scheduler.IngestionSchedulerDouble | None = None,
) -> dict[str, Any]:
    """Run one GraphQL request body ({query, variables?, operationName?}) as `principal`."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {
            "errors": [
                {
                    "message": "Missing required 'query' parameter",
                    "extensions": {"note": DOUBLE_NOTE},
                }
            ]
        }
    variables = body.get("variables")
    result = graphql_sync(
        _schema(),
        body["query"],
        root_value={
            "me": _me(principal),
            "scrollAcrossEntities": _scroll_resolver(search),
            **runs_tab.root_values(search),
            **scheduler.root_values(search),
            **scheduler.mutation_values(ingestion, principal),
        },
        variable_values=variables if isinstance(variables, dict) else None,
        operation_name=body.get("operationName")
        if isinstance(body.get("operationName"), str)
        else None,
    )
    answer: dict[str, Any] = dict(result.formatted)
    errors = answer.get("errors")
    if errors:
        for error in errors:
            # graphql-java marks these {"classification": "ValidationError"}, or
            # "DataFetchingException" when a resolver failed (those carry a `path`).
            error.setdefault("extensions", {})
            error["extensions"].setdefault(
                "classification", "DataFetchingException" if "path" in error else "ValidationError"
            )
            error["extensions"]["note"] = DOUBLE_NOTE
    return answer
