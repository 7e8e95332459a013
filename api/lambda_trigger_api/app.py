"""The FastAPI application: routes are thin, the work is in `service`."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lambda_trigger import __version__
from lambda_trigger.contract import MAX_REASON_LENGTH
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.mapping_source import MappingInfoCollector, MappingSource
from lambda_trigger.privileges import API_CAPABILITIES, PrivilegeCheck
from lambda_trigger.settings import ApiSettings, DataHubSettings, MappingSettings
from lambda_trigger_api import upstream
from lambda_trigger_api.authmode import GmsAuthMode
from lambda_trigger_api.csrf import require_json, require_same_origin
from lambda_trigger_api.errors import (
    ApiError,
    api_error_handler,
    error_response,
    http_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from lambda_trigger_api.identity import IdentityClient
from lambda_trigger_api.limits import RateLimiter, RequestLimits
from lambda_trigger_api.metrics import ApiMetrics
from lambda_trigger_api.metrics_server import MetricsServer
from lambda_trigger_api.mfe import mfe_router
from lambda_trigger_api.runs import MAX_LIMIT
from lambda_trigger_api.service import RunService
from lambda_trigger_api.warm import api_warmup

log = logging.getLogger(__name__)


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    datasetUrn: str = Field(
        description="The dataset to load, e.g. urn:li:dataset:(urn:li:dataPlatform:athena,db.table,PROD)"
    )
    jobUrn: str | None = Field(
        None, description="Optional DataJob whose pipeline loads the dataset"
    )
    reason: str | None = Field(
        None, max_length=MAX_REASON_LENGTH, description="Free text kept with the run"
    )
    parameters: dict[str, Any] | None = Field(
        None,
        description="The run's parameters, checked against the target's schema "
        "(GET /api/ingestion/targets returns it); passed to the job as `parameters`",
    )
    withUpstream: bool = Field(
        False,
        description="Run the mapped upstream datasets first, in waves (docs/triggers.md)",
    )
    maxDepth: StrictInt | None = Field(
        None, ge=1, le=5, description="withUpstream: lineage hops to follow (default from settings)"
    )


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    datasetUrn: str = Field(description="The dataset to run with its upstream datasets")
    maxDepth: StrictInt | None = Field(
        None, ge=1, le=5, description="Lineage hops to follow (default from settings)"
    )


class RunAccepted(BaseModel):
    runId: str
    status: str
    message: str
    alreadyActive: bool = False
    plan: dict[str, Any] | None = Field(None, description="withUpstream: the plan being run")


class ErrorBody(BaseModel):
    status: str = "failed"
    error: str
    message: str
    field: str | None = Field(None, description="The request field at fault, when one is")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody}
    for code in (400, 401, 403, 404, 405, 413, 415, 422, 429, 431, 500, 502, 503)
}


def create_app(
    settings: ApiSettings | None = None,
    datahub_settings: DataHubSettings | None = None,
    mapping_settings: MappingSettings | None = None,
    *,
    registry: CollectorRegistry = REGISTRY,
) -> FastAPI:
    settings = settings or ApiSettings()
    datahub_settings = datahub_settings or DataHubSettings()
    mapping_settings = mapping_settings or MappingSettings()
    metrics = ApiMetrics(registry)
    # The api answers a browser: one quick retry at most, never the SDK's long backoff.
    datahub = DataHubClient(datahub_settings, retries=1)
    identity = IdentityClient(
        datahub_settings.gms_url, datahub_settings.frontend_url, datahub_settings.timeout_seconds
    )
    mappings = MappingSource(mapping_settings)  # raises MappingError: a bad mapping stops the start
    registry.register(MappingInfoCollector("lambda_trigger_api", mappings))  # operability
    auth_mode = (
        GmsAuthMode(datahub_settings.gms_url, min(datahub_settings.timeout_seconds, 5.0))
        if settings.detect_auth_off and not settings.dev_mode_no_auth
        else None
    )
    service = RunService(
        settings,
        datahub,
        identity,
        mappings,
        metrics,
        executor_id=datahub_settings.executor_id,
        job_arn_property_urn=mapping_settings.job_arn_property_urn,
        auth_mode=auth_mode,
        rate_limiter=RateLimiter(settings.rate_limit_runs, settings.rate_limit_window_seconds),
    )

    # /metrics on a port of its own when LAMBDA_TRIGGER_API_METRICS_PORT is set (issue 19).
    metrics_server = (
        MetricsServer(settings.host, settings.metrics_port, registry)
        if settings.metrics_enabled and settings.metrics_port is not None
        else None
    )
    # What the api's token may do in DataHub: checked at start and in /readyz (privileges.py).
    privileges = PrivilegeCheck("api", datahub, API_CAPABILITIES)
    stopping = threading.Event()
    warmup = api_warmup(datahub, identity, stopping)  # /readyz is 503 until it is done

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if metrics_server is not None:
            metrics_server.start()
        warmup.start()
        await run_in_threadpool(privileges.run)  # one line per missing DataHub privilege
        # Serve once every warm-up step has been tried (a few ms against a healthy GMS), so
        # that a healthy start is ready at once; a slow or absent GMS holds it 5 s at most,
        # then /readyz says what is still cold while the warm-up retries.
        await run_in_threadpool(warmup.wait_first_pass, 5.0)
        if auth_mode is not None:
            # At start-up, so the log says at once whether GMS checks tokens; if GMS does
            # not answer yet, the first Bearer call asks again.
            await run_in_threadpool(auth_mode.auth_off)
        yield
        if metrics_server is not None:
            metrics_server.stop()
        stopping.set()
        identity.close()
        datahub.close()

    app = FastAPI(
        title="datahub-lambda-trigger api",
        version=__version__,
        description="Starts the ingestion job of a DataHub dataset. Holds no AWS credentials.",
        lifespan=lifespan,
        # /docs and /openapi.json tell an unauthenticated caller every route: off by default.
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
    )
    service.run_extras = lambda record: (
        {"children": upstream.children(service, record)} if upstream.is_parent(record) else {}
    )
    app.state.service = service
    app.state.metrics_server = metrics_server
    app.state.warmup = warmup
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    app.middleware("http")(metrics.middleware)
    # Outermost: size limits apply before anything reads the body or asks DataHub.
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes)

    @app.post(
        "/api/ingestion/run",
        status_code=202,
        response_model=RunAccepted,
        response_model_exclude_none=True,  # `plan` only for withUpstream
        responses=_ERRORS,
    )
    def run(
        body: RunBody,
        request: Request,
        response: Response,
        authorization: Annotated[str | None, Header()] = None,
        cookie: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        require_json(request)  # CSRF (csrf.py): before the caller is identified
        require_same_origin(request, settings)
        caller = service.caller(authorization, cookie)
        if body.withUpstream:
            if body.jobUrn is not None or body.parameters is not None:
                raise ApiError(
                    400,
                    "invalid_request",
                    "withUpstream runs each dataset's mapped target: no jobUrn or parameters",
                )
            return upstream.request_with_upstream(
                service, caller, body.datasetUrn, body.maxDepth, body.reason
            )
        answer = service.request_run(
            caller, body.datasetUrn, body.jobUrn, body.reason, parameters=body.parameters
        )
        if answer.get("alreadyActive"):
            response.status_code = 200  # nothing new was started
        return answer

    @app.post("/api/ingestion/plan", responses=_ERRORS)
    def plan(
        body: PlanBody,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        cookie: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        require_json(request)  # CSRF (csrf.py), as for POST /run
        require_same_origin(request, settings)
        caller = service.caller(authorization, cookie)
        return upstream.plan(service, caller, body.datasetUrn, body.maxDepth)

    @app.get("/api/ingestion/runs/{run_id}", responses=_ERRORS)
    def run_status(
        run_id: str,
        authorization: Annotated[str | None, Header()] = None,
        cookie: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        caller = service.caller(authorization, cookie)
        return service.run_status(caller, run_id)

    @app.get("/api/ingestion/runs", responses=_ERRORS)
    def list_runs(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        datasetUrn: Annotated[str | None, Query(max_length=2000)] = None,
        cursor: Annotated[
            str | None,
            Query(
                max_length=2000,
                pattern=r"^[A-Za-z0-9_=+/.:-]+$",
                description="nextCursor of the previous page",
            ),
        ] = None,
        authorization: Annotated[str | None, Header()] = None,
        cookie: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        caller = service.caller(authorization, cookie)
        return service.list_runs(caller, limit, datasetUrn, cursor)

    @app.post("/api/ingestion/runs/{run_id}/cancel", status_code=202, responses=_ERRORS)
    def cancel(
        run_id: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        cookie: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        require_json(request)  # CSRF (csrf.py), as for POST /run
        require_same_origin(request, settings)
        caller = service.caller(authorization, cookie)
        return service.cancel_run(caller, run_id)

    @app.get("/api/ingestion/targets", responses=_ERRORS)
    def targets(
        datasetUrn: Annotated[str, Query(description="Dataset URN")],
        authorization: Annotated[str | None, Header()] = None,
        cookie: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        caller = service.caller(authorization, cookie)
        return service.targets(caller, datasetUrn)

    app.include_router(mfe_router())  # the run panel as a DataHub micro-frontend (issue 14)

    if settings.metrics_enabled and settings.metrics_port is None:

        @app.get("/metrics", include_in_schema=False)
        def prometheus() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        warm, warm_detail = warmup.status()
        if not warm:
            cold = warm_detail.get("warming")
            names = ", ".join(map(str, cold)) if isinstance(cold, list) else "DataHub"
            return error_response(503, "warming_up", f"warming up: {names}")
        if not datahub.reachable():
            return error_response(503, "datahub_unavailable", "DataHub does not answer")
        granted, detail = privileges.status()
        if not granted:
            missing = detail.get("missingPrivileges")
            assert isinstance(missing, list)
            return error_response(
                503,
                "datahub_privileges_missing",
                "the api's DataHub token lacks: " + "; ".join(str(m) for m in missing),
            )
        return JSONResponse({"status": "ok", **mappings.status(), **detail})

    return app
