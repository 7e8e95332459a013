"""Attacks on the trust boundary, run against the real parts (Kafka, GMS double, moto).

The integration fixtures (`env`, `api`, `start_consumer`) are shared with tests/integration.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from fastapi.testclient import TestClient
from integration.conftest import (  # noqa: F401  (fixtures, re-exported for pytest)
    POLY,
    SIP,
    UNMAPPED,
    Env,
    RunningConsumer,
    _aws_env,
    api,
    bearer,
    env,
    start_consumer,
)
from prometheus_client import CollectorRegistry

from lambda_trigger.settings import ApiSettings, MappingSettings
from lambda_trigger_api.app import create_app

# What must never leave a service (planted in fake AWS and GMS errors).
LEAK_ACCOUNT = "210987654321"
LEAK_ARN = f"arn:aws:iam::{LEAK_ACCOUNT}:role/lambda-trigger-consumer"
LEAK_URL = "https://internal-gms.corp.example:8443/aspects"
LEAK_MESSAGE = (
    f"User: {LEAK_ARN} is not authorized to perform: lambda:InvokeFunction on resource: "
    f"arn:aws:lambda:us-east-1:{LEAK_ACCOUNT}:function:secret-fn via {LEAK_URL}"
)


def assert_no_leak(text: str, *extra: str) -> None:
    for secret in (LEAK_ACCOUNT, LEAK_ARN, LEAK_URL, "internal-gms", "arn:aws", *extra):
        assert secret not in text, f"{secret!r} leaked: {text[:500]}"


def emit(test_env: Env, urn: str, aspect: Any) -> None:
    client = test_env.datahub()
    try:
        client.graph.emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=aspect))
    finally:
        client.close()


def make_api(test_env: Env, **settings: Any) -> TestClient:
    mapping = settings.pop("mapping_settings", None) or test_env.mapping_settings()
    datahub = settings.pop("datahub_settings", None) or test_env.datahub_settings()
    app = create_app(ApiSettings(**settings), datahub, mapping, registry=CollectorRegistry())
    return TestClient(app, raise_server_exceptions=False)


def mapping_settings(test_env: Env, **kw: Any) -> MappingSettings:
    return MappingSettings(mapping_inline=json.dumps(test_env.mapping), region="us-east-1", **kw)


class _FakeGmsHandler(BaseHTTPRequestHandler):
    """Answers `me` for any token (a privileged user), and every other call with a 500 whose
    body is full of internals, like a GMS stack trace behind a proxy."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(500, json.dumps({"error": LEAK_MESSAGE, "trace": LEAK_URL}).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/api/graphql" and self.headers.get("Authorization") == "Bearer good":
            me = {
                "corpUser": {"urn": "urn:li:corpuser:alice", "username": "alice"},
                "platformPrivileges": {"manageIngestion": True},
            }
            self._reply(200, json.dumps({"data": {"me": me}}).encode())
        elif self.path == "/api/graphql":
            self._reply(401, b"")
        else:
            self._reply(500, json.dumps({"error": LEAK_MESSAGE}).encode())


@pytest.fixture
def failing_gms() -> Iterator[str]:
    """A GMS that knows one token ("good") and fails everything else with internals in the
    error body; its own URL is an internal URL that must not come out either."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGmsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
