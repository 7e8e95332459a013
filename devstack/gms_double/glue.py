"""GMS with `SCHEMA_REGISTRY_TYPE=AWS_GLUE`: MCLs framed the way AWS's Glue serializer frames them,
their schemas registered in an AWS Glue Schema Registry (moto's, in tests).

Taken from DataHub and AWS's serializer:

- metadata-service/factories/.../kafka/schemaregistry/AwsGlueSchemaRegistryFactory.java: GMS
  produces with `GlueSchemaRegistryKafkaSerializer`, DATA_FORMAT AVRO,
  SCHEMA_AUTO_REGISTRATION_SETTING true, region `AWS_GLUE_SCHEMA_REGISTRY_REGION`, registry
  `AWS_GLUE_SCHEMA_REGISTRY_NAME` (unset: the serializer's "default-registry");
- awslabs/aws-glue-schema-registry: the schema name is the topic name
  (AWSSchemaNamingStrategyDefaultImpl); auto-registration creates the schema, or registers the
  definition as a new version of it, and frames with that version's id; the frame is byte 3
  (header version), a compression byte (0 none, the default; 5 zlib), the 16-byte version id,
  then the Avro binary (compressed when byte 1 is 5).

Written apart from the consumer's decoder (consumer/.../glue_registry.py) on purpose: a double
sharing the code under test could not catch its mistakes.
"""

from __future__ import annotations

import contextlib
import io
import threading
import uuid
import zlib
from typing import Any, Literal

import boto3
import fastavro

from devstack.gms_double.mcl import AvroDatum
from devstack.gms_double.schema_registry import mcl_schema, schema_string

GLUE_HEADER_VERSION = 3
GLUE_COMPRESSION = {"NONE": 0, "ZLIB": 5}
DEFAULT_REGISTRY = "default-registry"


class GlueMclCodec:
    """MetadataChangeLog in Glue framing; each topic's schema registered on first use."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        registry_name: str = DEFAULT_REGISTRY,
        compression: Literal["NONE", "ZLIB"] = "NONE",
        session: boto3.session.Session | None = None,
    ) -> None:
        self.registry_name = registry_name
        self.compression = compression
        self._glue = (session or boto3.session.Session()).client(
            "glue", region_name=region, endpoint_url=endpoint_url
        )
        self._raw_schema = mcl_schema()
        self._parsed = fastavro.parse_schema(self._raw_schema)
        self._definition = schema_string(self._raw_schema)
        self._version_ids: dict[str, uuid.UUID] = {}
        self._lock = threading.Lock()
        self.to_datum = AvroDatum(self._raw_schema)

    def version_id(self, topic: str) -> uuid.UUID:
        """Auto-registration: the registry, the schema (named after the topic) and this
        definition's version, created when missing."""
        with self._lock:
            if topic in self._version_ids:
                return self._version_ids[topic]
            with contextlib.suppress(self._glue.exceptions.AlreadyExistsException):
                self._glue.create_registry(RegistryName=self.registry_name)
            schema_id = {"RegistryName": self.registry_name, "SchemaName": topic}
            try:
                created = self._glue.create_schema(
                    RegistryId={"RegistryName": self.registry_name},
                    SchemaName=topic,
                    DataFormat="AVRO",
                    Compatibility="BACKWARD",
                    SchemaDefinition=self._definition,
                )
                found = created["SchemaVersionId"]
            except self._glue.exceptions.AlreadyExistsException:
                try:
                    found = self._glue.get_schema_by_definition(
                        SchemaId=schema_id, SchemaDefinition=self._definition
                    )["SchemaVersionId"]
                except self._glue.exceptions.EntityNotFoundException:
                    found = self._glue.register_schema_version(
                        SchemaId=schema_id, SchemaDefinition=self._definition
                    )["SchemaVersionId"]
            version = uuid.UUID(found)
            self._version_ids[topic] = version
            return version

    def encode(self, mcl: dict[str, Any], topic: str | None = None) -> bytes:
        if topic is None:
            raise ValueError("Glue framing names the schema by topic: give the topic")
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self._parsed, self.to_datum(mcl))
        payload = body.getvalue()
        if self.compression == "ZLIB":
            payload = zlib.compress(payload)
        header = bytes([GLUE_HEADER_VERSION, GLUE_COMPRESSION[self.compression]])
        return header + self.version_id(topic).bytes + payload

    def decode(self, raw: bytes) -> dict[str, Any]:
        if raw[0] != GLUE_HEADER_VERSION or raw[1] not in GLUE_COMPRESSION.values():
            raise ValueError(f"unexpected Glue framing: {raw[:2]!r}")
        version = uuid.UUID(bytes=raw[2:18])
        if version not in self._version_ids.values():
            raise ValueError(f"unknown schema version id {version}")
        payload = raw[18:] if raw[1] == 0 else zlib.decompress(raw[18:])
        value = fastavro.schemaless_reader(io.BytesIO(payload), self._parsed)
        assert isinstance(value, dict)
        return value
