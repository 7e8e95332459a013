"""Producing MetadataChangeLog events to a real Kafka broker the way GMS does.

- Record: metadata-service's `PegasusUtils.constructMCL` (metadata-utils/.../PegasusUtils.java):
  the MCL starts as a copy of the proposal (auditHeader, entityKeyAspect, headers carry over) and
  then gets entityType, entityUrn, changeType, aspectName, created (the write's AuditStamp),
  aspect, systemMetadata and, when there was one, previousAspectValue/previousSystemMetadata.
  `aspect` is a GenericAspect: the aspect's JSON as bytes, contentType "application/json"
  (GenericRecordUtils.serializeAspect).
- Topic and key: `KafkaEventProducer.produceMetadataChangeLog` sends
  `new ProducerRecord(topic, urn.toString(), record)` to MetadataChangeLog_Versioned_v1, or
  MetadataChangeLog_Timeseries_v1 for timeseries aspects (getMetadataChangeLogTopicName).
- Value: Confluent framing (KafkaAvroSerializer): 0x00, the 4-byte big-endian schema id, the
  Avro binary of the wheel's MetadataChangeLog.avsc. The id is the one GMS's internal registry
  hands out for the topic (see schema_registry.py: 19).
- Partitioning: the Java producer's default partitioner hashes the key with murmur2; librdkafka's
  `murmur2_random` partitioner is the same function, so a URN lands on the partition it would
  land on with GMS.
- Producer settings: application.yaml `kafka.producer` (retries 3, deliveryTimeout 30000 ms,
  requestTimeout 3000 ms, backoff 500 ms, compression snappy).
- Synchronous, after the commit: EntityServiceImpl.ingestProposalSync commits the batch's SQL
  transaction (ingestAspectsToLocalDB), then emitMCL sends every MCL (KafkaEventProducer returns
  the send's Future) and joins each future before the write returns, throwing "Failed to produce
  MCLs" if one failed. The MCLs are produced outside the transaction: while one request waits
  for its acknowledgements, GMS commits others. So does the double: `produce` hands the MCLs to
  librdkafka (under the double's write lock, so they leave in commit order, and with
  idempotence on a partition keeps that order through retries) and returns a `Delivery`; the
  request waits on it after the lock is released. A background thread serves the delivery
  callbacks (`poll`) instead of a `flush` per write, which would also wait for every other
  request's MCLs.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import fastavro
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # re-exported by .admin at runtime, not in its hints

from devstack.gms_double.errors import GmsInternalError
from devstack.gms_double.schema_registry import (
    MCL_SCHEMA_ID,
    TIMESERIES_MCL_TOPIC,
    VERSIONED_MCL_TOPIC,
    mcl_schema,
)

log = logging.getLogger(__name__)

CONFLUENT_MAGIC = 0

# application.yaml kafka.producer.* defaults.
_PRODUCER_DEFAULTS: dict[str, Any] = {
    "partitioner": "murmur2_random",
    "compression.type": "snappy",
    "retries": 3,
    "retry.backoff.ms": 500,
    "request.timeout.ms": 3000,
    "delivery.timeout.ms": 30000,
    "linger.ms": 0,
    # Kafka >= 3 Java producers default to acks=all with idempotence; so does this one.
    "enable.idempotence": True,
}


@dataclass(frozen=True)
class ProducedMcl:
    """One MCL as it went to the broker, for tests. `value` is decoded from `raw` when first
    read: the write path does not pay for a decode that only tests look at."""

    topic: str
    partition: int
    offset: int
    key: str
    raw: bytes
    decode: Callable[[bytes], dict[str, Any]] = field(repr=False, compare=False)

    @cached_property
    def value(self) -> dict[str, Any]:
        return self.decode(self.raw)

    @property
    def aspect_name(self) -> str:
        return str(self.value["aspectName"])

    @property
    def aspect(self) -> dict[str, Any] | None:
        generic = self.value.get("aspect")
        if generic is None:
            return None
        parsed = json.loads(generic["value"])
        assert isinstance(parsed, dict)
        return parsed


@dataclass(frozen=True)
class MclRequest:
    topic: str
    key: str
    value: dict[str, Any]


class _NamedTypes:
    """Index of the MCL schema's named types, so nested references (e.g. a later
    "com.linkedin.pegasus2avro.common.AuditStamp") resolve to their definitions."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.by_name: dict[str, Any] = {}
        self.full_names: dict[int, str] = {}  # id(definition) -> its full name
        self._walk(schema, None)

    def _walk(self, node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for item in node:
                self._walk(item, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "enum", "fixed") and "name" in node:
                ns = node.get("namespace", namespace)
                full = node["name"] if "." in node["name"] or not ns else f"{ns}.{node['name']}"
                self.by_name[full] = node
                self.full_names[id(node)] = full
                namespace = ns
            for key in ("fields", "type", "items", "values"):
                if key in node:
                    self._walk(node[key], namespace)


Convert = Callable[[Any], Any]
_NO_DEFAULT = object()


def _identity(value: Any) -> Any:
    return value


class AvroDatum:
    """Turns Pegasus JSON (an MCL as constructMCL builds it, with SystemMetadata and AuditStamps
    as GMS stores them) into the datum fastavro writes for `schema`: absent fields get their
    defaults (None without one), and a union's record branch is named with fastavro's tuple
    notation, `(full name, record)`, so fastavro does not validate the whole record against
    each branch to find it (most of an MCL's encoding time otherwise). The branch is the one
    the MCL schema's unions allow: each is null or one type; a record branch takes a dict.

    The schema is compiled into one converter per node once, instead of walked per MCL."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._types = _NamedTypes(schema)
        self._records: dict[int, Convert] = {}
        self._convert = self._compile(schema)

    def __call__(self, mcl: dict[str, Any]) -> dict[str, Any]:
        datum = self._convert(mcl)
        assert isinstance(datum, dict)
        return datum

    def _compile(self, schema: Any) -> Convert:
        if isinstance(schema, str):
            named = self._types.by_name.get(schema)
            return self._compile(named) if named is not None else _identity
        if isinstance(schema, list):
            return self._union(schema)
        if isinstance(schema, dict):
            kind = schema.get("type")
            if kind == "record":
                return self._record(schema)
            if kind == "map":
                values = self._compile(schema["values"])
                return lambda value: {k: values(v) for k, v in value.items()}
            if kind == "array":
                items = self._compile(schema["items"])
                return lambda value: [items(v) for v in value]
            if isinstance(kind, (dict, list)) or (
                isinstance(kind, str) and kind in self._types.by_name
            ):
                return self._compile(kind)
        return _identity  # primitives, enums, fixed

    def _record(self, schema: dict[str, Any]) -> Convert:
        known = self._records.get(id(schema))
        if known is not None:
            return known
        plan: list[tuple[str, Convert, Any]] = []

        def convert(value: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, field_convert, default in plan:
                item = value.get(name)
                if item is not None:
                    out[name] = field_convert(item)
                else:
                    out[name] = None if default is _NO_DEFAULT else default
            return out

        self._records[id(schema)] = convert  # before the fields: a record may contain itself
        for f in schema["fields"]:
            plan.append((f["name"], self._compile(f["type"]), f.get("default", _NO_DEFAULT)))
        return convert

    def _union(self, branches: list[Any]) -> Convert:
        # (full name of a record branch or None, converter), null left out, in schema order.
        plan: list[tuple[str | None, Convert]] = []
        for branch in branches:
            if branch == "null":
                continue
            resolved = (
                self._types.by_name.get(branch, branch) if isinstance(branch, str) else branch
            )
            if isinstance(resolved, dict) and resolved.get("type") == "record":
                plan.append((self._types.full_names[id(resolved)], self._record(resolved)))
            else:
                plan.append((None, self._compile(resolved)))

        def convert(value: Any) -> Any:
            if value is None:
                return None
            for record_name, branch_convert in plan:
                if record_name is None:
                    return branch_convert(value)
                if isinstance(value, dict):
                    return (record_name, branch_convert(value))
            return value

        return convert


class Codec(Protocol):
    """How GMS frames an MCL for its SCHEMA_REGISTRY_TYPE: MclCodec (INTERNAL, KAFKA) or
    glue.GlueMclCodec (AWS_GLUE, whose schema is named after the topic)."""

    def encode(self, mcl: dict[str, Any], topic: str | None = None) -> bytes: ...

    def decode(self, raw: bytes) -> dict[str, Any]: ...


class MclCodec:
    """Confluent-framed Avro for MetadataChangeLog, with the wheel's schema."""

    def __init__(self, schema_id: int = MCL_SCHEMA_ID) -> None:
        self.schema_id = schema_id
        self._raw_schema = mcl_schema()
        self._parsed = fastavro.parse_schema(self._raw_schema)
        self.to_datum = AvroDatum(self._raw_schema)

    def encode(self, mcl: dict[str, Any], topic: str | None = None) -> bytes:
        # `topic` unused: GMS registers one id for both MCL topics (schema_registry.py).
        buf = io.BytesIO()
        buf.write(struct.pack(">bI", CONFLUENT_MAGIC, self.schema_id))
        fastavro.schemaless_writer(buf, self._parsed, self.to_datum(mcl))
        return buf.getvalue()

    def decode(self, raw: bytes) -> dict[str, Any]:
        magic, schema_id = struct.unpack(">bI", raw[:5])
        if magic != CONFLUENT_MAGIC or schema_id != self.schema_id:
            raise ValueError(f"unexpected framing: magic={magic} id={schema_id}")
        value = fastavro.schemaless_reader(io.BytesIO(raw[5:]), self._parsed)
        assert isinstance(value, dict)
        return value


def create_mcl_topics(
    bootstrap_servers: str,
    versioned_partitions: int,
    timeseries_partitions: int,
    timeout: float = 30.0,
    *,
    versioned_topic: str = VERSIONED_MCL_TOPIC,
    timeseries_topic: str = TIMESERIES_MCL_TOPIC,
    kafka_config: Mapping[str, Any] | None = None,
) -> None:
    """Create the two MCL topics if they are missing (DataHub's kafka-setup job does this before
    GMS starts). Existing topics are left as they are, whatever their partition count."""
    admin = AdminClient(
        {**(kafka_config or {}), "bootstrap.servers": bootstrap_servers}, logger=log
    )
    wanted = {versioned_topic: versioned_partitions, timeseries_topic: timeseries_partitions}
    existing = admin.list_topics(timeout=timeout).topics
    new = [
        NewTopic(t, num_partitions=p, replication_factor=1)
        for t, p in wanted.items()
        if t not in existing
    ]
    if not new:
        return
    for topic, future in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise
        log.info("created topic %s", topic)
    _wait_for_leaders(admin, list(wanted), timeout)


def _wait_for_leaders(admin: AdminClient, topics: list[str], timeout: float) -> None:
    """A just-created topic takes a moment to get partition leaders; until then produce and
    offset lookups fail with NOT_LEADER. Wait, as GMS effectively does by starting after the
    kafka-setup job."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout).topics
        ready = all(
            t in metadata
            and metadata[t].partitions
            and all(p.leader >= 0 for p in metadata[t].partitions.values())
            for t in topics
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"MCL topics {topics} have no partition leaders after {timeout}s")
        time.sleep(0.1)


class Delivery:
    """The MCLs of one write, handed to the producer: `wait` blocks until every one of them is
    acknowledged by the broker (what emitMCL's `getMclFuture().get()` loop does)."""

    def __init__(self, count: int) -> None:
        self._remaining = count
        self._results: list[ProducedMcl | None] = [None] * count
        self._errors: list[str] = []
        self._done = threading.Event()
        self._lock = threading.Lock()
        if count == 0:
            self._done.set()

    def _settle(self, index: int, result: ProducedMcl | None, error: str | None) -> None:
        with self._lock:
            if error is not None:
                self._errors.append(error)
            self._results[index] = result
            self._remaining -= 1
            if self._remaining <= 0:
                self._done.set()

    def wait(
        self, timeout: float = _PRODUCER_DEFAULTS["delivery.timeout.ms"] / 1000 + 5
    ) -> list[ProducedMcl]:
        """The produced MCLs, in produce order; any failure is GMS's "Failed to produce MCLs"."""
        finished = self._done.wait(timeout)
        with self._lock:
            delivered = [r for r in self._results if r is not None]
            if not finished or self._errors or len(delivered) != len(self._results):
                raise GmsInternalError(
                    f"Failed to produce MCLs: {self._errors or f'{self._remaining} undelivered'}"
                )
        return delivered


class MclProducer:
    def __init__(
        self,
        bootstrap_servers: str,
        codec: Codec,
        kafka_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._codec = codec
        self._producer = Producer(
            {
                **(kafka_config or {}),
                "bootstrap.servers": bootstrap_servers,
                "client.id": "gms-double",
                **_PRODUCER_DEFAULTS,
            }
        )
        # Slots in produce order, filled by the delivery callbacks (None: not acknowledged).
        self._log: list[ProducedMcl | None] = []
        self._log_lock = threading.Lock()
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="gms-double-mcl", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        # Serves the delivery callbacks as the broker acknowledges; returns at once when one is
        # ready, so a waiting request is answered without a fixed delay.
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def produce(self, requests: list[MclRequest]) -> Delivery:
        """Hand `requests` to librdkafka in this order and return at once; the caller waits on
        the Delivery (outside its write lock)."""
        delivery = Delivery(len(requests))
        for i, req in enumerate(requests):
            raw = self._codec.encode(req.value, req.topic)
            with self._log_lock:
                slot = len(self._log)
                self._log.append(None)
            self._producer.produce(
                req.topic,
                key=req.key.encode("utf-8"),
                value=raw,
                on_delivery=self._callback(delivery, i, slot, raw, req),
            )
        return delivery

    def _callback(
        self, delivery: Delivery, index: int, slot: int, raw: bytes, req: MclRequest
    ) -> Any:
        def callback(err: Any, msg: Any) -> None:
            if err is not None:
                delivery._settle(index, None, str(err))
                return
            produced = ProducedMcl(
                req.topic, msg.partition(), msg.offset(), req.key, raw, self._codec.decode
            )
            with self._log_lock:
                self._log[slot] = produced
            delivery._settle(index, produced, None)

        return callback

    def produce_all(self, requests: list[MclRequest]) -> list[ProducedMcl]:
        """Produce and wait for every delivery; any failure is GMS's "Failed to produce MCLs"."""
        return self.produce(requests).wait()

    def produced(self) -> list[ProducedMcl]:
        """Every acknowledged MCL, in produce order."""
        with self._log_lock:
            return [m for m in self._log if m is not None]

    def close(self) -> None:
        self._producer.flush(5)
        self._closed.set()
        self._poller.join(5)
        # Destroy the librdkafka client now: left to the garbage collector it keeps
        # reconnecting to a broker that the stack stops next, filling the output with noise.
        self._producer.close()
