"""The GMS test double, driven the way the project drives DataHub: with the real acryl-datahub
SDK (DatahubRestEmitter, DataHubGraph) or raw HTTP, against a real Kafka broker.

Each double here gets its own MCL topics (GMS's METADATA_CHANGE_LOG_*_TOPIC_NAME renaming), so
offsets and partition counts are this module's own and other tests' traffic cannot interfere.
"""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from datahub.configuration.common import OperationalError
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.emitter.serialization_helper import pre_json_transform
from datahub.ingestion.graph.client import DatahubClientConfig, DataHubGraph
from datahub.ingestion.graph.config import ClientMode
from datahub.metadata.schema_classes import (
    DataProcessInstanceRunEventClass,
    DataProcessInstanceRunResultClass,
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
    ExecutionRequestSourceClass,
    GlobalTagsClass,
    OperationClass,
    StructuredPropertiesClass,
    UpstreamClass,
    UpstreamLineageClass,
)

from devstack.gms_double import GmsDouble

pytestmark = pytest.mark.integration

ADMIN = "urn:li:corpuser:datahub"
US_STOCKS = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLYGON = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
EXAMPLE_JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,example_flow,PROD),example_job)"
STEP_FUNCTION_PROPERTY = "urn:li:structuredProperty:io.datahub.ingestion.stepFunctionArn"
RESULT = "dataHubExecutionRequestResult"
ME_QUERY = "{ me { corpUser { urn username } platformPrivileges { manageIngestion } } }"
MODES = [pytest.param(False, id="restli"), pytest.param(True, id="openapi")]


# -- helpers ------------------------------------------------------------------------------------


def _new_double(bootstrap: str, **kwargs: Any) -> GmsDouble:
    suffix = uuid.uuid4().hex[:10]
    return GmsDouble(
        bootstrap,
        versioned_topic=f"test-gms-double-{suffix}.MetadataChangeLog_Versioned_v1",
        timeseries_topic=f"test-gms-double-{suffix}.MetadataChangeLog_Timeseries_v1",
        versioned_partitions=3,
        timeseries_partitions=2,
        **kwargs,
    )


@pytest.fixture(scope="module")
def double(kafka_bootstrap: str) -> Iterator[GmsDouble]:
    gms = _new_double(kafka_bootstrap).start()
    try:
        yield gms
    finally:
        gms.stop()


