"""Is GMS checking tokens at all?

With `METADATA_SERVICE_AUTH_ENABLED=false` (DataHub's quickstart), GMS builds its
authenticator chain from NoOpAuthenticator only
(metadata-service/auth-filter/.../AuthenticationExtractionFilter.java, buildAuthenticatorChain),
which ignores `Authorization` and makes every request without `X-DataHub-Actor` the system
actor (metadata-service/auth-impl/.../authenticator/NoOpAuthenticator.java). `me` then answers
for that actor, with every privilege, whatever bearer token was sent: a token proves nothing.

The api probes once at start-up (and again until GMS answers) with a random token no GMS can
have issued. Accepted: authentication is off, and the api refuses Bearer callers, keeping
only the Cookie path, where datahub-frontend identifies the user from its own signed session.
"""

from __future__ import annotations

import logging
import secrets
import threading

import httpx

log = logging.getLogger(__name__)

PROBE_QUERY = "{ me { corpUser { urn } } }"


class GmsAuthMode:
    def __init__(self, gms_url: str, timeout: float = 5.0) -> None:
        self._url = f"{gms_url.rstrip('/')}/api/graphql"
        self._timeout = timeout
        self._lock = threading.Lock()
        self._auth_off: bool | None = None

    def auth_off(self) -> bool | None:
        """True: GMS accepts any token; False: it checks them; None: not known yet (GMS did
        not answer the probe; asked again on the next call)."""
        if self._auth_off is None:
            with self._lock:
                if self._auth_off is None:
                    self._auth_off = self.probe()
        return self._auth_off

    def probe(self) -> bool | None:
        bogus = f"lambda-trigger-auth-probe-{secrets.token_urlsafe(24)}"
        try:
            response = httpx.post(
                self._url,
                json={"query": PROBE_QUERY},
                headers={"Authorization": f"Bearer {bogus}"},
                timeout=self._timeout,
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
            urn = response.json()["data"]["me"]["corpUser"]["urn"]
        except (ValueError, KeyError, TypeError):
            # A 200 with a GraphQL error and no `me`: the token was not accepted.
            return False
        log.error(
            "GMS accepted a made-up bearer token as %s: its authentication is OFF "
            "(METADATA_SERVICE_AUTH_ENABLED=false). Bearer callers are refused; only DataHub UI "
            "sessions (Cookie) can call this api. Turn GMS authentication on.",
            urn,
        )
        return True
