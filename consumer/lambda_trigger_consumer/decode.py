"""Step 2: decode a MetadataChangeLog value.

Wire format (Confluent): byte 0x00, a 4-byte big-endian schema id, then Avro binary. The
writer's schema is fetched by id from the configured registry (GMS's internal registry in
the quickstart, or any Confluent-compatible one) and cached: ids are immutable. DataHub's
AWS_GLUE registry type frames differently: glue_registry.py; registries.py picks the one
`SCHEMA_REGISTRY_TYPE` names. Both implement `Registry`.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from dataclasses import dataclass
from typing import Any, Protocol

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
    schema_id: int | str  # Confluent: the registry's id; AWS Glue: the schema version id


class Registry(Protocol):
    """Where a record's writer schema comes from: the registry type's framing and client."""

    def resolve(self, value: bytes | None) -> tuple[int | str, Any, bytes]:
        """(schema id, parsed writer schema, Avro body). Raises DecodeError for a record that
        can never be decoded, RegistryUnavailable when the registry must be asked again later."""
        ...

    def probe(self) -> str | None:
        """None when the registry answers this consumer; else why not, without secrets."""
        ...

    def close(self) -> None: ...


class RegistryUnavailable(DecodeError):
    """The registry did not answer: transient, so the record is retried, not dead-lettered."""

    def __init__(self, message: str) -> None:
        super().__init__("schema", message)


class SchemaRegistry:
    """Minimal Confluent-compatible client: `GET {url}/schemas/ids/{id}` -> {"schema": "..."}.

    `auth` (basic or bearer, registries.py) goes on every request; `auth_setting` names the
    setting it came from, for the line an operator reads when the registry refuses it. The
    URL never carries credentials (registries.py moves them out), so no message here can."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        auth: httpx.Auth | None = None,
        auth_setting: str | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout)
        # The probe's own client, without kept-alive connections: a registry that went away
        # must show at the next probe (as dependencies.http_probe does), with the same auth.
        self._probe_timeout = min(timeout, 5.0)
        self._probe_client = client or httpx.Client(
            timeout=self._probe_timeout, limits=httpx.Limits(max_keepalive_connections=0)
        )
        if auth is not None:
            self._client.auth = auth
            self._probe_client.auth = auth
        self._auth_setting = auth_setting
        self._cache: dict[int, Any] = {}
        self._lock = threading.Lock()

    def resolve(self, value: bytes | None) -> tuple[int | str, Any, bytes]:
        schema_id, body = split_frame(value)
        return schema_id, self.schema(schema_id), body

    def _refused(self, status: int) -> str:
        if self._auth_setting:
            return f"registry refused the credentials (HTTP {status}); check {self._auth_setting}"
        return (
            f"registry answered HTTP {status}: it wants credentials; set "
            "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO or LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN"
        )

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
            if response.status_code in (401, 403):
                raise RegistryUnavailable(
                    f"schema id {schema_id}: {self._refused(response.status_code)}"
                )
            if response.status_code >= 500 or response.status_code == 429:
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
        return self.probe() is None

    def probe(self) -> str | None:
        """`GET /subjects` with this client's credentials: a refused password shows here,
        at start, not only when the first run request arrives."""
        try:
            response = self._probe_client.get(f"{self._url}/subjects")
        except httpx.TimeoutException:
            return f"no answer within {self._probe_timeout:g} s"
        except httpx.HTTPError as exc:
            return _os_reason(exc)
        if response.status_code in (401, 403):
            return self._refused(response.status_code)
        if response.status_code >= 500:
            return f"answers HTTP {response.status_code}"
        return None

    def close(self) -> None:
        self._client.close()
        self._probe_client.close()


def _os_reason(exc: BaseException) -> str:
    """The OS's words ("Connection refused") from the exception chain, else the class name:
    never str() of an HTTP client error, which may quote the request."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def split_frame(value: bytes | None) -> tuple[int, bytes]:
    if value is None or len(value) < _HEADER.size:
        raise DecodeError("framing", "value shorter than the 5-byte Confluent header")
    magic, schema_id = _HEADER.unpack_from(value)
    if magic != MAGIC_BYTE:
        raise DecodeError(
            "framing", f"magic byte is {magic}, expected 0 (not Confluent Avro framing)"
        )
    return schema_id, value[_HEADER.size :]


def decode_change_log(value: bytes | None, registry: Registry) -> ChangeLog:
    schema_id, schema, body = registry.resolve(value)
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
        except (KeyError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the interpreter's stack (a few thousand
            # `[`s in an aspect); the record is as unusable as one that is not JSON.
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
