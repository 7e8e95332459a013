"""The acryl-datahub SDK in each of its write modes, and its reads, against the GMS double.

DatahubRestEmitter (datahub/emitter/rest_emitter.py of the installed wheel) writes through:

- Rest.li `POST /aspects?action=ingestProposal` `{proposal, async}` (emit_mcp) and
  `POST /aspects?action=ingestProposalBatch` `{proposals, async}` (emit_mcps):
  AspectResource.ingestProposal / ingestProposalBatch; 200 `{"value": ...}`.
- OpenAPI `POST /openapi/v3/entity/{entityType}?async=..` (emit_mcp, emit_mcps grouped per
  entity type): EntityController / GenericEntitiesController.createEntity; 200 when
  `async=false`, 202 when `async=true`.

`async_flag=True` asks GMS to queue the proposal on the MCP topic; the double writes it at once
(ingest.py says so), so the answer codes are GMS's and the MCL comes sooner than with GMS.
"""

from __future__ import annotations

import httpx
import pytest
from conftest import MclTail, request_urn
from datahub.configuration.common import OperationalError
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.ingestion.graph.client import DatahubClientConfig, DataHubGraph
from datahub.metadata.schema_classes import (
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
    ExecutionRequestSourceClass,
)

from devstack.gms_double import GmsDouble
from lambda_trigger.source_urns import source_urn

pytestmark = pytest.mark.integration

MODES = [pytest.param(False, id="restli"), pytest.param(True, id="openapi")]
INPUT = "dataHubExecutionRequestInput"
RESULT = "dataHubExecutionRequestResult"


def _input() -> ExecutionRequestInputClass:
    return ExecutionRequestInputClass(
        task="LAMBDA_TRIGGER_RUN",
        args={"datasetUrn": "urn:li:dataset:(urn:li:dataPlatform:athena,a.b,PROD)"},
        executorId="lambda-trigger",
        source=ExecutionRequestSourceClass(
            type="AIRFLOW", ingestionSource=source_urn("lambda-trigger", "a.b")
        ),
        requestedAt=1764100000000,
    )


def _emitter(gms: GmsDouble, openapi: bool) -> DatahubRestEmitter:
    return DatahubRestEmitter(
        gms.url, token=gms.admin_token, openapi_ingestion=openapi, retry_max_times=0
    )


def _graph(gms: GmsDouble) -> DataHubGraph:
    return DataHubGraph(
        DatahubClientConfig(server=gms.url, token=gms.admin_token, retry_max_times=0)
    )


@pytest.mark.parametrize("openapi", MODES)
@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_emit_mcp_writes_and_produces_one_upsert(
    double: GmsDouble, mcls: MclTail, openapi: bool, async_flag: bool
) -> None:
    urn = request_urn()
    _emitter(double, openapi).emit_mcp(
        MetadataChangeProposalWrapper(entityUrn=urn, aspect=_input()), async_flag=async_flag
    )
    produced = [m for m in mcls.new() if m.aspect_name == INPUT]
    assert len(produced) == 1 and produced[0].key == urn
    assert produced[0].value["changeType"] == "UPSERT"
    assert produced[0].aspect == _input().to_obj()


@pytest.mark.parametrize("openapi", MODES)
def test_emit_mcps_batch(double: GmsDouble, mcls: MclTail, openapi: bool) -> None:
    urns = [request_urn("batch") for _ in range(3)]
    _emitter(double, openapi).emit_mcps(
        [MetadataChangeProposalWrapper(entityUrn=u, aspect=_input()) for u in urns]
    )
    produced = [m.key for m in mcls.new() if m.aspect_name == INPUT]
    assert sorted(produced) == sorted(urns)


