from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import datahub
import fastavro
import httpx
import pytest

from lambda_trigger_consumer.decode import SchemaRegistry

MCL_SCHEMA_PATH = Path(datahub.__file__).parent / "metadata" / "schemas" / "MetadataChangeLog.avsc"
SCHEMA_ID = 7


def mcl_schema() -> Any:
    return fastavro.parse_schema(json.loads(MCL_SCHEMA_PATH.read_text()))


def encode_mcl(
    urn: str,
    aspect_name: str,
    aspect: dict[str, Any] | None,
    *,
    change_type: str = "UPSERT",
    entity_type: str = "dataHubExecutionRequest",
    actor: str = "urn:li:corpuser:datahub",
    schema_id: int = SCHEMA_ID,
) -> bytes:
    record = {
        "entityType": entity_type,
        "entityUrn": urn,
        "changeType": change_type,
        "aspectName": aspect_name,
        "aspect": None
        if aspect is None
        else {"value": json.dumps(aspect).encode(), "contentType": "application/json"},
        "created": {"time": 1_700_000_000_000, "actor": actor},
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, mcl_schema(), record)
    return struct.pack(">bI", 0, schema_id) + buf.getvalue()


class RegistryCalls:
    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def registry() -> tuple[SchemaRegistry, RegistryCalls]:
    """A SchemaRegistry client over an in-memory transport serving the wheel's MCL schema."""
    calls = RegistryCalls()
    schema_text = MCL_SCHEMA_PATH.read_text()

    def handle(request: httpx.Request) -> httpx.Response:
        calls.count += 1
        if request.url.path == f"/api/schemas/ids/{SCHEMA_ID}":
            return httpx.Response(200, json={"schema": schema_text, "schemaType": "AVRO"})
        if request.url.path == "/api/schemas/ids/500":
            return httpx.Response(503)
        return httpx.Response(404, json={"error_code": 40403, "message": "Schema not found"})

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return SchemaRegistry("http://registry/api/", client=client), calls
