"""Real MCL records for the benchmarks: written through the GMS double, so that keys and values
are exactly what GMS produces (devstack/gms_double/mcl.py), then replayed in bulk.

- Unrelated traffic: `status`, `datasetProperties`, `globalTags` and `browsePathsV2` writes on
  `DATASETS` Hive datasets (the datasets also serve as run targets in the latency benchmark).
- The foreign execution request: a `dataHubExecutionRequestInput` of executor `default`, as
  DataHub's own UI ingestion writes; every consumer has to decode it to find it is not its own.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import (
    BrowsePathEntryClass,
    BrowsePathsV2Class,
    DatasetPropertiesClass,
    GlobalTagsClass,
    StatusClass,
    TagAssociationClass,
)

from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import DataHubSettings
from lambda_trigger.urns import EXECUTION_REQUEST_PREFIX

DATASETS = 10
Pair = tuple[bytes, bytes]


def dataset_urn(i: int) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:hive,bench.table_{i},PROD)"


def real_records(gms: Any) -> tuple[list[Pair], Pair]:
    """(unrelated records, one foreign execution request), as the double produced them."""
    before = gms.mcl_count()
    emitter = DatahubRestEmitter(gms.url, token=gms.admin_token)
    for i in range(DATASETS):
        urn = dataset_urn(i)
        for aspect in (
            StatusClass(removed=False),
            DatasetPropertiesClass(name=f"table_{i}", description=f"benchmark table {i}"),
            GlobalTagsClass(tags=[TagAssociationClass(tag="urn:li:tag:bench")]),
            BrowsePathsV2Class(path=[BrowsePathEntryClass(id="bench")]),
        ):
            emitter.emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=aspect))
    emitter.close()
    client = DataHubClient(
        DataHubSettings(gms_url=gms.url, gms_token=gms.admin_token, executor_id="default")
    )
    try:
        client.write_request(
            RunRequest(
                run_id=new_run_id(),
                dataset_urn=dataset_urn(0),
                executor_id="default",
                source_type=SourceType.SDK.value,
                requested_at_ms=now_ms(),
            )
        )
    finally:
        client.close()
    produced = gms.mcl_log()[before:]
    unrelated = [
        (m.key.encode(), m.raw) for m in produced if not m.key.startswith(EXECUTION_REQUEST_PREFIX)
    ]
    foreign = [
        (m.key.encode(), m.raw)
        for m in produced
        if m.key.startswith(EXECUTION_REQUEST_PREFIX)
        and m.aspect_name == "dataHubExecutionRequestInput"
    ]
    assert unrelated and foreign, "the GMS double produced no MCLs"
    return unrelated, foreign[0]


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Three partitions, as the double's (and a default DataHub's) MCL topic."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        if (
            meta is not None
            and meta.partitions
            and all(p.leader >= 0 for p in meta.partitions.values())
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic} has no leaders")


def fill_topic(
    bootstrap: str, topic: str, records: int, unrelated: list[Pair], foreign: Pair, every: int
) -> None:
    """`records` records; one in `every` the foreign request (under its own key), the rest the
    unrelated records in turn. Partitioned by key as GMS does (murmur2)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "partitioner": "murmur2_random",
            "compression.type": "snappy",  # GMS's producer setting
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    prefix = foreign[0].rsplit(b":", 1)[0]
    for i in range(records):
        if i % every == every - 1:
            key, value = prefix + f":foreign-{i}".encode(), foreign[1]
        else:
            key, value = unrelated[i % len(unrelated)]
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
    if producer.flush(120):
        raise RuntimeError(f"records for {topic} were not delivered")