@pytest.mark.parametrize("trailing", ["", "/"], ids=["plain", "trailing-slash"])
@pytest.mark.parametrize("is_async", ["false", "true"])
def test_restli_ingest_answer(double: GmsDouble, trailing: str, is_async: str) -> None:
    urn = request_urn()
    mcp = MetadataChangeProposalWrapper(entityUrn=urn, aspect=_input())
    answer = httpx.post(
        f"{double.url}/aspects{trailing}?action=ingestProposal",
        headers={
            "Authorization": f"Bearer {double.admin_token}",
            "X-RestLi-Protocol-Version": "2.0.0",
        },
        json={"proposal": mcp.to_obj(simplified_structure=False), "async": is_async},
    )
    # AspectResource.ingestProposal: an action answering {"value": ...}, with the Rest.li 2.0
    # protocol header, whatever the async flag (the MCP is queued or written).
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-RestLi-Protocol-Version"] == "2.0.0"
    assert "value" in answer.json()
    assert double.get_aspect(urn, INPUT) is not None


@pytest.mark.parametrize("is_async,status", [("false", 200), ("true", 202)])
def test_openapi_ingest_answer(double: GmsDouble, is_async: str, status: int) -> None:
    urn = request_urn()
    answer = httpx.post(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest?async={is_async}",
        headers={"Authorization": f"Bearer {double.admin_token}"},
        json=[{"urn": urn, INPUT: {"value": _input().to_obj()}}],
    )
    # GenericEntitiesController.createEntity: 202 for async, else 200; the body is the list of
    # GenericEntityV3 written (EntityController.buildEntityList).
    assert answer.status_code == status, answer.text
    (entity,) = answer.json()
    assert entity["urn"] == urn
    assert entity[INPUT] == {"value": _input().to_obj()}


def test_graph_reads(double: GmsDouble) -> None:
    urn = request_urn()
    _emitter(double, False).emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=_input()))
    graph = _graph(double)
    assert graph.exists(urn)
    assert graph.get_aspect(urn, ExecutionRequestInputClass) == _input()
    assert graph.get_aspect(urn, ExecutionRequestResultClass) is None
    raw = graph.get_entity_raw(urn, [INPUT])
    assert raw["urn"] == urn and raw["entityName"] == "dataHubExecutionRequest"
    assert set(raw["aspects"]) == {INPUT, "dataHubExecutionRequestKey"}
    bag = graph.get_entity_semityped(urn)
    assert bag[INPUT] == _input()  # type: ignore[literal-required]
    assert not graph.exists(request_urn("never"))


def test_graph_hard_delete(double: GmsDouble, mcls: MclTail) -> None:
    urn = request_urn()
    _emitter(double, False).emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=_input()))
    mcls.new()
    # EntityResource.deleteEntity answers DeleteEntityResponse {urn, rows, timeseriesRows}.
    assert _graph(double).hard_delete_entity(urn) == (2, 0)
    assert [(m.aspect_name, m.value["changeType"]) for m in mcls.new()] == [
        ("dataHubExecutionRequestKey", "DELETE")
    ]


def test_graph_soft_delete_of_a_request(double: GmsDouble, mcls: MclTail) -> None:
    urn = request_urn()
    _emitter(double, False).emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=_input()))
    mcls.new()
    restli = DataHubGraph(
        DatahubClientConfig(
            server=double.url,
            token=double.admin_token,
            retry_max_times=0,
            openapi_ingestion=False,
        )
    )
    # Rest.li: the unknown `status` aspect is a ValidationException -> 422.
    with pytest.raises(OperationalError, match="Unknown aspect status"):
        restli.soft_delete_entity(urn)
    openapi = DataHubGraph(
        DatahubClientConfig(
            server=double.url, token=double.admin_token, retry_max_times=0, openapi_ingestion=True
        )
    )
    # OpenAPI: EntityController.toMCPBatch drops aspects the entity does not have, so the
    # request succeeds and writes nothing.
    openapi.soft_delete_entity(urn)
    assert mcls.new() == []
    assert double.get_aspect(urn, INPUT) is not None
