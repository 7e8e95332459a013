"""Cross-site request checks for the routes that change something (POST run, POST cancel).

Two rules, checked before the caller is identified (a refused request costs no DataHub call):

1. The body is `application/json` (415 `unsupported_media_type` otherwise). A browser sends
   JSON cross-site only after a CORS preflight, which the api never grants; an HTML form can
   only send `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`.
2. With cookie authentication (a Cookie and no Authorization header: a browser's DataHub
   session), the request's `Origin`, else its `Referer`, must be the api's own origin (the
   `Host` or `X-Forwarded-Host` it was reached at, as nginx in compose/ and DataHub's ingress
   pass them) or one listed in `LAMBDA_TRIGGER_API_ALLOWED_ORIGINS`; 403 `cross_site_refused`
   otherwise, and when neither header is there (browsers send `Origin` on every POST).
   A Bearer caller is not a browser riding on a cookie: a page cannot add `Authorization`
   cross-site without a preflight either.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from lambda_trigger.settings import ApiSettings
from lambda_trigger_api.errors import ApiError

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _host_of_origin(origin: str) -> str | None:
    """`host[:port]` (lower case, default port dropped) of `scheme://host[:port]...`."""
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    if port is None or str(port) == _DEFAULT_PORTS.get(parts.scheme.lower()):
        return host.lower()
    return f"{host.lower()}:{port}"


def _host_header(value: str) -> str:
    """A Host header as `host[:port]`, lower case, without a default port."""
    value = value.strip().lower()
    for port in _DEFAULT_PORTS.values():
        if value.endswith(f":{port}"):
            return value[: -len(port) - 1]
    return value


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")


def require_same_origin(request: Request, settings: ApiSettings) -> None:
    headers = request.headers
    if headers.get("authorization") or not headers.get("cookie"):
        return
    source = headers.get("origin")
    if not source or source == "null":
        source = headers.get("referer")
    own = {
        _host_header(value.split(",", 1)[0])
        for value in (headers.get("host"), headers.get("x-forwarded-host"))
        if value
    }
    allowed = {
        host
        for host in (_host_of_origin(o) for o in settings.allowed_origins.split(",") if o.strip())
        if host
    }
    host = _host_of_origin(source) if source else None
    if host is None or host not in own | allowed:
        raise ApiError(
            403,
            "cross_site_refused",
            "a request with a DataHub session cookie must come from the DataHub page itself "
            "(Origin or Referer of this site)",
        )
