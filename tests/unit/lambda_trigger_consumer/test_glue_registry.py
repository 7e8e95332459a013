"""The AWS Glue frame decoder and the GetSchemaVersion client (moto's Glue, in process)."""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from lambda_trigger_consumer.decode import DecodeError, RegistryUnavailable, decode_change_log
from lambda_trigger_consumer.glue_registry import GlueSchemaRegistry, split_glue_frame

from .conftest import MCL_SCHEMA_PATH, encode_mcl

URN = "urn:li:dataHubExecutionRequest:lt-1"
INPUT = {"task": "LAMBDA_TRIGGER_RUN", "args": {}, "executorId": "x", "requestedAt": 1}


def _avro_body() -> bytes:
    # encode_mcl's Confluent frame is 5 bytes; the Avro binary after it is the same.
    return encode_mcl(URN, "dataHubExecutionRequestInput", INPUT)[5:]


def _frame(version: uuid.UUID, body: bytes, *, compression: int = 0, header: int = 3) -> bytes:
    payload = zlib.compress(body) if compression == 5 else body
    return bytes([header, compression]) + version.bytes + payload


@pytest.mark.parametrize("compression", [0, 5])
def test_frame_without_and_with_zlib(compression: int) -> None:
    version = uuid.uuid4()
    frame = split_glue_frame(_frame(version, _avro_body(), compression=compression))
    assert frame.schema_version_id == version
    assert frame.body == _avro_body()


def test_version_id_is_read_big_endian_as_java_writes_it() -> None:
    # java.util.UUID's most significant long first: the UUID's canonical text order.
    raw = bytes([3, 0]) + bytes(range(16)) + b"x"
    assert str(split_glue_frame(raw).schema_version_id) == "00010203-0405-0607-0809-0a0b0c0d0e0f"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (None, "shorter than the 18-byte"),
        (b"\x03\x00" + b"\x00" * 15, "shorter than the 18-byte"),
        (b"\x00" + b"\x00" * 20, "Confluent framing: is SCHEMA_REGISTRY_TYPE right?"),
        (b"\x02\x00" + b"\x00" * 20, "header version byte is 2, expected 3"),
        (b"\x03\x01" + b"\x00" * 20, "compression byte is 1"),
        (b"\x03\x05" + b"\x00" * 16 + b"not zlib", "does not decompress"),
    ],
)
def test_bad_frames_are_framing_errors(raw: bytes | None, words: str) -> None:
    with pytest.raises(DecodeError) as caught:
        split_glue_frame(raw)
    assert caught.value.reason == "framing"
    assert words in str(caught.value)


class _Counting:
    """A real (moto-backed) boto3 Glue client that counts GetSchemaVersion calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def get_schema_version(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.client.get_schema_version(**kwargs)


@pytest.fixture
def glue() -> Iterator[tuple[Any, uuid.UUID, str]]:
    # A registry of its own: moto's state may outlive one `mock_aws` when another test of the
    # session keeps a mock running.
    name = f"datahub-{uuid.uuid4().hex[:8]}"
    with mock_aws():
        client = boto3.client("glue", region_name="eu-west-1")
        client.create_registry(RegistryName=name)
        created = client.create_schema(
            RegistryId={"RegistryName": name},
            SchemaName="MetadataChangeLog_Versioned_v1",
            DataFormat="AVRO",
            Compatibility="NONE",
            SchemaDefinition=MCL_SCHEMA_PATH.read_text(),
        )
        yield client, uuid.UUID(created["SchemaVersionId"]), name


@pytest.mark.parametrize("compression", [0, 5])
def test_glue_framed_mcl_decodes_and_the_schema_is_fetched_once(
    glue: tuple[Any, uuid.UUID, str], compression: int
) -> None:
    client, version, _ = glue
    counting = _Counting(client)
    registry = GlueSchemaRegistry(counting)
    value = _frame(version, _avro_body(), compression=compression)
    first = decode_change_log(value, registry)
    second = decode_change_log(value, registry)
    assert first == second
    assert first.entity_urn == URN and first.aspect == INPUT
    assert first.schema_id == str(version)
    assert counting.calls == 1


def test_unknown_version_id_is_a_schema_error_not_an_outage(
    glue: tuple[Any, uuid.UUID, str],
) -> None:
    client = glue[0]
    unknown = uuid.uuid4()
    with pytest.raises(DecodeError) as caught:
        decode_change_log(_frame(unknown, _avro_body()), GlueSchemaRegistry(client))
    assert not isinstance(caught.value, RegistryUnavailable)  # dead-lettered, not retried
    assert caught.value.reason == "schema"
    assert str(unknown) in str(caught.value) and "EntityNotFoundException" in str(caught.value)
    # ...and the probe counts a made-up id's "not found" as Glue answering.
    assert GlueSchemaRegistry(client).probe() is None


def test_a_non_avro_schema_version_is_refused(glue: tuple[Any, uuid.UUID, str]) -> None:
    client, _, registry_name = glue
    created = client.create_schema(
        RegistryId={"RegistryName": registry_name},
        SchemaName="json-one",
        DataFormat="JSON",
        Compatibility="NONE",
        SchemaDefinition=json.dumps({"type": "object"}),
    )
    with pytest.raises(DecodeError, match="JSON, not AVRO"):
        GlueSchemaRegistry(client).schema(uuid.UUID(created["SchemaVersionId"]))


def test_body_that_does_not_match_the_schema_is_an_avro_error(
    glue: tuple[Any, uuid.UUID, str],
) -> None:
    client, version, _ = glue
    with pytest.raises(DecodeError) as caught:
        decode_change_log(_frame(version, b"\xff\xff\xff"), GlueSchemaRegistry(client))
    assert caught.value.reason == "avro"


def test_glue_unreachable_is_transient() -> None:
    # Nothing listens on port 1: the record must wait (blocked partition), not be dead-lettered.
    client = boto3.client(
        "glue",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    registry = GlueSchemaRegistry(client)
    with pytest.raises(RegistryUnavailable) as caught:
        decode_change_log(_frame(uuid.uuid4(), _avro_body()), registry)
    assert "AWS Glue unreachable" in str(caught.value)
    reason = registry.probe()
    assert reason is not None and "AWS Glue unreachable" in reason


def test_glue_outage_blocks_the_partition_as_a_confluent_registry_outage_does() -> None:
    """The runner's blocked-partition path for every registry type: the request waits (paused,
    offset kept before it), is not dead-lettered, and the records before it are settled."""
    from confluent_kafka import Message

    from .test_poll_batch import TOPIC, _dropped, _handle, _runner

    client = boto3.client(
        "glue",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    runner, metrics = _runner(GlueSchemaRegistry(client))  # type: ignore[arg-type]
    urn = "urn:li:dataHubExecutionRequest:lt-20260101T120000009Z-abcdefghij"
    request = Message(
        topic=TOPIC,
        partition=0,
        offset=2,
        key=urn.encode(),
        value=_frame(uuid.uuid4(), _avro_body()),
    )
    _handle(runner, [_dropped(0, 0), _dropped(0, 1), request, _dropped(0, 3)])
    assert runner._consumer.paused == [(TOPIC, 0, 2)]  # type: ignore[attr-defined]
    assert runner._tracker.committable() == {(TOPIC, 0): 2}
    assert (
        metrics.registry.get_sample_value(
            "lambda_trigger_consumer_decode_failures_total", {"reason": "schema"}
        )
        == 1
    )
    assert metrics.registry.get_sample_value(
        "lambda_trigger_consumer_dead_letters_total", {"reason": "decode_schema"}
    ) in (None, 0)
