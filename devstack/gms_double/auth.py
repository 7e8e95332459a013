"""Who is calling: GMS's bearer-token authentication and datahub-frontend's session cookie.

- GMS with `METADATA_SERVICE_AUTH_ENABLED=true` (application.yaml `authentication.enabled`,
  default true): AuthenticationExtractionFilter resolves `Authorization: Bearer <token>` through
  the authenticator chain (DataHubTokenAuthenticator); AuthenticationEnforcementFilter then answers
  `response.sendError(401, "Unauthorized to perform this action.")` for an anonymous request to any
  path except `authentication.excludedPaths`
  (`/schema-registry/*,/health,/health/live,/config,/config/search/export,/public-iceberg/*,
  /actuator/prometheus`). Source: metadata-service/auth-filter/.../AuthenticationEnforcementFilter.java,
  metadata-service/configuration/src/main/resources/application.yaml.
- datahub-frontend: routes behind `Authenticator` (datahub-frontend/app/auth/Authenticator.java)
  answer Play's `unauthorized()` (401, empty body) unless the request carries an Authorization
  header or a valid session cookie (`PLAY_SESSION`, holding actor and token).

Real tokens are signed JWTs and real sessions signed Play cookies; the double instead keeps a
table of the tokens and cookies tests register, each mapped to a principal.

Authentication off (`METADATA_SERVICE_AUTH_ENABLED=false`, DataHub's quickstart; in the double
`Credentials.auth_enabled = False` or the same environment variable):
AuthenticationExtractionFilter.buildAuthenticatorChain registers only NoOpAuthenticator
(metadata-service/auth-filter/src/main/java/com/datahub/auth/authentication/filter/
AuthenticationExtractionFilter.java), whose `authenticate` ignores `Authorization` entirely: with
an `X-DataHub-Actor` header the request is that actor, without one it is the system client
(`authentication.systemClientId`, default `__datahub_system`), which DataHubAuthorizer allows
everything (metadata-service/auth-impl/src/main/java/com/datahub/authentication/authenticator/
NoOpAuthenticator.java). Every request is then authenticated, so the enforcement filter never
answers 401, and any bearer token - even a made-up one - is accepted as the system actor.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

PLAY_SESSION_COOKIE = "PLAY_SESSION"
EXCLUDED_PATHS = (
    "/schema-registry/*",
    "/health",
    "/health/live",
    "/config",
    "/config/search/export",
    "/public-iceberg/*",
    "/actuator/prometheus",
)
UNAUTHORIZED_MESSAGE = "Unauthorized to perform this action."


@dataclass(frozen=True)
class Principal:
    """An actor and what DataHub's policies grant it.

    Stands in for the policies DataHubAuthorizer evaluates (metadata-service/auth-impl/.../
    authorization/DataHubAuthorizer.java): `manage_ingestion` is the MANAGE_INGESTION platform
    privilege, `privileges` further platform privileges (e.g. MANAGE_POLICIES), and `grants`
    resource privileges as (privilege, resource urn) pairs, e.g. ("EXECUTE_ENTITY",
    "urn:li:dataHubIngestionSource:x") or ("EDIT_ENTITY", "*") for every entity. Tests build
    actors with exactly the policies they need (`GmsDouble.add_token(..., privileges=,
    grants=)`); write_auth.py and the probes of common/lambda_trigger/privileges.py ask
    `allows`.
    """

    actor_urn: str
    username: str
    manage_ingestion: bool
    # The admin (urn:li:corpuser:datahub in the quickstart) holds every platform privilege.
    admin: bool = False
    privileges: frozenset[str] = frozenset()
    grants: frozenset[tuple[str, str]] = frozenset()
    # False (the double's default): every authenticated actor may write any aspect, as before
    # REST API authorization. True: GMS's REST API authorization applies (write_auth.py): each
    # written entity needs EDIT_ENTITY from `grants`, e.g. ("EDIT_ENTITY", "type:dataset").
    strict_policies: bool = False

    def allows(self, privilege: str, resource: str | None = None) -> bool:
        """A policy grants `privilege` on `resource` (a URN; None = platform privilege).
        Resource grants match the URN, its entity type (`type:<entityType>`) or `*`."""
        if self.admin:
            return True
        if privilege == "MANAGE_INGESTION" and self.manage_ingestion:
            return True
        if privilege in self.privileges:
            return True
        if (privilege, "*") in self.grants:
            return True
        if resource is None:
            return False
        entity_type = resource.split(":", 3)[2] if resource.count(":") >= 3 else ""
        return (privilege, resource) in self.grants or (
            privilege,
            f"type:{entity_type}",
        ) in self.grants


def is_excluded(path: str) -> bool:
    """AuthenticationEnforcementFilter.shouldNotFilter: `x/*` is a prefix, else exact match."""
    for pattern in EXCLUDED_PATHS:
        if pattern.endswith("/*"):
            if path.startswith(pattern[:-2]):
                return True
        elif path == pattern:
            return True
    return False


def session_value(cookie: str) -> str:
    """Accept either a PLAY_SESSION value or a whole Cookie header containing one."""
    if f"{PLAY_SESSION_COOKIE}=" not in cookie:
        return cookie.strip()
    found = play_session_from_header(cookie)
    return found if found is not None else cookie.strip()


def play_session_from_header(header: str) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(PLAY_SESSION_COOKIE)
    return morsel.value if morsel is not None else None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


SYSTEM_CLIENT_ID = "__datahub_system"  # application.yaml authentication.systemClientId default
SYSTEM_ACTOR = f"urn:li:corpuser:{SYSTEM_CLIENT_ID}"
X_DATAHUB_ACTOR = "X-DataHub-Actor"  # AuthenticationConstants.LEGACY_X_DATAHUB_ACTOR_HEADER


class Credentials:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Principal] = {}
        self._sessions: dict[str, Principal] = {}
        # GMS reads METADATA_SERVICE_AUTH_ENABLED into authentication.enabled (default true).
        self.auth_enabled = (
            os.environ.get("METADATA_SERVICE_AUTH_ENABLED", "true").lower() != "false"
        )

    def authenticate(
        self, authorization: str | None, x_datahub_actor: str | None
    ) -> Principal | None:
        """The principal GMS's authenticator chain gives a request, or None (anonymous)."""
        if self.auth_enabled:
            return self.by_token(bearer_token(authorization))
        # NoOpAuthenticator: the header's actor, else the system client; no token is looked at.
        if not x_datahub_actor:
            return Principal(SYSTEM_ACTOR, SYSTEM_CLIENT_ID, manage_ingestion=True, admin=True)
        with self._lock:
            known = [p for p in (*self._tokens.values(), *self._sessions.values())]
        for principal in known:
            if principal.actor_urn == x_datahub_actor:
                return principal  # its privileges come from its policies, as with auth on
        return Principal(
            x_datahub_actor, x_datahub_actor.rsplit(":", 1)[-1], manage_ingestion=False
        )

    def add_token(self, token: str, principal: Principal) -> None:
        with self._lock:
            self._tokens[token] = principal

    def add_session(self, cookie: str, principal: Principal) -> None:
        with self._lock:
            self._sessions[session_value(cookie)] = principal

    def by_token(self, token: str | None) -> Principal | None:
        if token is None:
            return None
        with self._lock:
            return self._tokens.get(token)

    def by_cookie_header(self, header: str | None) -> Principal | None:
        if not header:
            return None
        value = play_session_from_header(header)
        if value is None:
            return None
        with self._lock:
            return self._sessions.get(value)

    def to_json(self) -> dict[str, object]:
        with self._lock:
            return {
                "tokens": {t: _principal_json(p) for t, p in self._tokens.items()},
                "sessions": {s: _principal_json(p) for s, p in self._sessions.items()},
            }

    def load_json(self, data: dict[str, object]) -> None:
        tokens = data.get("tokens", {})
        sessions = data.get("sessions", {})
        assert isinstance(tokens, dict) and isinstance(sessions, dict)
        with self._lock:
            self._tokens.update({t: _principal_from(p) for t, p in tokens.items()})
            self._sessions.update({s: _principal_from(p) for s, p in sessions.items()})


