"""Who GMS says a token is, and is GMS checking tokens at all: the api and the consumer ask
both the same way.

With `METADATA_SERVICE_AUTH_ENABLED=false` (DataHub's quickstart) GMS's authenticator chain is
NoOpAuthenticator only (metadata-service/auth-filter/.../AuthenticationExtractionFilter.java,
buildAuthenticatorChain): it ignores `Authorization`, makes a request with `X-DataHub-Actor`
that actor and any other the system actor
(metadata-service/auth-impl/.../authenticator/NoOpAuthenticator.java). A made-up token is then
accepted, and the MCL's `created.actor` is whatever the writer's header said.

The probe sends a random token no GMS can have issued: accepted means authentication is off.
"""

from __future__ import annotations

import logging
import secrets

import httpx

log = logging.getLogger(__name__)

PROBE_QUERY = "{ me { corpUser { urn } } }"


class TokenIdentityUnknown(RuntimeError):
    """GMS did not say who a token is (no answer, an error, or no `me`)."""


def token_actor(gms_url: str, token: str | None, timeout: float = 5.0) -> str:
    """The principal GMS authenticates `token` as (`me`): the writer GMS records for what the
    token writes. Raises TokenIdentityUnknown."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(
            f"{gms_url.rstrip('/')}/api/graphql",
            json={"query": PROBE_QUERY},
            headers=headers,
            timeout=timeout,
        )
        response.raise_for_status()
        return str(response.json()["data"]["me"]["corpUser"]["urn"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise TokenIdentityUnknown(f"who is DATAHUB_GMS_TOKEN? {exc}") from exc


def gms_auth_off(gms_url: str, timeout: float = 5.0) -> bool | None:
    """True: GMS accepts any token; False: it checks them; None: not known (no answer)."""
    bogus = f"lambda-trigger-auth-probe-{secrets.token_urlsafe(24)}"
    try:
        response = httpx.post(
            f"{gms_url.rstrip('/')}/api/graphql",
            json={"query": PROBE_QUERY},
            headers={"Authorization": f"Bearer {bogus}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        log.warning("GMS authentication probe: GMS did not answer (%s)", exc)
        return None
    if response.status_code in (401, 403):
        log.info("GMS authentication probe: GMS refused a made-up token, authentication is on")
        return False
    if response.status_code != 200:
        log.warning("GMS authentication probe: GMS answered HTTP %s", response.status_code)
        return None
    try:
        response.json()["data"]["me"]["corpUser"]["urn"]
    except (ValueError, KeyError, TypeError):
        return False  # a 200 with a GraphQL error and no `me`: the token was not accepted
    return True
