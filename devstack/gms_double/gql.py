"""The slice of DataHub's GraphQL API the project uses: `me`.

The schema below is copied from datahub-graphql-core/src/main/resources/app.graphql
(`Query.me: AuthenticatedUser`, `AuthenticatedUser`, `PlatformPrivileges`) and entity.graphql
(`CorpUser.urn/type/username`); MeResolver fills `platformPrivileges` from the actor's policies.
Queries are parsed, validated and executed by graphql-core, so field selection, aliases,
fragments and variables behave as with graphql-java; anything outside this slice fails
validation (`Cannot query field ...`), returned as a normal GraphQL error with HTTP 200 as GMS's
GraphQLController does, and marked as coming from the double.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from graphql import GraphQLSchema, build_schema, graphql_sync

from devstack.gms_double.auth import Principal

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

_SDL = (
    """
type Query {
  me: AuthenticatedUser
}

type AuthenticatedUser {
  corpUser: CorpUser!
  platformPrivileges: PlatformPrivileges!
}

enum EntityType {
  CORP_USER
}

type CorpUser {
  urn: String!
  type: EntityType!
  username: String!
}

type PlatformPrivileges {
"""
    + "\n".join(f"  {name}: Boolean!" for name in _PRIVILEGES)
    + "\n}\n"
)

DOUBLE_NOTE = "GMS test double: only the `me` query of DataHub's GraphQL API is modelled"


@cache
def _schema() -> GraphQLSchema:
    return build_schema(_SDL)


def _me(principal: Principal) -> dict[str, Any]:
    return {
        "corpUser": {
            "urn": principal.actor_urn,
            "type": "CORP_USER",
            "username": principal.username,
        },
        "platformPrivileges": {
            name: principal.admin or (name == "manageIngestion" and principal.manage_ingestion)
            for name in _PRIVILEGES
        },
    }


def execute(principal: Principal, body: Any) -> dict[str, Any]:
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
        root_value={"me": _me(principal)},
        variable_values=variables if isinstance(variables, dict) else None,
        operation_name=body.get("operationName")
        if isinstance(body.get("operationName"), str)
        else None,
    )
    answer: dict[str, Any] = dict(result.formatted)
    errors = answer.get("errors")
    if errors:
        for error in errors:
            # graphql-java marks these {"classification": "ValidationError"}.
            error.setdefault("extensions", {})
            error["extensions"].setdefault("classification", "ValidationError")
            error["extensions"]["note"] = DOUBLE_NOTE
    return answer
