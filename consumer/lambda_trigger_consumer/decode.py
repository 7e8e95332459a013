"""Step 2: decode a MetadataChangeLog value.

Wire format (Confluent): byte 0x00, a 4-byte big-endian schema id, then Avro binary. The
writer's schema is fetched by id from the configured registry (GMS's internal registry in
the quickstart, or any Confluent-compatible one) and cached: ids are immutable.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from dataclasses import dataclass
from typing import Any

import fastavro
import httpx

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")


class DecodeError(Exception):
    """A record that cannot be decoded. `reason` is a metric label: framing, schema, avro, aspect."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ChangeLog:
    """The MCL fields this project reads."""

    entity_urn: str
    entity_type: str
    change_type: str
    aspect_name: str | None
    aspect: dict[str, Any] | None
    actor: str | None
    created_ms: int | None
    schema_id: int


class RegistryUnavailable(DecodeError):
    """The registry did not answer: transient, so the record is retried, not dead-lettered."""

    def __init__(self, message: str) -> None:
        super().__init__("schema", message)


class SchemaRegistry:
    """Minimal Confluent-compatible client: `GET {url}/schemas/ids/{id}` -> {"schema": "..."}."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        self._url = url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout)
        self._cache: dict[int, Any] = {}
        self._lock = threading.Lock()

    def schema(self, schema_id: int) -> Any:
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        with self._lock:
            if schema_id in self._cache:
                return self._cache[schema_id]
            try:
                response = self._client.get(f"{self._url}/schemas/ids/{schema_id}")
            except httpx.HTTPError as exc:
                raise RegistryUnavailable(
                    f"schema registry unreachable for id {schema_id}: {exc}"
                ) from exc
            if response.status_code >= 500 or response.status_code in (401, 403, 429):
                raise RegistryUnavailable(
                    f"schema id {schema_id}: registry answered HTTP {response.status_code}"
                )
            if response.status_code != 200:
                raise DecodeError(
                    "schema",
                    f"schema id {schema_id}: registry answered HTTP {response.status_code}",
                )
            try:
                parsed = fastavro.parse_schema(json.loads(response.json()["schema"]))
            except (KeyError, ValueError, fastavro.schema.SchemaParseException) as exc:
                raise DecodeError(
                    "schema", f"schema id {schema_id}: not a usable Avro schema: {exc}"
                ) from exc
            self._cache[schema_id] = parsed
            return parsed

    def prefetch(self, subject: str) -> int | None:
        """The subject's latest schema into the cache before the first record needs it
        (issue 25: the first run request after a start waited for its schema). Confluent's
        `GET /subjects/{subject}/versions/latest`, which GMS's internal registry answers too.
        A subject the registry does not know (another subject naming strategy) is no error:
        the first record fetches its schema by id as before. Raises RegistryUnavailable while
        the registry does not answer. Returns the schema id cached, if any."""
        try:
            response = self._client.get(f"{self._url}/subjects/{subject}/versions/latest")
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"schema registry unreachable: {exc}") from exc
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            raise RegistryUnavailable(
                f"subject {subject}: registry answered HTTP {response.status_code}"
            )
        if response.status_code != 200:
            return None
        try:
            body = response.json()
            schema_id = int(body["id"])
            parsed = fastavro.parse_schema(json.loads(body["schema"]))
        except (KeyError, TypeError, ValueError, fastavro.schema.SchemaParseException):
            return None
        with self._lock:
            self._cache.setdefault(schema_id, parsed)
        return schema_id

    def reachable(self) -> bool:
        try:
            return self._client.get(f"{self._url}/subjects").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()


def split_frame(value: bytes | None) -> tuple[int, bytes]:
    if value is None or len(value) < _HEADER.size:
        raise DecodeError("framing", "value shorter than the 5-byte Confluent header")
    magic, schema_id = _HEADER.unpack_from(value)
    if magic != MAGIC_BYTE:
        raise DecodeError(
            "framing", f"magic byte is {magic}, expected 0 (not Confluent Avro framing)"
        )
    return schema_id, value[_HEADER.size :]


def decode_change_log(value: bytes | None, registry: SchemaRegistry) -> ChangeLog:
    schema_id, body = split_frame(value)
    schema = registry.schema(schema_id)
    try:
        record = fastavro.schemaless_reader(io.BytesIO(body), schema, None)
    except (
        Exception
    ) as exc:  # fastavro raises many types on corrupt input (EOFError, ValueError, ...)
        raise DecodeError(
            "avro", f"Avro body does not match schema id {schema_id}: {exc!r}"
        ) from exc
    if not isinstance(record, dict):
        raise DecodeError("avro", "decoded record is not a MetadataChangeLog")
    aspect: dict[str, Any] | None = None
    generic = record.get("aspect")
    if generic is not None:
        if generic.get("contentType") != "application/json":
            raise DecodeError(
                "aspect", f"aspect content type {generic.get('contentType')!r} is not JSON"
            )
        try:
            parsed = json.loads(generic["value"])
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise DecodeError("aspect", f"aspect value is not JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise DecodeError("aspect", "aspect value is not a JSON object")
        aspect = parsed
    created = record.get("created") or {}
    return ChangeLog(
        entity_urn=str(record.get("entityUrn") or ""),
        entity_type=str(record.get("entityType") or ""),
        change_type=str(record.get("changeType") or ""),
        aspect_name=record.get("aspectName"),
        aspect=aspect,
        actor=created.get("actor"),
        created_ms=created.get("time"),
        schema_id=schema_id,
    )
