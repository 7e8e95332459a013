"""Prometheus metrics of the api. Names and labels: docs/contract.md."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from fastapi import Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Info

from lambda_trigger import __version__

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        p = "lambda_trigger_api"
        self.registry = registry
        self.requests = Counter(
            f"{p}_requests", "HTTP requests", ["route", "method", "status_code"], registry=registry
        )
        self.request_duration = Histogram(
            f"{p}_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.datahub_duration = Histogram(
            f"{p}_datahub_request_duration_seconds",
            "Latency of calls to DataHub",
            ["operation"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.datahub_failures = Counter(
            f"{p}_datahub_request_failures",
            "Failed calls to DataHub",
            ["operation"],
            registry=registry,
        )
        self.runs_requested = Counter(
            f"{p}_runs_requested", "Runs written to DataHub", ["source"], registry=registry
        )
        self.info = Info(p, "Build information", registry=registry)
        self.info.info({"version": __version__})
        self.runs_requested.labels(source="LAMBDA_TRIGGER_API")
        for operation in (
            "identify",
            "dataset",
            "tags",
            "job",
            "write_request",
            "read_request",
            "read_result",
            "read_runs",  # one batch read of runs (runs.py): /runs/{id}, /runs, cancel
            "list_runs",  # one search page of runs
            "service_actor",  # who the api's own token is, asked once
            "lineage",  # upstreamLineage reads of a "run with upstream" plan (upstream.py)
        ):
            self.datahub_failures.labels(operation=operation)

    @contextmanager
    def datahub_call(
        self, operation: str, failures: tuple[type[BaseException], ...] = (Exception,)
    ) -> Iterator[None]:
        """Time a DataHub call; count it as failed only for `failures` (a caller DataHub
        rightly refuses is not a DataHub failure)."""
        started = time.perf_counter()
        try:
            yield
        except failures:
            self.datahub_failures.labels(operation=operation).inc()
            raise
        finally:
            self.datahub_duration.labels(operation=operation).observe(time.perf_counter() - started)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route, method = bounded_labels(request)
        status = str(response.status_code) if 100 <= response.status_code <= 599 else "other"
        self.requests.labels(route=route, method=method, status_code=status).inc()
        self.request_duration.labels(route=route, method=method).observe(
            time.perf_counter() - started
        )
        return response


# RFC 9110's methods plus PATCH: anything else a client sends (nginx forwards any token as a
# method, 8,000 characters long if need be) is `other`, so no caller can add series.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def bounded_labels(request: Request) -> tuple[str, str]:
    """(route, method) labels from a fixed set: the route TEMPLATE the request matched (never
    the path: run ids and junk paths would make unbounded values), else `other`; a known
    method, else `other`."""
    route = getattr(request.scope.get("route"), "path", None)
    method = request.method if request.method in KNOWN_METHODS else "other"
    return (route if isinstance(route, str) else "other"), method