def _principal_json(p: Principal) -> dict[str, object]:
    return {
        "actor_urn": p.actor_urn,
        "username": p.username,
        "manage_ingestion": p.manage_ingestion,
        "admin": p.admin,
        "privileges": sorted(p.privileges),
        "grants": sorted([list(g) for g in p.grants]),
        "strict_policies": p.strict_policies,
    }


def _principal_from(d: object) -> Principal:
    assert isinstance(d, dict)
    return Principal(
        str(d["actor_urn"]),
        str(d["username"]),
        bool(d["manage_ingestion"]),
        bool(d.get("admin", False)),
        frozenset(str(x) for x in d.get("privileges") or ()),
        frozenset((str(g[0]), str(g[1])) for g in d.get("grants") or ()),
        bool(d.get("strict_policies", False)),
    )


def jetty_error_page(status: int, message: str, uri: str) -> bytes:
    """The body `HttpServletResponse.sendError` gets from GMS's embedded Jetty (its
    ErrorHandler page). Clients should key on the status; the page is only for humans."""
    return (
        "<html>\n<head>\n"
        '<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>\n'
        f"<title>Error {status} {message}</title>\n"
        "</head>\n<body>\n"
        f"<h2>HTTP ERROR {status} {message}</h2>\n"
        "<table>\n"
        f"<tr><th>URI:</th><td>{uri}</td></tr>\n"
        f"<tr><th>STATUS:</th><td>{status}</td></tr>\n"
        f"<tr><th>MESSAGE:</th><td>{message}</td></tr>\n"
        "</table>\n"
        "</body>\n</html>\n"
    ).encode("iso-8859-1", "replace")
