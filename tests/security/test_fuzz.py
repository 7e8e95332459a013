"""Fuzz the api from its own OpenAPI document (schemathesis), then a hand-written hostile list.

Expected: no answer is a 5xx (the GMS double is up, so a 503 would be a misread 4xx), and every
4xx carries the api's JSON error shape {"status": "failed", "error", "message"}.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client import CollectorRegistry

from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings
from lambda_trigger_api.app import create_app

from .conftest import SIP, Env, bearer

pytestmark = pytest.mark.integration

# 3 operations x 2 modes, less the one with nothing to negate: 1,250 cases, about a minute
EXAMPLES_PER_OPERATION_AND_MODE = 250
MIN_CASES = 1000


def _check(status: int, content_type: str, body: bytes, what: str) -> None:
    assert status < 500, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        assert content_type.startswith("application/json"), f"{what}: {content_type} {body[:300]!r}"
        shape = json.loads(body)
        assert shape["status"] == "failed", what
        assert isinstance(shape["error"], str) and shape["error"], what
        assert isinstance(shape["message"], str) and shape["message"], what


# Run parameters (issue 22): the fuzzed target takes one of each kind, none required, so the
# fuzz reaches the parameter checks with every shape of `parameters` and still starts runs.
FUZZ_PARAMETERS: dict[str, Any] = {
    "properties": {
        "start": {"type": "string", "format": "date"},
        "until": {"type": "string", "format": "date-time"},
        "mode": {"type": "string", "enum": ["incremental", "full"], "default": "incremental"},
        "note": {"type": "string", "pattern": "^[a-z ]*$", "maxLength": 50},
        "batch": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "dryRun": {"type": "boolean", "default": False},
    }
}


@pytest.fixture
def app(env: Env) -> Any:
    env.mapping["targets"]["earnings"]["parameters"] = FUZZ_PARAMETERS
    # No rate limit: the fuzz starts many runs as one user on purpose.
    return create_app(
        ApiSettings(rate_limit_runs=0, docs_enabled=True),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )


def test_property_based_fuzz_from_the_openapi_document(env: Env, app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts: Counter[str] = Counter()
    unsatisfiable: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /api/ingestion/run",
        "GET /api/ingestion/runs/{run_id}",
        "GET /api/ingestion/targets",
    }

    def fuzz(operation: Any, mode: Any) -> None:
        label = operation.label

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            headers = dict(case.headers or {})
            headers.setdefault("Authorization", bearer(env.users["alice"])["Authorization"])
            response = case.call(headers=headers)
            counts[label] += 1
            statuses[response.status_code] += 1
            content_type = response.headers.get("content-type") or [""]
            _check(
                response.status_code,
                content_type[0] if isinstance(content_type, list) else str(content_type),
                response.content,
                f"{case.method} {case.formatted_path} {case.body!r}"[:300],
            )

        try:
            run()
        except Unsatisfiable:
            # Some operations have nothing to negate (a free-form path string): schemathesis
            # finds no invalid case and says so; the positive cases of it still ran.
            unsatisfiable.append(f"{label} {mode}")

    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz(operation, mode)
    total = sum(counts.values())
    assert total >= MIN_CASES, (counts, statuses)
    assert not [s for s in statuses if s >= 500], statuses
    # Any string is a valid path segment: schemathesis finds no invalid run id to send.
    assert unsatisfiable == [
        "GET /api/ingestion/runs/{run_id} negative",
        "POST /api/ingestion/runs/{run_id}/cancel negative",
    ], unsatisfiable


HOSTILE_STRINGS = [
    "\ud800",  # lone high surrogate
    "\udfff",  # lone low surrogate
    "\x00",
    "\x1b[2J",
    "\x7f",
    "\u0085",  # NEXT LINE
    "\u2028",
    "\u2029",
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\ufeff",  # BOM
    "\u200b",  # ZERO WIDTH SPACE
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "'; DROP TABLE runs; --",
    "../../etc/passwd",
    "%00%0d%0a",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "x" * 5000,
    "",
    " ",
]


def _hostile_requests() -> Iterator[tuple[str, str, dict[str, Any]]]:
    json_headers = {"Content-Type": "application/json"}
    for text in HOSTILE_STRINGS:
        urn = f"urn:li:dataset:(urn:li:dataPlatform:hive,{text},PROD)"
        for body in (
            {"datasetUrn": text},
            {"datasetUrn": urn},
            {"datasetUrn": SIP, "reason": text},
            {"datasetUrn": SIP, "jobUrn": text},
            {"datasetUrn": SIP, text or "k": 1},
            {"datasetUrn": SIP, "parameters": {"note": text}},
            {"datasetUrn": SIP, "parameters": {"start": text, "until": text}},
            {"datasetUrn": SIP, "parameters": {text or "k": 1}},
            {"datasetUrn": SIP, "parameters": text},
        ):
            raw = json.dumps(body)  # ensure_ascii: surrogates travel escaped, as a browser sends
            yield "POST", "/api/ingestion/run", {"content": raw, "headers": json_headers}
        if "\ud800" not in text and "\udfff" not in text:
            yield "GET", "/api/ingestion/targets", {"params": {"datasetUrn": urn}}
            yield "GET", "/api/ingestion/targets", {"params": {"datasetUrn": text}}
        raw_path = text.encode("utf-8", "surrogatepass").hex()
        yield "GET", f"/api/ingestion/runs/{raw_path}", {}
    for body_text in (
        "",
        "null",
        "[]",
        "1",
        '"urn"',
        "{",
        '{"datasetUrn": 1}',
        '{"datasetUrn": null}',
        '{"datasetUrn": ["a"]}',
        '{"datasetUrn": {"$gt": ""}}',
        '{"datasetUrn": "' + SIP + '", "reason": 5}',
        '{"datasetUrn": "\\ud800"}',
        '{"datasetUrn": "\\udc00\\ud800"}',
        b"\xff\xfe\x00".decode("latin-1"),
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        json.dumps({"datasetUrn": SIP, "reason": "r" * 1001}),
        json.dumps({"datasetUrn": "urn:li:dataset:(" + "a" * 3000 + ")"}),
        # `parameters` (issue 22): wrong shapes, non-finite and huge numbers, deep nesting, size
        '{"datasetUrn": "' + SIP + '", "parameters": null}',
        '{"datasetUrn": "' + SIP + '", "parameters": []}',
        '{"datasetUrn": "' + SIP + '", "parameters": "x"}',
        '{"datasetUrn": "' + SIP + '", "parameters": {"batch": 1e400}}',
        '{"datasetUrn": "' + SIP + '", "parameters": {"ratio": NaN}}',
        '{"datasetUrn": "' + SIP + '", "parameters": {"ratio": -Infinity}}',
        '{"datasetUrn": "' + SIP + '", "parameters": {"batch": ' + "9" * 5000 + "}}",
        '{"datasetUrn": "' + SIP + '", "parameters": {"batch": ' + "9" * 400 + "}}",
        '{"datasetUrn": "' + SIP + '", "parameters": {"mode": ' + "[" * 900 + "]" * 900 + "}}",
        '{"datasetUrn": "' + SIP + '", "parameters": ' + '{"a":' * 900 + "1" + "}" * 901,
        json.dumps({"datasetUrn": SIP, "parameters": {f"k{i}": i for i in range(5000)}}),
        json.dumps({"datasetUrn": SIP, "parameters": {"note": "a" * 100_000}}),
        json.dumps({"datasetUrn": SIP, "parameters": {"k" * 100_000: 1}}),
        json.dumps({"datasetUrn": SIP, "parameters": {"start": "2026-02-30", "batch": True}}),
        json.dumps({"datasetUrn": SIP, "parameters": {"until": "2026-01-01T25:00:00Z"}}),
        json.dumps({"datasetUrn": SIP, "parameters": {"dryRun": None, "mode": None}}),
    ):
        yield (
            "POST",
            "/api/ingestion/run",
            {
                "content": body_text.encode("latin-1", "replace"),
                "headers": json_headers,
            },
        )
    yield (
        "POST",
        "/api/ingestion/run",
        {"content": b"x" * (10 * 1024 * 1024), "headers": json_headers},
    )
    yield (
        "POST",
        "/api/ingestion/run",
        {
            "content": (b"{" for _ in range(10 * 1024)),  # chunked, 10 KiB of `{`
            "headers": json_headers,
        },
    )
    yield "POST", "/api/ingestion/run", {"content": json.dumps({"datasetUrn": SIP})}  # no type
    yield (
        "POST",
        "/api/ingestion/run",
        {
            "content": json.dumps({"datasetUrn": SIP}),
            "headers": {"Content-Type": "text/plain"},
        },
    )
    yield (
        "POST",
        "/api/ingestion/run",
        {
            "content": "datasetUrn=x",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
    )
    yield "GET", "/api/ingestion/targets", {}
    yield "GET", "/api/ingestion/targets", {"params": {"datasetUrn": ["a", "b"]}}
    yield "GET", f"/api/ingestion/runs/{new_run_id()}%0a", {}
    yield "GET", f"/api/ingestion/runs/{'a' * 10_000}", {}
    yield "GET", "/api/ingestion/runs/%ff%fe", {}
    yield "GET", "/api/ingestion/runs/..%2f..%2fopenapi.json", {}
    yield "PUT", "/api/ingestion/run", {}
    yield "DELETE", f"/api/ingestion/runs/{new_run_id()}", {}
    yield "PATCH", "/api/ingestion/targets", {}
    yield "GET", "/api/ingestion/nope", {}
    yield (
        "GET",
        "/api/ingestion/targets",
        {
            "params": {"datasetUrn": SIP},
            "headers": {"Authorization": "Bearer " + "t" * 100_000},
        },
    )
    yield (
        "GET",
        "/api/ingestion/targets",
        {
            "params": {"datasetUrn": SIP},
            "headers": {"Cookie": "PLAY_SESSION=" + "c" * 100_000},
        },
    )
    yield (
        "GET",
        "/api/ingestion/targets",
        {
            "params": {"datasetUrn": SIP},
            "headers": {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
        },
    )
    yield (
        "GET",
        "/api/ingestion/targets",
        {
            "params": {"datasetUrn": SIP},
            "headers": {"Authorization": "Bearer"},
        },
    )
    yield (
        "GET",
        "/api/ingestion/targets",
        {
            "params": {"datasetUrn": SIP},
            "headers": {"Cookie": "PLAY_SESSION=\x7f; =; ;;"},
        },
    )
    yield (
        "POST",
        "/api/ingestion/run",
        {
            "content": json.dumps({"datasetUrn": SIP}),
            "headers": {**json_headers, "Content-Length": "abc"},
        },
    )


HOSTILE = list(_hostile_requests())


def test_hand_written_hostile_inputs(env: Env, app: Any) -> None:
    assert len(HOSTILE) > 100
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path, kwargs in HOSTILE:
            headers = {**bearer(env.users["alice"]), **kwargs.pop("headers", {})}
            response = client.request(method, path, headers=headers, **kwargs)
            what = f"{method} {path[:80]} {str(kwargs)[:200]}"
            _check(
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
                what,
            )
            if method in ("POST",) and response.status_code == 202:
                continue
