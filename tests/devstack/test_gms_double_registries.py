"""The GMS double's other registry set-ups: SCHEMA_REGISTRY_TYPE=AWS_GLUE (Glue-framed MCLs, the
schema registered in moto's Glue registry) and a registry endpoint that wants basic auth.

Decoded here by hand from the bytes on the broker, with boto3 against moto, not with the
consumer's decoder: the double must be right on its own.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import fastavro
import httpx
import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import ExecutionRequestInputClass, ExecutionRequestSourceClass

from devstack.aws import MotoServer
from devstack.gms_double import GmsDouble

pytestmark = pytest.mark.integration


def _double(kafka_bootstrap: str, **kwargs: Any) -> GmsDouble:
    suffix = uuid.uuid4().hex[:8]
    kwargs.setdefault("versioned_topic", f"test-registries-{suffix}.MetadataChangeLog_Versioned_v1")
    kwargs.setdefault(
        "timeseries_topic", f"test-registries-{suffix}.MetadataChangeLog_Timeseries_v1"
    )
    return GmsDouble(kafka_bootstrap, versioned_partitions=1, **kwargs)


def _write_request(double: GmsDouble) -> tuple[str, bytes]:
    urn = f"urn:li:dataHubExecutionRequest:reg-{uuid.uuid4().hex[:12]}"
    aspect = ExecutionRequestInputClass(
        task="T",
        args={},
        executorId="e",
        source=ExecutionRequestSourceClass(type="X"),
        requestedAt=1,
    )
    emitter = DatahubRestEmitter(double.url, token=double.admin_token, retry_max_times=0)
    emitter.emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=aspect))
    emitter.close()
    raw = next(m.raw for m in double.mcl_log() if m.key == urn)
    return urn, raw


@pytest.fixture
def glue_double(
    kafka_bootstrap: str, moto_server: MotoServer, request: pytest.FixtureRequest
) -> Iterator[GmsDouble]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():  # the double's boto3 credentials
            mp.setenv(key, value)
        double = _double(
            kafka_bootstrap,
            schema_registry_type="AWS_GLUE",
            glue_endpoint_url=moto_server.endpoint_url,
            glue_region=moto_server.region,
            glue_registry_name=f"reg-{uuid.uuid4().hex[:8]}",
            glue_compression=getattr(request, "param", "NONE"),
        )
        double.start()
        try:
            yield double
        finally:
            double.stop()


@pytest.mark.parametrize("glue_double", ["NONE", "ZLIB"], indirect=True)
def test_glue_framed_mcl_decodes_with_the_schema_from_glue(
    glue_double: GmsDouble, moto_server: MotoServer
) -> None:
    urn, raw = _write_request(glue_double)
    zlib_on = glue_double.codec.compression == "ZLIB"  # type: ignore[attr-defined]
    assert raw[0] == 3 and raw[1] == (5 if zlib_on else 0)
    version_id = str(uuid.UUID(bytes=raw[2:18]))
    glue = moto_server.client("glue")
    version = glue.get_schema_version(SchemaVersionId=version_id)
    assert version["DataFormat"] == "AVRO" and version["Status"] == "AVAILABLE"
    # AWS's default naming: the schema is the topic, in the configured registry.
    registry_name = glue_double.codec.registry_name  # type: ignore[attr-defined]
    assert version["SchemaArn"].endswith(f":schema/{registry_name}/{glue_double.versioned_topic}")
    body = zlib.decompress(raw[18:]) if zlib_on else raw[18:]
    schema = fastavro.parse_schema(json.loads(version["SchemaDefinition"]))
    decoded = fastavro.schemaless_reader(io.BytesIO(body), schema, None)
    assert isinstance(decoded, dict)
    assert decoded["entityUrn"] == urn and decoded["aspectName"] == "dataHubExecutionRequestInput"


def test_a_second_gms_on_the_same_registry_reuses_the_schema_version(
    glue_double: GmsDouble, kafka_bootstrap: str, moto_server: MotoServer
) -> None:
    _, first = _write_request(glue_double)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            mp.setenv(key, value)
        second_double = _double(
            kafka_bootstrap,
            versioned_topic=glue_double.versioned_topic,
            schema_registry_type="AWS_GLUE",
            glue_endpoint_url=moto_server.endpoint_url,
            glue_region=moto_server.region,
            glue_registry_name=glue_double.codec.registry_name,  # type: ignore[attr-defined]
            create_topics=False,
        )
        second_double.start()
        try:
            _, second = _write_request(second_double)
        finally:
            second_double.stop()
    assert first[2:18] == second[2:18]


def test_registry_with_basic_auth_refuses_anonymous_and_wrong_passwords(
    kafka_bootstrap: str,
) -> None:
    double = _double(kafka_bootstrap, schema_registry_user_info="key:secret").start()
    try:
        url = f"{double.schema_registry_url}schemas/ids/19"
        anonymous = httpx.get(url)
        assert anonymous.status_code == 401
        assert anonymous.json() == {"error_code": 401, "message": "Unauthorized"}
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert httpx.get(url, auth=("key", "wrong")).status_code == 401
        good = httpx.get(url, auth=("key", "secret"))
        assert good.status_code == 200 and good.json()["schemaType"] == "AVRO"
        # GMS's own API is not behind the registry's password.
        assert httpx.get(f"{double.url}/config").status_code == 200
        header = "Basic " + base64.b64encode(b"key:secret").decode()
        assert (
            httpx.get(
                f"{double.schema_registry_url}subjects", headers={"Authorization": header}
            ).status_code
            == 200
        )
    finally:
        double.stop()
