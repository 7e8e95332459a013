"""Is GMS checking tokens at all?

With `METADATA_SERVICE_AUTH_ENABLED=false` (DataHub's quickstart), GMS builds its
authenticator chain from NoOpAuthenticator only
(metadata-service/auth-filter/.../AuthenticationExtractionFilter.java, buildAuthenticatorChain),
which ignores `Authorization` and makes every request without `X-DataHub-Actor` the system
actor (metadata-service/auth-impl/.../authenticator/NoOpAuthenticator.java). `me` then answers
for that actor, with every privilege, whatever bearer token was sent: a token proves nothing.

The api probes once at start-up (and again until GMS answers) with a random token no GMS can
have issued (the probe is lambda_trigger/gms_auth.py's, shared with the consumer). Accepted: authentication is off, and the api refuses Bearer callers, keeping
only the Cookie path, where datahub-frontend identifies the user from its own signed session.
"""

from __future__ import annotations

import logging
import threading

from lambda_trigger.gms_auth import gms_auth_off

log = logging.getLogger(__name__)


class GmsAuthMode:
    def __init__(self, gms_url: str, timeout: float = 5.0) -> None:
        self._url = gms_url
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
        off = gms_auth_off(self._url, self._timeout)
        if off:
            log.error(
                "GMS accepted a made-up bearer token: its authentication is OFF "
                "(METADATA_SERVICE_AUTH_ENABLED=false). Bearer callers are refused; only DataHub "
                "UI sessions (Cookie) can call this api. Turn GMS authentication on."
            )
        return off
