"""Which handler a request reaches, decided the way GMS's servlet container decides it.

GMS registers its servlets in metadata-service/war/src/main/java/com/linkedin/gms/
WebApplicationInitializer.java:

| mapping              | servlet                                                        |
|----------------------|----------------------------------------------------------------|
| `/schema-registry/*` | the internal schema registry (outside authentication)          |
| `/api/*`             | GraphQL (`/api/graphql`, GraphQLController)                    |
| `/openapi/*`         | the OpenAPI Spring controllers                                 |
| `/health`, `/config` | HealthCheck, Config (`/config/search/export` too)              |
| `/*`                 | Rest.li (RestliHandlerServlet): everything else                |

Rest.li routes by resource (linkedin/rest.li RestLiRouter.process): the leading `/` is dropped,
the raw path is split on `/` with Java's `Pattern.split`, which discards trailing empty segments,
so `/aspects/?action=ingestProposal` and `/aspects?action=ingestProposal` reach the same action
(the CLI's `datahub put` sends the first, DatahubRestEmitter the second). The first segment names
the root resource (URL-decoded); a second segment is the entity key, which for the simple string
keys of GMS's resources is just percent-decoded (ArgumentUtils.parseSimplePathKey), so a raw
`urn:li:...` key and its URL-encoded form are the same key. A request with `?action=` is an
action, `?ids=List(...)` a batch get, a key a get. An unknown root resource is a 404
("No root resource defined for path ...").

Spring MVC (the OpenAPI servlet) matches the path as mapped; the double does not add a
trailing-slash match there (Spring 6's default is off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMA_REGISTRY_PREFIX = "/schema-registry/api"

# Rest.li resources and what the double answers on each (resource -> {operation: handler}).
# Operations: "action:<name>" (POST ?action=), "get" (GET /resource/{key}),
# "batch_get" (GET /resource?ids=List(...)).
RESTLI_RESOURCES: dict[str, dict[str, str]] = {
    # AspectResource.java
    "aspects": {
        "action:ingestProposal": "restli.ingest",
        "action:ingestProposalBatch": "restli.ingest",
        "get": "restli.get_aspect",
    },
    # EntityResource.java
    "entities": {"action:delete": "restli.delete_entity"},
    # EntityV2Resource.java
    "entitiesV2": {"get": "restli.get_entity_v2", "batch_get": "restli.batch_get_entity_v2"},
}

_OPENAPI_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    # v3 EntityController / GenericEntitiesController
    ("POST", re.compile(r"^/openapi/v3/entity/(?P<entity>[^/]+)$"), "openapi.create"),
    (
        "GET",
        re.compile(r"^/openapi/v3/entity/(?P<entity>[^/]+)/(?P<urn>[^/]+)/(?P<aspect>[^/]+)$"),
        "openapi.get_aspect",
    ),
    # v2 TimelineControllerV2: @RequestMapping("/openapi/v2/timeline/v1"), GET "/{urn}"
    ("GET", re.compile(r"^/openapi/v2/timeline/v1/(?P<urn>[^/]+)$"), "openapi.timeline"),
]


@dataclass(frozen=True)
class Route:
    handler: str
    # Decoded path parameters (e.g. "urn", "entity", "aspect", "resource", "action").
    params: dict[str, str] = field(default_factory=dict)


def restli_segments(raw_path: str) -> list[str]:
    """RestLiRouter.process: drop the leading `/`, split the raw path on `/`; Java's
    Pattern.split drops trailing empty strings (so a trailing slash changes nothing)."""
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    parts = path.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def query_params(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


def match(method: str, target: str) -> Route | None:
    """The handler for `method target` (`target` = path plus query, as on the request line),
    or None when GMS would answer 404 for want of a resource or an endpoint."""
    split = urlsplit(target)
    raw_path, query = split.path, query_params(split.query)
    path = unquote(raw_path)

    if raw_path.startswith(SCHEMA_REGISTRY_PREFIX):
        return Route("schema_registry", {"sub": raw_path[len(SCHEMA_REGISTRY_PREFIX) :]})
    if path == "/config" and method == "GET":
        return Route("config")
    if path in ("/health", "/health/live") and method == "GET":
        return Route("health")
    if path.startswith("/api/"):
        if method == "POST" and path == "/api/graphql":
            return Route("graphql")
        if method == "POST" and path == "/api/v2/graphql":
            # datahub-frontend's GraphQL endpoint; the double serves both on one port.
            return Route("frontend_graphql")
        return None
    if path.startswith("/openapi/"):
        for verb, pattern, handler in _OPENAPI_ROUTES:
            found = pattern.match(raw_path)
            if found and verb == method:
                return Route(handler, {k: unquote(v) for k, v in found.groupdict().items()})
        return None
    return _restli(method, raw_path, query)


def _restli(method: str, raw_path: str, query: dict[str, str]) -> Route | None:
    segments = restli_segments(raw_path)
    if not segments:
        return None
    resource = unquote(segments[0])
    operations = RESTLI_RESOURCES.get(resource)
    if operations is None or len(segments) > 2:
        return None
    key = unquote(segments[1]) if len(segments) == 2 else None
    params = {"resource": resource}
    if method == "POST" and key is None and "action" in query:
        params["action"] = query["action"]
        handler = operations.get(f"action:{query['action']}")
    elif method == "GET" and key is not None:
        params["urn"] = key
        handler = operations.get("get")
    elif method == "GET" and key is None and "ids" in query:
        handler = operations.get("batch_get")
    else:
        handler = None
    return Route(handler, params) if handler else None


def raw_query_params(query: str) -> dict[str, str]:
    """Query parameters with their values still percent-encoded (the last one of a name wins)."""
    out: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            out[unquote(name)] = value
    return out


def parse_restli_list(raw_value: str) -> list[str]:
    """A Rest.li 2.0 `List(a,b,...)` query value, still percent-encoded (URIElementParser):
    elements are separated by a literal `,` (URL-encoded URNs carry theirs as `%2C`) and each
    element is then percent-decoded."""
    for opening, closing in (("List(", ")"), ("List%28", "%29")):
        if raw_value.startswith(opening) and raw_value.endswith(closing):
            body = raw_value[len(opening) : len(raw_value) - len(closing)]
            break
    else:
        raise ValueError(f"not a Rest.li list: {raw_value!r}")
    return [unquote(item) for item in body.split(",")] if body else []
