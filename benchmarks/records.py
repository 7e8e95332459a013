"""Real MCL records for the benchmarks: written through the GMS double, so that keys and values
are exactly what GMS produces (devstack/gms_double/mcl.py), then replayed in bulk.

Two record sets (issue 25: the drain ratios depend on record size):
- small (`real_records`): `status`, `datasetProperties`, `globalTags` and `browsePathsV2`
  writes on `DATASETS` Hive datasets (the datasets also serve as run targets in the latency
  benchmark), 300-500 bytes each;
- real-shaped (`real_shaped_records`): what an ingestion of a warehouse writes for each of
  `SHAPED_DATASETS` tables: a `schemaMetadata` of 40-64 documented columns (some with tags and
  glossary terms), `ownership`, `datasetProperties` with custom properties, `globalTags`,
  `glossaryTerms`, `upstreamLineage` with column-level lineage, `subTypes`, `status` and
  `browsePathsV2`; a mean of about 2 KB, the schemas 10 KB and more.
Both add the foreign execution request: a `dataHubExecutionRequestInput` of executor
`default`, as DataHub's own UI ingestion writes; every consumer has to decode it to find it is
not its own.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import (
    AuditStampClass,
    BooleanTypeClass,
    BrowsePathEntryClass,
    BrowsePathsV2Class,
    DatasetLineageTypeClass,
    DatasetPropertiesClass,
    DateTypeClass,
    FineGrainedLineageClass,
    FineGrainedLineageDownstreamTypeClass,
    FineGrainedLineageUpstreamTypeClass,
    GlobalTagsClass,
    GlossaryTermAssociationClass,
    GlossaryTermsClass,
    NumberTypeClass,
    OtherSchemaClass,
    OwnerClass,
    OwnershipClass,
    OwnershipTypeClass,
    SchemaFieldClass,
    SchemaFieldDataTypeClass,
    SchemaMetadataClass,
    StatusClass,
    StringTypeClass,
    SubTypesClass,
    TagAssociationClass,
    UpstreamClass,
    UpstreamLineageClass,
    _Aspect,
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
    """The small set: (unrelated records, one foreign execution request), as the double
    produced them."""
    writes: list[tuple[str, _Aspect]] = []
    for i in range(DATASETS):
        urn = dataset_urn(i)
        for aspect in (
            StatusClass(removed=False),
            DatasetPropertiesClass(name=f"table_{i}", description=f"benchmark table {i}"),
            GlobalTagsClass(tags=[TagAssociationClass(tag="urn:li:tag:bench")]),
            BrowsePathsV2Class(path=[BrowsePathEntryClass(id="bench")]),
        ):
            writes.append((urn, aspect))
    return _produced_by(gms, writes)


SHAPED_DATASETS = 24
_TYPES: list[tuple[str, StringTypeClass | NumberTypeClass | DateTypeClass | BooleanTypeClass]] = [
    ("varchar(256)", StringTypeClass()),
    ("bigint", NumberTypeClass()),
    ("decimal(18,4)", NumberTypeClass()),
    ("timestamp", DateTypeClass()),
    ("boolean", BooleanTypeClass()),
    ("string", StringTypeClass()),
]
_WORDS = [
    "customer",
    "order",
    "invoice",
    "account",
    "ledger",
    "region",
    "product",
    "channel",
    "currency",
    "amount",
    "net",
    "gross",
    "tax",
    "discount",
    "status",
    "created",
    "updated",
    "shipped",
    "billing",
    "contract",
    "segment",
    "campaign",
    "margin",
]


def shaped_dataset_urn(i: int) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:snowflake,analytics.finance.fact_table_{i},PROD)"


def _shaped_aspects(i: int) -> list[_Aspect]:
    """What one warehouse table's ingestion writes (shapes of DataHub's Snowflake source)."""
    urn = shaped_dataset_urn(i)
    stamp = AuditStampClass(time=1_700_000_000_000 + i, actor="urn:li:corpuser:ingestion")
    columns = 40 + (i * 7) % 25  # 40-64 columns
    fields = []
    for c in range(columns):
        native, kind = _TYPES[(i + c) % len(_TYPES)]
        word, other = _WORDS[(i + c) % len(_WORDS)], _WORDS[(i * 3 + c) % len(_WORDS)]
        fields.append(
            SchemaFieldClass(
                fieldPath=f"{word}_{other}_{c}",
                type=SchemaFieldDataTypeClass(type=kind),
                nativeDataType=native,
                description=f"The {word} {other} of the row, as loaded from the {other} "
                f"system (column {c} of fact_table_{i}).",
                nullable=c % 3 != 0,
                isPartOfKey=c == 0,
                globalTags=GlobalTagsClass(tags=[TagAssociationClass(tag="urn:li:tag:PII")])
                if c % 9 == 4
                else None,
                glossaryTerms=GlossaryTermsClass(
                    terms=[GlossaryTermAssociationClass(urn=f"urn:li:glossaryTerm:Finance.{word}")],
                    auditStamp=stamp,
                )
                if c % 11 == 2
                else None,
            )
        )
    upstreams = [
        f"urn:li:dataset:(urn:li:dataPlatform:snowflake,raw.finance.source_{i}_{u},PROD)"
        for u in range(3)
    ]
    return [
        SchemaMetadataClass(
            schemaName=f"analytics.finance.fact_table_{i}",
            platform="urn:li:dataPlatform:snowflake",
            version=0,
            hash="",
            platformSchema=OtherSchemaClass(rawSchema=""),
            fields=fields,
            lastModified=stamp,
        ),
        OwnershipClass(
            owners=[
                OwnerClass(
                    owner="urn:li:corpuser:finance.analyst", type=OwnershipTypeClass.TECHNICAL_OWNER
                ),
                OwnerClass(
                    owner="urn:li:corpGroup:finance-data", type=OwnershipTypeClass.BUSINESS_OWNER
                ),
                OwnerClass(
                    owner="urn:li:corpuser:data.steward", type=OwnershipTypeClass.DATA_STEWARD
                ),
            ],
            lastModified=stamp,
        ),
        DatasetPropertiesClass(
            name=f"fact_table_{i}",
            qualifiedName=f"ANALYTICS.FINANCE.FACT_TABLE_{i}",
            description=f"Daily facts of the finance domain, table {i}: one row per order line, "
            "loaded nightly from the raw layer and reconciled against the ledger.",
            customProperties={
                "table_type": "BASE TABLE",
                "clustering_key": "LINEAR(created_date)",
                "retention_time": "90",
                "row_count": str(1_000_000 + i * 37_911),
                "size_in_bytes": str(5_000_000_000 + i * 1_234_567),
                "owner_role": "FINANCE_ENGINEER",
                "is_transient": "false",
                "last_altered": "2024-11-03T04:12:55Z",
            },
        ),
        GlobalTagsClass(
            tags=[TagAssociationClass(tag=f"urn:li:tag:{t}") for t in ("finance", "gold", "daily")]
        ),
        GlossaryTermsClass(
            terms=[
                GlossaryTermAssociationClass(urn="urn:li:glossaryTerm:Finance.Revenue"),
                GlossaryTermAssociationClass(urn="urn:li:glossaryTerm:Finance.Order"),
            ],
            auditStamp=stamp,
        ),
        UpstreamLineageClass(
            upstreams=[
                UpstreamClass(dataset=u, type=DatasetLineageTypeClass.TRANSFORMED, auditStamp=stamp)
                for u in upstreams
            ],
            fineGrainedLineages=[
                FineGrainedLineageClass(
                    upstreamType=FineGrainedLineageUpstreamTypeClass.FIELD_SET,
                    upstreams=[f"urn:li:schemaField:({upstreams[c % 3]},{fields[c].fieldPath})"],
                    downstreamType=FineGrainedLineageDownstreamTypeClass.FIELD,
                    downstreams=[f"urn:li:schemaField:({urn},{fields[c].fieldPath})"],
                )
                for c in range(0, columns, 5)
            ],
        ),
        SubTypesClass(typeNames=["Table"]),
        StatusClass(removed=False),
        BrowsePathsV2Class(
            path=[BrowsePathEntryClass(id="analytics"), BrowsePathEntryClass(id="finance")]
        ),
    ]


def real_shaped_records(gms: Any) -> tuple[list[Pair], Pair]:
    """The real-shaped set: what the double produced for `SHAPED_DATASETS` warehouse tables
    (plus the key aspects it emits for new entities, as GMS does), and one foreign request."""
    writes = [
        (shaped_dataset_urn(i), a) for i in range(SHAPED_DATASETS) for a in _shaped_aspects(i)
    ]
    return _produced_by(gms, writes)


def mean_size(pairs: list[Pair]) -> float:
    return sum(len(k) + len(v) for k, v in pairs) / len(pairs)


def _produced_by(gms: Any, writes: list[tuple[str, _Aspect]]) -> tuple[list[Pair], Pair]:
    before = gms.mcl_count()
    emitter = DatahubRestEmitter(gms.url, token=gms.admin_token)
    for urn, aspect in writes:
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
            # GMS's record batches: application.yaml's kafka.producer sets no batch size, so
            # GMS's Java producer batches at most 16,384 bytes a partition (its default).
            # librdkafka's default is 1,000,000 bytes: batches 60 times larger than any a
            # DataHub writes, each decompressed whole, make a consumer's fetches and memory
            # unlike those it meets. (Java counts compressed bytes, librdkafka uncompressed, so
            # these batches are if anything smaller than GMS's.)
            "batch.size": 16_384,
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
