"""DataHub's `SCHEMA_REGISTRY_TYPE=AWS_GLUE`: the Glue wire format and the writer's schema from
AWS Glue Schema Registry.

GMS then produces with AWS's `GlueSchemaRegistryKafkaSerializer`
(metadata-service/factories/.../AwsGlueSchemaRegistryFactory.java; DATA_FORMAT AVRO, schemas
auto-registered, `AWS_GLUE_SCHEMA_REGISTRY_REGION` / `AWS_GLUE_SCHEMA_REGISTRY_NAME`). Its frame
(awslabs/aws-glue-schema-registry, `AWSSchemaRegistryConstants` / `AWSDeserializer`):

    byte 0      header version, 3
    byte 1      compression: 0 none, 5 zlib
    bytes 2-17  the schema version id (a UUID, big-endian as java.util.UUID writes it)
    bytes 18-   the Avro binary, zlib-compressed when byte 1 is 5

The schema version id is unique across registries, so `glue:GetSchemaVersion(SchemaVersionId=)`
alone finds the writer's schema; versions are immutable, so each is fetched once and cached.

Why not the `aws-glue-schema-registry` package from PyPI: its last release is from 2023-10, its
decoder turns a truncated frame into a bare `ValueError` and its "unknown header" message is an
unformatted template, and it would bring orjson and fastjsonschema for some thirty lines we need
(the frame above, tested in tests/unit/lambda_trigger_consumer/test_glue_registry.py).
"""

from __future__ import annotations

import json
import threading
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import fastavro
from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger_consumer.decode import DecodeError, RegistryUnavailable

HEADER_VERSION = 3
COMPRESSION_NONE = 0
COMPRESSION_ZLIB = 5
HEADER_SIZE = 18  # version, compression, 16-byte UUID

# Glue answers these when the caller may not read the schema, or is not who it says: the
# consumer cannot decode anything until an operator fixes the role, so the record waits
# (the partition is blocked and retried), it is not dead-lettered.
_NOT_ALLOWED = {
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
}
_GONE = {"EntityNotFoundException"}
_BAD_REQUEST = {"InvalidInputException", "ValidationException"}


@dataclass(frozen=True)
class GlueFrame:
    schema_version_id: uuid.UUID
    body: bytes  # the Avro binary, decompressed


def split_glue_frame(value: bytes | None) -> GlueFrame:
    """The schema version id and the Avro body of a Glue-framed record (DecodeError "framing"
    if it is not one)."""
    if value is None or len(value) < HEADER_SIZE:
        raise DecodeError(
            "framing",
            f"value of {0 if value is None else len(value)} bytes is shorter than the "
            f"{HEADER_SIZE}-byte AWS Glue header",
        )
    version, compression = value[0], value[1]
    if version != HEADER_VERSION:
        hint = " (Confluent framing: is SCHEMA_REGISTRY_TYPE right?)" if version == 0 else ""
        raise DecodeError(
            "framing",
            f"header version byte is {version}, expected {HEADER_VERSION} "
            f"(not AWS Glue framing){hint}",
        )
    version_id = uuid.UUID(bytes=bytes(value[2:HEADER_SIZE]))
    body = bytes(value[HEADER_SIZE:])
    if compression == COMPRESSION_ZLIB:
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise DecodeError(
                "framing", f"zlib-compressed body does not decompress: {exc}"
            ) from exc
    elif compression != COMPRESSION_NONE:
        raise DecodeError(
            "framing",
            f"compression byte is {compression}, expected {COMPRESSION_NONE} (none) "
            f"or {COMPRESSION_ZLIB} (zlib)",
        )
    return GlueFrame(version_id, body)


class GlueSchemaRegistry:
    """Writer schemas by version id from `glue:GetSchemaVersion`, cached for the process's life.

    `glue` is a boto3 Glue client (region and endpoint from the AWS settings; moto in tests)."""

    def __init__(self, glue: Any) -> None:
        self._glue = glue
        self._cache: dict[uuid.UUID, Any] = {}
        self._lock = threading.Lock()

    def resolve(self, value: bytes | None) -> tuple[str, Any, bytes]:
        frame = split_glue_frame(value)
        return str(frame.schema_version_id), self.schema(frame.schema_version_id), frame.body

    def schema(self, version_id: uuid.UUID) -> Any:
        cached = self._cache.get(version_id)
        if cached is not None:
            return cached
        with self._lock:
            if version_id in self._cache:
                return self._cache[version_id]
            answer = self._fetch(version_id)
            if answer.get("DataFormat", "AVRO") != "AVRO":
                raise DecodeError(
                    "schema",
                    f"schema version {version_id} is {answer.get('DataFormat')}, not AVRO",
                )
            try:
                parsed = fastavro.parse_schema(json.loads(answer["SchemaDefinition"]))
            except (KeyError, ValueError, fastavro.schema.SchemaParseException) as exc:
                raise DecodeError(
                    "schema", f"schema version {version_id}: not a usable Avro schema: {exc}"
                ) from exc
            self._cache[version_id] = parsed
            return parsed

    def _fetch(self, version_id: uuid.UUID) -> dict[str, Any]:
        try:
            answer = self._glue.get_schema_version(SchemaVersionId=str(version_id))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _GONE:
                raise DecodeError(
                    "schema", f"schema version {version_id}: unknown to AWS Glue ({code})"
                ) from exc
            if code in _BAD_REQUEST:
                raise DecodeError(
                    "schema", f"schema version {version_id}: AWS Glue refused the id ({code})"
                ) from exc
            if code in _NOT_ALLOWED:
                raise RegistryUnavailable(
                    f"schema version {version_id}: AWS Glue refused glue:GetSchemaVersion "
                    f"({code}); check the consumer's IAM role (datahub-lambda-trigger iam-policy)"
                ) from exc
            raise RegistryUnavailable(
                f"schema version {version_id}: AWS Glue answered {code or 'an error'}"
            ) from exc
        except BotoCoreError as exc:
            # Endpoint unreachable, timeouts, no credentials: transient for the records.
            raise RegistryUnavailable(
                f"schema version {version_id}: AWS Glue unreachable: {exc}"
            ) from exc
        assert isinstance(answer, dict)
        return answer

    def probe(self) -> str | None:
        """For the dependency monitor: None when Glue answers this caller. A made-up version
        id answers EntityNotFoundException when Glue is reachable and the role may call
        GetSchemaVersion, AccessDeniedException when it may not."""
        try:
            self._glue.get_schema_version(SchemaVersionId=str(uuid.UUID(int=0)))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _GONE or code in _BAD_REQUEST:
                return None
            if code in _NOT_ALLOWED:
                return (
                    f"AWS Glue refused glue:GetSchemaVersion ({code}): the consumer's IAM role "
                    "needs it (datahub-lambda-trigger iam-policy prints it)"
                )
            return f"AWS Glue answered {code or 'an error'}"
        except BotoCoreError as exc:
            return f"AWS Glue unreachable: {exc}"
        return None

    def close(self) -> None:
        close = getattr(self._glue, "close", None)
        if callable(close):
            close()
