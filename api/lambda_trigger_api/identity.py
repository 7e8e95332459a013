"""Who is calling: asked of DataHub itself, never decided here.

- `Authorization: Bearer <DataHub token>` -> GMS `POST /api/graphql`;
- a browser's `Cookie` (DataHub UI session) -> datahub-frontend `POST /api/v2/graphql`, which
  reads its own signed PLAY_SESSION cookie.
Both answer the `me` query with the user's URN and platform privileges.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx

# What DataHub answers to credentials it cannot even read (a 100 kB token: 431). Other 4xx
# (404: a wrong DATAHUB_FRONTEND_URL) are our configuration, reported as unavailable.
_MALFORMED = frozenset({400, 413, 414, 431})
ME_QUERY = "{ me { corpUser { urn username } platformPrivileges { manageIngestion } } }"


@dataclass(frozen=True)
class Caller:
    urn: str
    username: str
    manage_ingestion: bool
    via: str  # "token", "cookie" or "dev-mode"


class Unauthenticated(Exception):
    pass


class IdentityUnavailable(Exception):
    pass


class CredentialsRejected(Exception):
    """DataHub refused the credentials as malformed (a 4xx other than 401/403, e.g. 431 for
    a huge token): the caller's problem, not an outage."""


class IdentityClient:
    def __init__(self, gms_url: str, frontend_url: str | None, timeout: float = 10.0) -> None:
        self._gms = gms_url.rstrip("/")
        self._frontend = frontend_url.rstrip("/") if frontend_url else None
        self._client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def warm(self) -> None:
        """Open the connections the identity checks use before the first caller needs them
        (issue 25): GMS's unauthenticated `GET /config`, and datahub-frontend's health check
        `GET /admin` (its conf/routes: controllers.Application.healthcheck) when a frontend
        is set. Any HTTP answer will do: the connection is open and kept. Raises
        httpx.HTTPError while GMS does not answer; the frontend is best effort (readiness
        has only ever depended on GMS)."""
        self._client.get(f"{self._gms}/config")
        if self._frontend is not None:
            with contextlib.suppress(httpx.HTTPError):  # the first cookie caller connects
                self._client.get(f"{self._frontend}/admin")

    def identify(self, authorization: str | None, cookie: str | None) -> Caller:
        if authorization and authorization.lower().startswith("bearer "):
            return self._ask(f"{self._gms}/api/graphql", {"Authorization": authorization}, "token")
        if cookie:
            if self._frontend is None:
                raise IdentityUnavailable(
                    "DATAHUB_FRONTEND_URL is not set: cannot check a session cookie"
                )
            return self._ask(f"{self._frontend}/api/v2/graphql", {"Cookie": cookie}, "cookie")
        raise Unauthenticated("no DataHub session or token: sign in to DataHub")

    def _ask(self, url: str, headers: dict[str, str], via: str) -> Caller:
        try:
            response = self._client.post(url, json={"query": ME_QUERY}, headers=headers)
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"DataHub did not answer: {exc}") from exc
        if response.status_code in (401, 403):
            raise Unauthenticated("DataHub did not accept the session or token: sign in again")
        if response.status_code in _MALFORMED:
            raise CredentialsRejected(
                f"DataHub refused the session or token as malformed (HTTP {response.status_code})"
            )
        if response.status_code != 200:
            raise IdentityUnavailable(
                f"DataHub answered HTTP {response.status_code} to the identity check"
            )
        try:
            body = response.json()
            me = body["data"]["me"]
            user = me["corpUser"]
            return Caller(
                urn=str(user["urn"]),
                username=str(user.get("username") or ""),
                manage_ingestion=bool((me.get("platformPrivileges") or {}).get("manageIngestion")),
                via=via,
            )
        except (ValueError, KeyError, TypeError) as exc:
            # GraphQL reports an unauthenticated `me` as an error with data.me = null.
            raise Unauthenticated("DataHub did not identify the caller: sign in again") from exc
