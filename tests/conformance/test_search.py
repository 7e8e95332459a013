"""`DataHubGraph.get_urns_by_filter` over execution requests, as the lead's run tracking uses it.

acryl-datahub 1.7.0.17 sends GraphQL `scrollAcrossEntities` (datahub/ingestion/graph/client.py,
get_urns_by_filter) with `types: [EXECUTION_REQUEST]`, `query: "*"`, an `orFilters` AND group
holding the SDK's own `removed` filter (NOT_SOFT_DELETED) and the extra filter, and follows
`nextScrollId`. GMS indexes `dataHubExecutionRequestResult.status` as the KEYWORD field
`executionResultStatus` (ExecutionRequestResult.pdl @Searchable) and answers from
Elasticsearch (devstack/gms_double/search.py cites the rest).
"""

from __future__ import annotations

import pytest
from conftest import request_urn
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.ingestion.graph.client import DatahubClientConfig, DataHubGraph
from datahub.ingestion.graph.filters import RemovedStatusFilter
from datahub.metadata.schema_classes import (
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
    ExecutionRequestSourceClass,
)

from devstack.gms_double import GmsDouble
from lambda_trigger.source_urns import source_urn

pytestmark = pytest.mark.integration

RUNNING = [{"field": "executionResultStatus", "values": ["RUNNING"], "condition": "EQUAL"}]


def _write(gms: GmsDouble, urn: str, status: str | None) -> None:
    emitter = DatahubRestEmitter(gms.url, token=gms.admin_token, retry_max_times=0)
    emitter.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn,
            aspect=ExecutionRequestInputClass(
                task="LAMBDA_TRIGGER_RUN",
                args={},
                executorId="lambda-trigger",
                source=ExecutionRequestSourceClass(
                    type="API", ingestionSource=source_urn("lambda-trigger", urn)
                ),
                requestedAt=1764100000000,
            ),
        )
    )
    if status is not None:
        emitter.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=urn, aspect=ExecutionRequestResultClass(status=status)
            )
        )


def test_running_requests_are_found_by_status(double: GmsDouble) -> None:
    running = sorted(request_urn("search-running") for _ in range(5))
    for urn in running:
        _write(double, urn, "RUNNING")
    finished = request_urn("search-done")
    _write(double, finished, "SUCCESS")
    pending = request_urn("search-pending")
    _write(double, pending, None)

    graph = DataHubGraph(
        DatahubClientConfig(server=double.url, token=double.admin_token, retry_max_times=0)
    )
    found = list(
        graph.get_urns_by_filter(entity_types=["dataHubExecutionRequest"], extraFilters=RUNNING)
    )
    assert sorted(u for u in found if "search-" in u) == running

    # Pages of 2: scrollAcrossEntities follows nextScrollId; order is by urn (equal scores).
    paged = list(
        graph.get_urns_by_filter(
            entity_types=["dataHubExecutionRequest"], extraFilters=RUNNING, batch_size=2
        )
    )
    assert paged == sorted(found)

    # A status moving on leaves the filter.
    DatahubRestEmitter(double.url, token=double.admin_token, retry_max_times=0).emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=running[0], aspect=ExecutionRequestResultClass(status="SUCCESS")
        )
    )
    after = set(
        graph.get_urns_by_filter(entity_types=["dataHubExecutionRequest"], extraFilters=RUNNING)
    )
    assert running[0] not in after and set(running[1:]) <= after

    everything = set(graph.get_urns_by_filter(entity_types=["dataHubExecutionRequest"]))
    assert {finished, pending, *running} <= everything
    # Other entity types are not returned for EXECUTION_REQUEST.
    assert all(u.startswith("urn:li:dataHubExecutionRequest:") for u in everything)


def test_soft_deleted_entities_follow_the_removed_filter(double: GmsDouble) -> None:
    graph = DataHubGraph(
        DatahubClientConfig(server=double.url, token=double.admin_token, retry_max_times=0)
    )
    datasets = set(graph.get_urns_by_filter(entity_types=["dataset"]))
    assert datasets, "the seed holds datasets"
    victim = sorted(datasets)[0]
    graph.soft_delete_entity(victim)
    try:
        assert victim not in set(graph.get_urns_by_filter(entity_types=["dataset"]))
        only_deleted = set(
            graph.get_urns_by_filter(
                entity_types=["dataset"], status=RemovedStatusFilter.ONLY_SOFT_DELETED
            )
        )
        assert victim in only_deleted and only_deleted < datasets | {victim}
    finally:
        graph.set_soft_delete_status(victim, delete=False)


def test_unmodelled_searches_fail_loudly(double: GmsDouble) -> None:
    graph = DataHubGraph(
        DatahubClientConfig(server=double.url, token=double.admin_token, retry_max_times=0)
    )
    with pytest.raises(Exception, match="only the query"):
        list(graph.get_urns_by_filter(entity_types=["dataset"], query="polygon"))