@pytest.fixture(autouse=True)
def _healthy(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "double" in request.fixturenames:
        request.getfixturevalue("double").reset_faults()


def _request_urn(prefix: str = "t") -> str:
    return f"urn:li:dataHubExecutionRequest:{prefix}-{uuid.uuid4().hex[:12]}"


def _emitter(gms: GmsDouble, openapi: bool, token: str | None = "admin") -> DatahubRestEmitter:
    return DatahubRestEmitter(
        gms_server=gms.url,
        token=gms.admin_token if token == "admin" else token,
        openapi_ingestion=openapi,
        retry_max_times=0,
    )


def _graph(gms: GmsDouble) -> DataHubGraph:
    return DataHubGraph(
        DatahubClientConfig(server=gms.url, token=gms.admin_token, retry_max_times=0)
    )


def _input(dataset: str = US_STOCKS) -> ExecutionRequestInputClass:
    return ExecutionRequestInputClass(
        task="LAMBDA_TRIGGER_RUN",
        args={"datasetUrn": dataset},
        executorId="lambda-trigger",
        source=ExecutionRequestSourceClass(type="LAMBDA_TRIGGER_API"),
        requestedAt=1764100000000,
        actorUrn=ADMIN,
    )


def _murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2 (the Java producer's key hash)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


class TopicWatch:
    """Reads, straight from the broker, what a topic received since the watch started."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-gms-double-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        self.partitions: list[int] = []
        deadline = time.monotonic() + 15
        while not self.partitions and time.monotonic() < deadline:
            # A just-created topic can show up in metadata before its partitions do.
            metadata = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
            self.partitions = sorted(metadata.partitions) if metadata is not None else []
            if not self.partitions:
                time.sleep(0.2)
        assert self.partitions, f"topic {topic} has no partitions"
        self._start = self._watermarks()

    def _watermarks(self) -> dict[int, int]:
        return {p: self._high(p) for p in self.partitions}

    def _high(self, partition: int) -> int:
        deadline = time.monotonic() + 10
        while True:
            try:
                tp = TopicPartition(self.topic, partition)
                return int(self._consumer.get_watermark_offsets(tp, timeout=10)[1])
            except KafkaException:
                # NOT_LEADER right after a topic is created: the leader is being elected.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def new_messages(self, timeout: float = 20.0) -> list[Message]:
        end = self._watermarks()
        wanted = {p: (self._start[p], end[p]) for p in self.partitions if end[p] > self._start[p]}
        self._start = end
        if not wanted:
            return []
        self._consumer.assign([TopicPartition(self.topic, p, lo) for p, (lo, _) in wanted.items()])
        remaining = sum(hi - lo for lo, hi in wanted.values())
        got: list[Message] = []
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            msg = self._consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            lo, hi = wanted[msg.partition() or 0]
            if lo <= (msg.offset() or 0) < hi:
                got.append(msg)
                remaining -= 1
        self._consumer.unassign()
        assert remaining == 0, f"{remaining} messages of {self.topic} not read back"
        return got

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def versioned(double: GmsDouble, kafka_bootstrap: str) -> Iterator[TopicWatch]:
    watch = TopicWatch(kafka_bootstrap, double.versioned_topic)
    yield watch
    watch.close()


@pytest.fixture
def timeseries(double: GmsDouble, kafka_bootstrap: str) -> Iterator[TopicWatch]:
    watch = TopicWatch(kafka_bootstrap, double.timeseries_topic)
    yield watch
    watch.close()


def _decode_via_registry(gms: GmsDouble, raw: bytes) -> dict[str, Any]:
    """What a consumer does: read the Confluent framing, fetch the writer schema by id from the
    registry endpoint, decode."""
    magic, schema_id = struct.unpack(">bI", raw[:5])
    assert magic == 0
    answer = httpx.get(f"{gms.schema_registry_url}schemas/ids/{schema_id}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["schemaType"] == "AVRO"
    schema = fastavro.parse_schema(json.loads(answer.json()["schema"]))
    decoded = fastavro.schemaless_reader(io.BytesIO(raw[5:]), schema)
    assert isinstance(decoded, dict)
    return decoded


def _by_aspect(messages: list[Message], aspect: str, double: GmsDouble) -> list[dict[str, Any]]:
    out = []
    for msg in messages:
        value = msg.value()
        assert value is not None
        decoded = _decode_via_registry(double, value)
        if decoded["aspectName"] == aspect:
            out.append({"key": msg.key(), "partition": msg.partition(), "value": decoded})
    return out


def _restli_body(
    urn: str, aspect_name: str, value: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    proposal: dict[str, Any] = {
        "entityType": urn.split(":")[2],
        "entityUrn": urn,
        "changeType": "UPSERT",
        "aspectName": aspect_name,
        "aspect": {"value": json.dumps(value), "contentType": "application/json"},
    }
    if headers:
        proposal["headers"] = headers
    return {"proposal": proposal, "async": "false"}


def _auth(gms: GmsDouble) -> dict[str, str]:
    return {"Authorization": f"Bearer {gms.admin_token}", "X-RestLi-Protocol-Version": "2.0.0"}


# -- writes and MCLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("openapi", MODES)
def test_sdk_write_produces_mcl_keyed_by_urn_that_decodes_to_the_aspect(
    double: GmsDouble, versioned: TopicWatch, openapi: bool
) -> None:
    urn = _request_urn()
    aspect = _input()
    _emitter(double, openapi).emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=aspect))

    messages = versioned.new_messages()
    written = _by_aspect(messages, "dataHubExecutionRequestInput", double)
    assert len(written) == 1
    mcl = written[0]
    assert mcl["key"] == urn.encode()
    # Java's default partitioner: murmur2(key) % partitions.
    assert mcl["partition"] == (_murmur2(urn.encode()) & 0x7FFFFFFF) % len(versioned.partitions)
    value = mcl["value"]
    assert value["entityType"] == "dataHubExecutionRequest"
    assert value["entityUrn"] == urn
    assert value["changeType"] == "UPSERT"
    assert value["aspect"]["contentType"] == "application/json"
    assert json.loads(value["aspect"]["value"]) == pre_json_transform(aspect.to_obj())
    assert value["created"]["actor"] == ADMIN
    assert value["systemMetadata"]["version"] == "1"
    assert value["previousAspectValue"] is None
    # The schema id in the frame is what GMS's registry hands out for the topic.
    registered = httpx.post(
        f"{double.schema_registry_url}subjects/{double.versioned_topic}-value/versions",
        json={"schema": "{}"},
    ).json()["id"]
    raw = next(m.value() for m in messages if m.key() == urn.encode())
    assert raw is not None and struct.unpack(">I", raw[1:5])[0] == registered == 19

    # A new entity also gets its key aspect (DefaultAspectsUtil), with its own MCL.
    keys = _by_aspect(messages, "dataHubExecutionRequestKey", double)
    assert len(keys) == 1
    assert json.loads(keys[0]["value"]["aspect"]["value"]) == {"id": urn.rsplit(":", 1)[1]}
    assert double.get_aspect(urn, "dataHubExecutionRequestInput") == pre_json_transform(
        aspect.to_obj()
    )


@pytest.mark.parametrize("openapi", MODES)
def test_unchanged_rewrite_produces_no_mcl_and_a_change_does(
    double: GmsDouble, versioned: TopicWatch, openapi: bool
) -> None:
    urn = _request_urn()
    emitter = _emitter(double, openapi)
    emitter.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
        )
    )
    assert len(_by_aspect(versioned.new_messages(), RESULT, double)) == 1

    emitter.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
        )
    )
    assert versioned.new_messages() == []
    assert double.aspect_version(urn, RESULT) == 1

    emitter.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="FAILURE")
        )
    )
    changed = _by_aspect(versioned.new_messages(), RESULT, double)
    assert len(changed) == 1
    value = changed[0]["value"]
    assert json.loads(value["aspect"]["value"]) == {"status": "FAILURE"}
    assert json.loads(value["previousAspectValue"]["value"]) == {"status": "RUNNING"}
    assert value["systemMetadata"]["version"] == "2"
    assert value["previousSystemMetadata"]["version"] == "1"
    assert double.aspect_version(urn, RESULT) == 2
    assert double.get_aspect(urn, RESULT, version=1) == {"status": "RUNNING"}


@pytest.mark.parametrize("openapi", MODES)
def test_if_version_match_rejects_a_stale_version_and_accepts_the_current_one(
    double: GmsDouble, versioned: TopicWatch, openapi: bool
) -> None:
    urn = _request_urn()
    emitter = _emitter(double, openapi)

    def write(status: str, version: str) -> None:
        emitter.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=urn,
                aspect=ExecutionRequestResultClass(status=status),
                headers={"If-Version-Match": version},
            )
        )

    write("RUNNING", "-1")  # -1: only if the aspect does not exist yet
    assert double.get_aspect(urn, RESULT) == {"status": "RUNNING"}
    versioned.new_messages()

    with pytest.raises(OperationalError, match="Expected version -1, actual version 1"):
        write("FAILURE", "-1")
    with pytest.raises(OperationalError, match="Expected version 7, actual version 1"):
        write("FAILURE", "7")
    assert double.get_aspect(urn, RESULT) == {"status": "RUNNING"}
    assert versioned.new_messages() == []

    write("FAILURE", "1")
    assert double.get_aspect(urn, RESULT) == {"status": "FAILURE"}
    assert double.aspect_version(urn, RESULT) == 2
    assert len(_by_aspect(versioned.new_messages(), RESULT, double)) == 1
    with pytest.raises(OperationalError, match="Expected version 1, actual version 2"):
        write("RUNNING", "1")


def test_failed_preconditions_answer_with_gms_status_codes(double: GmsDouble) -> None:
    urn = _request_urn()
    restli = httpx.post(
        f"{double.url}/aspects?action=ingestProposal",
        headers=_auth(double),
        json=_restli_body(urn, RESULT, {"status": "RUNNING"}, {"If-Version-Match": "3"}),
    )
    assert restli.status_code == 422
    assert restli.headers["X-RestLi-Error-Response"] == "true"
    assert "Expected version 3, actual version -1" in restli.json()["message"]

    openapi = httpx.post(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest?async=false",
        headers=_auth(double),
        json=[
            {
                "urn": urn,
                RESULT: {"value": {"status": "RUNNING"}, "headers": {"If-Version-Match": "3"}},
            }
        ],
    )
    assert openapi.status_code == 412
    assert openapi.json()["error"] == "Precondition Error"
    assert double.get_aspect(urn, RESULT) is None

    ok = httpx.post(
        f"{double.url}/aspects?action=ingestProposal",
        headers=_auth(double),
        json=_restli_body(urn, RESULT, {"status": "RUNNING"}, {"If-Version-Match": "-1"}),
    )
    assert ok.status_code == 200
    assert ok.json() == {"value": "success"}


def test_create_if_none_match_and_time_preconditions(
    double: GmsDouble, versioned: TopicWatch
) -> None:
    urn = _request_urn()

    def post(
        status: str, headers: dict[str, str] | None = None, change: str = "UPSERT"
    ) -> httpx.Response:
        body = _restli_body(urn, RESULT, {"status": status}, headers)
        body["proposal"]["changeType"] = change
        return httpx.post(
            f"{double.url}/aspects?action=ingestProposal", headers=_auth(double), json=body
        )

    assert post("RUNNING", change="CREATE").status_code == 200
    versioned.new_messages()
    refused = post("FAILURE", change="CREATE")
    assert refused.status_code == 422
    assert "Cannot perform CREATE since the aspect already exists." in refused.json()["message"]
    # With If-None-Match: * the same write is dropped silently (a FILTER, not an error).
    assert post("FAILURE", {"If-None-Match": "*"}, change="CREATE").status_code == 200
    assert double.get_aspect(urn, RESULT) == {"status": "RUNNING"}
    assert versioned.new_messages() == []

    assert post("FAILURE", {"If-Unmodified-Since": "2000-01-01T00:00:00Z"}).status_code == 422
    assert post("FAILURE", {"If-Modified-Since": "2999-01-01T00:00:00Z"}).status_code == 422
    assert double.get_aspect(urn, RESULT) == {"status": "RUNNING"}
    assert post("FAILURE", {"If-Unmodified-Since": "2999-01-01T00:00:00Z"}).status_code == 200
    assert double.get_aspect(urn, RESULT) == {"status": "FAILURE"}


@pytest.mark.parametrize("openapi", MODES)
def test_batch_write_is_atomic_and_produces_one_mcl_per_aspect(
    double: GmsDouble, versioned: TopicWatch, openapi: bool
) -> None:
    urn = _request_urn()
    emitter = _emitter(double, openapi)
    emitter.emit_mcps(
        [
            MetadataChangeProposalWrapper(entityUrn=urn, aspect=_input()),
            MetadataChangeProposalWrapper(
                entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
            ),
        ]
    )
    messages = versioned.new_messages()
    assert {m["value"]["aspectName"] for m in _by_aspect(messages, RESULT, double)} == {RESULT}
    assert len(_by_aspect(messages, "dataHubExecutionRequestInput", double)) == 1
    assert len(_by_aspect(messages, "dataHubExecutionRequestKey", double)) == 1
    assert len(messages) == 3

    # One failing precondition fails the whole batch: nothing of it is written.
    other = _request_urn()
    with pytest.raises(OperationalError):
        emitter.emit_mcps(
            [
                MetadataChangeProposalWrapper(
                    entityUrn=other, aspect=ExecutionRequestResultClass(status="RUNNING")
                ),
                MetadataChangeProposalWrapper(
                    entityUrn=urn,
                    aspect=ExecutionRequestResultClass(status="FAILURE"),
                    headers={"If-Version-Match": "-1"},
                ),
            ]
        )
    assert double.get_aspect(other, RESULT) is None
    assert double.get_aspect(urn, RESULT) == {"status": "RUNNING"}
    assert versioned.new_messages() == []


@pytest.mark.parametrize("openapi", MODES)
def test_terminal_execution_status_cannot_be_overwritten(
    double: GmsDouble, versioned: TopicWatch, openapi: bool
) -> None:
    emitter = _emitter(double, openapi)
    done, failed = _request_urn("done"), _request_urn("failed")
    for urn, final in ((done, "SUCCESS"), (failed, "FAILURE")):
        emitter.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
            )
        )
        emitter.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=urn, aspect=ExecutionRequestResultClass(status=final)
            )
        )
    versioned.new_messages()

    for attempt in ("RUNNING", "SUCCESS"):  # even an identical rewrite is refused
        with pytest.raises(OperationalError, match="Invalid update to immutable state"):
            emitter.emit_mcp(
                MetadataChangeProposalWrapper(
                    entityUrn=done, aspect=ExecutionRequestResultClass(status=attempt)
                )
            )
    assert double.get_aspect(done, RESULT) == {"status": "SUCCESS"}
    assert versioned.new_messages() == []

    # FAILURE is not terminal for the validator.
    emitter.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=failed, aspect=ExecutionRequestResultClass(status="RUNNING")
        )
    )
    assert double.get_aspect(failed, RESULT) == {"status": "RUNNING"}


def test_immutable_status_status_codes(double: GmsDouble) -> None:
    urn = _request_urn()
    for status in ("RUNNING", "CANCELLED"):
        assert (
            httpx.post(
                f"{double.url}/aspects?action=ingestProposal",
                headers=_auth(double),
                json=_restli_body(urn, RESULT, {"status": status}),
            ).status_code
            == 200
        )
    restli = httpx.post(
        f"{double.url}/aspects?action=ingestProposal",
        headers=_auth(double),
        json=_restli_body(urn, RESULT, {"status": "RUNNING"}),
    )
    assert restli.status_code == 422
    assert "previous status: CANCELLED. Denied status update: RUNNING" in restli.json()["message"]
    openapi = httpx.post(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest?async=false",
        headers=_auth(double),
        json=[{"urn": urn, RESULT: {"value": {"status": "RUNNING"}}}],
    )
    assert openapi.status_code == 400
    assert openapi.json()["error"] == "Validation Error"


def test_timeseries_aspect_goes_to_the_timeseries_topic(
    double: GmsDouble, versioned: TopicWatch, timeseries: TopicWatch
) -> None:
    urn = f"urn:li:dataProcessInstance:{uuid.uuid4().hex}"
    event = DataProcessInstanceRunEventClass(
        timestampMillis=1764100000000,
        status="COMPLETE",
        result=DataProcessInstanceRunResultClass(type="SUCCESS", nativeResultType="lambda"),
    )
    _emitter(double, False).emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=event))

    ts = _by_aspect(timeseries.new_messages(), "dataProcessInstanceRunEvent", double)
    assert len(ts) == 1 and ts[0]["key"] == urn.encode()
    assert json.loads(ts[0]["value"]["aspect"]["value"]) == pre_json_transform(event.to_obj())
    on_versioned = versioned.new_messages()
    assert _by_aspect(on_versioned, "dataProcessInstanceRunEvent", double) == []
    assert len(_by_aspect(on_versioned, "dataProcessInstanceKey", double)) == 1


def test_operation_goes_to_the_timeseries_topic_and_upstream_lineage_to_the_versioned(
    double: GmsDouble, versioned: TopicWatch, timeseries: TopicWatch
) -> None:
    """What lineage triggers read (docs/triggers.md): GMS sends a timeseries aspect's MCL to the
    timeseries topic (KafkaEventProducer.produceMetadataChangeLog: `aspectSpec.isTimeseries()`),
    every MCL keyed by `urn.toString()`; and answers the aspect GET of `upstreamLineage`."""
    suffix = uuid.uuid4().hex[:8]
    up = f"urn:li:dataset:(urn:li:dataPlatform:hive,up_{suffix},PROD)"
    down = f"urn:li:dataset:(urn:li:dataPlatform:hive,down_{suffix},PROD)"
    op = OperationClass(
        timestampMillis=1764100000000, lastUpdatedTimestamp=1764100000000, operationType="INSERT"
    )
    lineage = UpstreamLineageClass(upstreams=[UpstreamClass(dataset=up, type="TRANSFORMED")])
    emitter = _emitter(double, False)
    emitter.emit_mcp(MetadataChangeProposalWrapper(entityUrn=up, aspect=op))
    emitter.emit_mcp(MetadataChangeProposalWrapper(entityUrn=down, aspect=lineage))

    ts = _by_aspect(timeseries.new_messages(), "operation", double)
    assert len(ts) == 1 and ts[0]["key"] == up.encode()
    assert json.loads(ts[0]["value"]["aspect"]["value"])["timestampMillis"] == 1764100000000
    on_versioned = versioned.new_messages()
    assert _by_aspect(on_versioned, "operation", double) == []
    lin = _by_aspect(on_versioned, "upstreamLineage", double)
    assert len(lin) == 1 and lin[0]["key"] == down.encode()
    assert json.loads(lin[0]["value"]["aspect"]["value"])["upstreams"][0]["dataset"] == up
    assert _graph(double).get_aspect(down, UpstreamLineageClass) == lineage


# -- reads ---------------------------------------------------------------------------------------


def test_graph_get_aspect_round_trip_and_missing_is_none(double: GmsDouble) -> None:
    graph = _graph(double)
    urn = _request_urn()
    graph.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING", report="r")
        )
    )

    got = graph.get_aspect(urn, ExecutionRequestResultClass)
    assert got == ExecutionRequestResultClass(status="RUNNING", report="r")
    assert graph.get_aspect(_request_urn("missing"), ExecutionRequestResultClass) is None
    assert graph.exists(urn) is True
    assert graph.exists(_request_urn("missing")) is False

    tags = graph.get_aspect(US_STOCKS, GlobalTagsClass)
    assert tags is not None and {t.tag for t in tags.tags} == {
        "urn:li:tag:finance",
        "urn:li:tag:daily",
    }
    polygon = graph.get_aspect(POLYGON, GlobalTagsClass)
    assert polygon is not None and [t.tag for t in polygon.tags] == ["urn:li:tag:finance"]
    props = graph.get_aspect(EXAMPLE_JOB, StructuredPropertiesClass)
    assert props is not None
    assert props.properties[0].propertyUrn == STEP_FUNCTION_PROPERTY
    assert props.properties[0].values == [
        "arn:aws:states:us-east-1:123456789012:stateMachine:example-ingest"
    ]
    assert graph.exists(STEP_FUNCTION_PROPERTY) and graph.exists(US_STOCKS)


def test_test_connection_and_sdk_picks_openapi(double: GmsDouble) -> None:
    emitter = DatahubRestEmitter(gms_server=double.url, token=double.admin_token)
    emitter.test_connection()
    assert emitter.server_config.service_version == "v1.7.0"
    assert emitter._openapi_ingestion is False  # no client mode: Rest.li
    # In SDK client mode, GMS >= 1.0.1 makes the SDK switch to OpenAPI ingestion.
    sdk = DatahubRestEmitter(
        gms_server=double.url, token=double.admin_token, client_mode=ClientMode.SDK
    )
    sdk.test_connection()
    assert sdk._openapi_ingestion is True
    config = httpx.get(f"{double.url}/config")  # no token: /config is excluded from auth
    assert config.status_code == 200 and config.json()["noCode"] == "true"


def test_openapi_get_aspect_with_system_metadata(double: GmsDouble) -> None:
    urn = _request_urn()
    _emitter(double, True).emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
        )
    )
    got = httpx.get(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest/{urn}/{RESULT}?systemMetadata=true",
        headers=_auth(double),
    )
    assert got.status_code == 200
    assert got.json()["value"] == {"status": "RUNNING"}
    assert got.json()["systemMetadata"]["version"] == "1"
    missing = httpx.get(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest/{_request_urn()}/{RESULT}",
        headers=_auth(double),
    )
    assert missing.status_code == 404


# -- auth and GraphQL ----------------------------------------------------------------------------


def test_graphql_me_with_token_and_with_cookie(double: GmsDouble) -> None:
    double.add_token("tok-alice", "urn:li:corpuser:alice", "alice", manage_ingestion=False)
    double.add_session_cookie(
        "PLAY_SESSION=sess-bob; actor=urn%3Ali%3Acorpuser%3Abob",
        "urn:li:corpuser:bob",
        "bob",
        manage_ingestion=True,
    )

    by_token = httpx.post(
        f"{double.url}/api/graphql",
        headers={"Authorization": "Bearer tok-alice"},
        json={"query": ME_QUERY},
    )
    assert by_token.status_code == 200
    assert by_token.json() == {
        "data": {
            "me": {
                "corpUser": {"urn": "urn:li:corpuser:alice", "username": "alice"},
                "platformPrivileges": {"manageIngestion": False},
            }
        }
    }
    by_cookie = httpx.post(
        f"{double.frontend_url}/api/v2/graphql",
        headers={"Cookie": "actor=urn%3Ali%3Acorpuser%3Abob; PLAY_SESSION=sess-bob"},
        json={"query": ME_QUERY},
    )
    assert by_cookie.status_code == 200
    assert by_cookie.json()["data"]["me"]["corpUser"]["username"] == "bob"
    assert by_cookie.json()["data"]["me"]["platformPrivileges"]["manageIngestion"] is True
    # The SDK's GraphQL call goes to GMS with the bearer token.
    assert _graph(double).execute_graphql(ME_QUERY)["me"]["corpUser"]["urn"] == ADMIN

    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert (
            httpx.post(
                f"{double.url}/api/graphql", headers=headers, json={"query": ME_QUERY}
            ).status_code
            == 401
        )
    for headers in ({}, {"Cookie": "PLAY_SESSION=forged"}):
        answer = httpx.post(
            f"{double.frontend_url}/api/v2/graphql", headers=headers, json={"query": ME_QUERY}
        )
        assert answer.status_code == 401 and answer.content == b""

    other = httpx.post(
        f"{double.url}/api/graphql", headers=_auth(double), json={"query": "{ search { total } }"}
    )
    assert other.status_code == 200
    assert "search" in other.json()["errors"][0]["message"]
    assert "only `me` and `scrollAcrossEntities`" in other.json()["errors"][0]["extensions"]["note"]


@pytest.mark.parametrize("openapi", MODES)
def test_write_without_a_valid_token_is_401(
    double: GmsDouble, versioned: TopicWatch, openapi: bool
) -> None:
    urn = _request_urn()
    for token in (None, "not-a-token"):
        with pytest.raises(OperationalError, match="401"):
            _emitter(double, openapi, token=token).emit_mcp(
                MetadataChangeProposalWrapper(
                    entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
                )
            )
    raw = httpx.post(
        f"{double.url}/aspects?action=ingestProposal",
        json=_restli_body(urn, RESULT, {"status": "RUNNING"}),
    )
    assert raw.status_code == 401
    assert b"Unauthorized to perform this action." in raw.content
    assert httpx.get(f"{double.url}/aspects/{urn}?aspect={RESULT}&version=0").status_code == 401
    assert double.get_aspect(urn, RESULT) is None
    assert versioned.new_messages() == []


def test_the_authenticated_actor_is_the_mcl_actor_and_the_audit(
    double: GmsDouble, versioned: TopicWatch
) -> None:
    double.add_token("tok-carol", "urn:li:corpuser:carol", "carol", manage_ingestion=True)
    urn = _request_urn()
    _emitter(double, False, token="tok-carol").emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
        )
    )
    [mcl] = _by_aspect(versioned.new_messages(), RESULT, double)
    assert mcl["value"]["created"]["actor"] == "urn:li:corpuser:carol"
    sm = double.system_metadata(urn, RESULT)
    assert sm is not None and sm["aspectModified"]["actor"] == "urn:li:corpuser:carol"


def test_invalid_proposals_get_gms_4xx(double: GmsDouble) -> None:
    urn = _request_urn()
    mismatch = _restli_body(urn, RESULT, {"status": "RUNNING"})
    mismatch["proposal"]["entityType"] = "dataset"
    answer = httpx.post(
        f"{double.url}/aspects?action=ingestProposal", headers=_auth(double), json=mismatch
    )
    assert answer.status_code == 422
    assert "URN entity type does not match MCP entity type" in answer.json()["message"]

    unknown = httpx.post(
        f"{double.url}/aspects?action=ingestProposal",
        headers=_auth(double),
        json=_restli_body(urn, "globalTags", {"tags": []}),
    )
    assert unknown.status_code == 422
    assert (
        "Unknown aspect globalTags for entity dataHubExecutionRequest" in unknown.json()["message"]
    )

    invalid = httpx.post(
        f"{double.url}/aspects?action=ingestProposal",
        headers=_auth(double),
        json=_restli_body(urn, RESULT, {"report": "no status"}),
    )
    assert invalid.status_code == 422

    extra = _restli_body(urn, RESULT, {"status": "RUNNING"})
    extra["proposal"]["bogusField"] = 1
    answer = httpx.post(
        f"{double.url}/aspects?action=ingestProposal", headers=_auth(double), json=extra
    )
    assert (
        answer.status_code == 400
        and "unrecognized field found but not allowed" in answer.json()["message"]
    )

    # OpenAPI v3 drops aspects the entity does not have (EntityController.toMCPBatch).
    dropped = httpx.post(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest?async=false",
        headers=_auth(double),
        json=[{"urn": urn, "globalTags": {"value": {"tags": []}}}],
    )
    assert dropped.status_code == 200 and dropped.json() == []
    assert double.get_aspect(urn, RESULT) is None


# -- schema registry ------------------------------------------------------------------------------


def test_schema_registry_answers_like_gms_internal_registry(double: GmsDouble) -> None:
    base = double.schema_registry_url
    subject = f"{double.versioned_topic}-value"
    assert httpx.get(f"{base}subjects/{subject}/versions").json() == [1, 2, 3, 4, 5, 6]
    assert httpx.post(f"{base}subjects/{subject}/versions", json={"schema": "{}"}).json() == {
        "id": 19
    }
    assert httpx.post(
        f"{base}subjects/{double.timeseries_topic}-value/versions", json={"schema": "{}"}
    ).json() == {"id": 19}
    latest = httpx.get(f"{base}subjects/{subject}/versions/latest").json()
    assert latest["version"] == 6 and latest["id"] == 19
    assert json.loads(latest["schema"])["name"] == "MetadataChangeLog"
    assert subject in httpx.get(f"{base}subjects").json()
    assert httpx.get(f"{base}schemas/ids/999").status_code == 404
    assert httpx.get(f"{base}subjects/nope-value/versions").status_code == 404
    assert (
        httpx.post(f"{base}subjects/nope-value/versions", json={"schema": "{}"}).status_code == 404
    )
    assert httpx.get(f"{base}subjects/{subject}/versions/x").status_code == 400


# -- fault switches -------------------------------------------------------------------------------


def test_down_refuses_connections_and_comes_back_on_the_same_port(
    double: GmsDouble, versioned: TopicWatch
) -> None:
    url = double.url
    with httpx.Client() as client:
        assert client.get(f"{url}/config").status_code == 200  # a pooled, kept-alive connection
        double.set_down(True)
        with pytest.raises(httpx.TransportError):
            client.get(f"{url}/config")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/config")
        double.set_down(False)
        assert double.url == url
        assert client.get(f"{url}/config").status_code == 200
    urn = _request_urn()
    _emitter(double, False).emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
        )
    )
    assert len(_by_aspect(versioned.new_messages(), RESULT, double)) == 1


def test_slow_delays_every_answer(double: GmsDouble) -> None:
    double.set_slow(0.6)
    started = time.monotonic()
    assert httpx.get(f"{double.url}/config").status_code == 200
    assert time.monotonic() - started >= 0.6
    double.set_slow(0)
    started = time.monotonic()
    httpx.get(f"{double.url}/config")
    assert time.monotonic() - started < 0.6


def test_fail_next_answers_the_given_status_n_times(double: GmsDouble) -> None:
    double.fail_next(2, status=503)
    statuses = [httpx.get(f"{double.url}/config").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    double.fail_next(1)
    urn = _request_urn()
    answer = httpx.post(
        f"{double.url}/aspects?action=ingestProposal",
        headers=_auth(double),
        json=_restli_body(urn, RESULT, {"status": "RUNNING"}),
    )
    assert answer.status_code == 500
    assert double.get_aspect(urn, RESULT) is None  # failed before any processing


# -- state ----------------------------------------------------------------------------------------


def test_seed_is_stored_without_mcls_and_state_survives_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    state = tmp_path / "gms.json"
    first = _new_double(kafka_bootstrap, state_file=state).start()
    watch = TopicWatch(kafka_bootstrap, first.versioned_topic)
    try:
        assert first.mcl_count() == 0
        assert first.get_aspect(US_STOCKS, "datasetKey") == {
            "platform": "urn:li:dataPlatform:athena",
            "name": "AwsDataCatalog.financial_data.us_stocks_sip_v2",
            "origin": "PROD",
        }
        assert first.get_aspect(STEP_FUNCTION_PROPERTY, "propertyDefinition") is not None
        first.add_token("tok-dave", "urn:li:corpuser:dave", "dave", manage_ingestion=True)
        urn = _request_urn()
        _emitter(first, False, token="tok-dave").emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
            )
        )
        assert len(_by_aspect(watch.new_messages(), RESULT, first)) == 1
        admin_token = first.admin_token
    finally:
        first.stop()
        watch.close()

    second = GmsDouble(
        kafka_bootstrap,
        state_file=state,
        versioned_topic=first.versioned_topic,
        timeseries_topic=first.timeseries_topic,
    ).start()
    try:
        assert second.admin_token == admin_token
        assert second.get_aspect(urn, RESULT) == {"status": "RUNNING"}
        assert second.aspect_version(urn, RESULT) == 1
        graph = DataHubGraph(
            DatahubClientConfig(server=second.url, token="tok-dave", retry_max_times=0)
        )
        assert graph.get_aspect(urn, ExecutionRequestResultClass) == ExecutionRequestResultClass(
            status="RUNNING"
        )
    finally:
        second.stop()
