"""Is GMS checking tokens at all? One probe, shared by the api and the consumer.

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
        return False
    if response.status_code != 200:
        log.warning("GMS authentication probe: GMS answered HTTP %s", response.status_code)
        return None
    try:
        response.json()["data"]["me"]["corpUser"]["urn"]
    except (ValueError, KeyError, TypeError):
        return False  # a 200 with a GraphQL error and no `me`: the token was not accepted
    return True
