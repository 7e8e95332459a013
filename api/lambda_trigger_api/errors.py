"""Every error the api answers has one shape: {"status": "failed", "error": code, "message": text}."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lambda_trigger.sanitize import printable

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers
        self.field = field  # the request field at fault (`parameters.start`), when one is


def error_response(
    status_code: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    field: str | None = None,
) -> JSONResponse:
    body = {"status": "failed", "error": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(
        body,
        status_code=status_code,
        headers=dict(headers) if headers else None,
    )


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.headers, exc.field)


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI answers 422 for a malformed body by default; 422 is ours for "no target", so a
    body that does not parse is a 400 with the first problem spelled out."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    # Field names come from the caller: never echo control or bidi characters, nor much text.
    message = printable("; ".join(problems[:5]), 500) or "invalid request"
    locations = [tuple(err.get("loc", ())) for err in exc.errors()]
    if locations and all(loc[:2] == ("body", "parameters") for loc in locations):
        # `parameters` that is not an object: the same code as any other parameter problem
        return error_response(400, "invalid_parameters", message, field="parameters")
    return error_response(400, "invalid_request", message)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Unknown paths and wrong methods get the same error shape as everything else."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    # Starlette puts `Allow` on its 405 (RFC 9110 15.5.6 requires it): keep it.
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Last resort: a bug must not answer with a stack trace or plain text."""
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; see the api's log")
