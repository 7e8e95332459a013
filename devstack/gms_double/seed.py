"""What the double holds when it starts empty: the metadata a real DataHub would already have.

The seed plan's two Athena datasets (tagged finance, one also daily), one Hive dataset nobody maps
to a job, the tags themselves, an Airflow flow and job whose `structuredProperties` carry the
Step Functions ARN under `urn:li:structuredProperty:io.datahub.ingestion.stepFunctionArn`, that
structured property's definition, and the admin user.

Seeding writes straight into the store and produces **no** MCLs: in a real deployment these
aspects were ingested long before the project's consumer started, and their MCLs are either gone
(7-day retention on MetadataChangeLog_Versioned_v1) or behind any consumer group's committed
offset. Producing them on every start would hand a fresh consumer events it must never act on.
The stored rows look like GMS wrote them: key aspect included (DefaultAspectsUtil), version "1",
aspectCreated/aspectModified set to the seeding actor.
"""

from __future__ import annotations

from typing import Any

from datahub.metadata.schema_classes import (
    AzkabanJobTypeClass,
    CorpUserInfoClass,
    DataFlowInfoClass,
    DataJobInfoClass,
    DatasetPropertiesClass,
    GlobalTagsClass,
    PropertyCardinalityClass,
    StatusClass,
    StructuredPropertiesClass,
    StructuredPropertyDefinitionClass,
    StructuredPropertyValueAssignmentClass,
    SubTypesClass,
    TagAssociationClass,
    TagPropertiesClass,
)

from devstack.gms_double import entity_registry as reg
from devstack.gms_double.store import AspectRow, AspectStore

SEED_ACTOR = "urn:li:corpuser:datahub"
SEED_RUN_ID = "devstack-seed"

US_STOCKS = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLYGON_PRICES = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
HIVE_SAMPLE = "urn:li:dataset:(urn:li:dataPlatform:hive,SampleHiveDataset,PROD)"
TAG_FINANCE = "urn:li:tag:finance"
TAG_DAILY = "urn:li:tag:daily"
EXAMPLE_FLOW = "urn:li:dataFlow:(airflow,example_flow,PROD)"
EXAMPLE_JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,example_flow,PROD),example_job)"
STEP_FUNCTION_PROPERTY = "urn:li:structuredProperty:io.datahub.ingestion.stepFunctionArn"
EXAMPLE_STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:example-ingest"
ADMIN_USER = "urn:li:corpuser:datahub"


def _tags(*urns: str) -> GlobalTagsClass:
    return GlobalTagsClass(tags=[TagAssociationClass(tag=u) for u in urns])


def seed_aspects() -> list[tuple[str, Any]]:
    """(urn, aspect object) pairs, in the order they are stored."""
    return [
        (
            US_STOCKS,
            DatasetPropertiesClass(
                name="us_stocks_sip_v2",
                qualifiedName="AwsDataCatalog.financial_data.us_stocks_sip_v2",
                description="US stocks, SIP consolidated feed (v2).",
                customProperties={"table_type": "EXTERNAL_TABLE"},
            ),
        ),
        (US_STOCKS, StatusClass(removed=False)),
        (US_STOCKS, SubTypesClass(typeNames=["Table"])),
        (US_STOCKS, _tags(TAG_FINANCE, TAG_DAILY)),
        (
            POLYGON_PRICES,
            DatasetPropertiesClass(
                name="polygon_prices",
                qualifiedName="AwsDataCatalog.financial_data.polygon_prices",
                description="Daily prices from Polygon.",
                customProperties={"table_type": "EXTERNAL_TABLE"},
            ),
        ),
        (POLYGON_PRICES, StatusClass(removed=False)),
        (POLYGON_PRICES, SubTypesClass(typeNames=["Table"])),
        (POLYGON_PRICES, _tags(TAG_FINANCE)),
        (
            HIVE_SAMPLE,
            DatasetPropertiesClass(
                name="SampleHiveDataset", description="A Hive table no ingestion job is mapped to."
            ),
        ),
        (HIVE_SAMPLE, StatusClass(removed=False)),
        (TAG_FINANCE, TagPropertiesClass(name="finance")),
        (TAG_DAILY, TagPropertiesClass(name="daily")),
        (EXAMPLE_FLOW, DataFlowInfoClass(name="example_flow")),
        (EXAMPLE_FLOW, StatusClass(removed=False)),
        (EXAMPLE_JOB, DataJobInfoClass(name="example_job", type=AzkabanJobTypeClass.COMMAND)),
        (EXAMPLE_JOB, StatusClass(removed=False)),
        (
            EXAMPLE_JOB,
            StructuredPropertiesClass(
                properties=[
                    StructuredPropertyValueAssignmentClass(
                        propertyUrn=STEP_FUNCTION_PROPERTY, values=[EXAMPLE_STATE_MACHINE_ARN]
                    )
                ]
            ),
        ),
        (
            STEP_FUNCTION_PROPERTY,
            StructuredPropertyDefinitionClass(
                qualifiedName="io.datahub.ingestion.stepFunctionArn",
                displayName="Step Functions state machine",
                valueType="urn:li:dataType:datahub.string",
                cardinality=PropertyCardinalityClass.SINGLE,
                entityTypes=["urn:li:entityType:datahub.dataJob"],
                description="ARN of the AWS Step Functions state machine that ingests this job's data.",
            ),
        ),
        (ADMIN_USER, CorpUserInfoClass(active=True, displayName="DataHub", fullName="DataHub")),
    ]


def seed(store: AspectStore, now: int) -> int:
    """Store the seed aspects (and each entity's key aspect); returns the number of rows."""
    audit = {"time": now, "actor": SEED_ACTOR}

    def system_metadata() -> dict[str, Any]:
        return {
            "lastObserved": now,
            "runId": SEED_RUN_ID,
            "lastRunId": "no-run-id-provided",
            "version": "1",
            "aspectCreated": dict(audit),
            "aspectModified": dict(audit),
        }

    rows = 0
    for urn, aspect in seed_aspects():
        key_name, key_value = reg.key_aspect_of(urn)
        if store.latest(urn, key_name) is None:
            store.put_latest(
                urn,
                key_name,
                AspectRow(key_value, system_metadata(), now, SEED_ACTOR),
                keep_previous=False,
            )
            rows += 1
        value = reg.to_pegasus_json(aspect)
        spec = reg.require_entity(reg.parse_urn(urn).entity_type)
        reg.validate_aspect_value(spec, aspect.ASPECT_NAME, value)
        store.put_latest(
            urn,
            aspect.ASPECT_NAME,
            AspectRow(value, system_metadata(), now, SEED_ACTOR),
            keep_previous=False,
        )
        rows += 1
    return rows
