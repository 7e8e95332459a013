"""Each request form the official clients send, with and without a trailing slash and with raw
and URL-encoded URNs, answered as GMS's servlet mapping and Rest.li router answer it
(devstack/gms_double/routes.py cites WebApplicationInitializer.java, RestLiRouter.process and
ArgumentUtils.parseSimplePathKey)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import POLYGON, request_urn
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import ExecutionRequestResultClass

from devstack.gms_double import GmsDouble

pytestmark = pytest.mark.integration

RESULT = "dataHubExecutionRequestResult"


def _headers(gms: GmsDouble) -> dict[str, str]:
    return {"Authorization": f"Bearer {gms.admin_token}", "X-RestLi-Protocol-Version": "2.0.0"}


@pytest.fixture(scope="module")
def run(double: GmsDouble) -> str:
    urn = request_urn("forms")
    DatahubRestEmitter(double.url, token=double.admin_token, retry_max_times=0).emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="RUNNING")
        )
    )
    return urn


def _key_forms(urn: str) -> list[str]:
    # Urn.url_encode (quote with safe="") is what the SDK sends; a raw URN is what a user types.
    return [urn, quote(urn, safe="")]


@pytest.mark.parametrize("trailing", ["", "/"])
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "encoded"])
def test_get_aspect(double: GmsDouble, run: str, trailing: str, encoded: bool) -> None:
    key = _key_forms(run)[encoded]
    answer = httpx.get(
        f"{double.url}/aspects/{key}{trailing}?aspect={RESULT}&version=0", headers=_headers(double)
    )
    # AspectResource.get: VersionedAspect {aspect: {<Pegasus class>: value}, version}.
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "aspect": {"com.linkedin.execution.ExecutionRequestResult": {"status": "RUNNING"}},
        "version": 0,
    }


@pytest.mark.parametrize("trailing", ["", "/"])
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "encoded"])
def test_entities_v2_get(double: GmsDouble, run: str, trailing: str, encoded: bool) -> None:
    key = _key_forms(run)[encoded]
    answer = httpx.get(
        f"{double.url}/entitiesV2/{key}{trailing}?aspects=List({RESULT})", headers=_headers(double)
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["urn"] == run and body["entityName"] == "dataHubExecutionRequest"
    # EnvelopedAspect: name, type VERSIONED, version 0 (the latest row), value, created,
    # systemMetadata; the key aspect is added (getCorrespondingAspects).
    result = body["aspects"][RESULT]
    assert {k: result[k] for k in ("name", "type", "version", "value")} == {
        "name": RESULT,
        "type": "VERSIONED",
        "version": 0,
        "value": {"status": "RUNNING"},
    }
    assert result["systemMetadata"]["version"] == "1"
    assert set(body["aspects"]) == {RESULT, "dataHubExecutionRequestKey"}


def test_entities_v2_without_key_aspect(double: GmsDouble, run: str) -> None:
    answer = httpx.get(
        f"{double.url}/entitiesV2/{quote(run, safe='')}?aspects=List({RESULT})"
        "&alwaysIncludeKeyAspect=false",
        headers=_headers(double),
    )
    assert set(answer.json()["aspects"]) == {RESULT}


@pytest.mark.parametrize("trailing", ["", "/"])
def test_entities_v2_batch_get(double: GmsDouble, run: str, trailing: str) -> None:
    other = POLYGON
    ids = ",".join(quote(u, safe="") for u in (run, other))
    answer = httpx.get(
        f"{double.url}/entitiesV2{trailing}?ids=List({ids})", headers=_headers(double)
    )
    # EntityV2Resource.batchGet: a BatchKVResponse; datahub/cli/migrate.py reads .results.
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert set(results) == {run, other}
    assert results[run]["aspects"][RESULT]["value"] == {"status": "RUNNING"}
    assert "datasetProperties" in results[other]["aspects"]


@pytest.mark.parametrize("trailing", ["", "/"])
def test_hard_delete_action(double: GmsDouble, trailing: str) -> None:
    urn = request_urn("delete")
    DatahubRestEmitter(double.url, token=double.admin_token, retry_max_times=0).emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn, aspect=ExecutionRequestResultClass(status="FAILURE")
        )
    )
    answer = httpx.post(
        f"{double.url}/entities{trailing}?action=delete",
        headers=_headers(double),
        json={"urn": urn},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"value": {"urn": urn, "rows": 2, "timeseriesRows": 0}}


def test_delete_of_a_non_timeseries_aspect_is_unsupported(double: GmsDouble, run: str) -> None:
    answer = httpx.post(
        f"{double.url}/entities?action=delete",
        headers=_headers(double),
        json={"urn": run, "aspectName": RESULT},
    )
    # EntityResource.deleteEntity: UnsupportedOperationException("Not supported for
    # non-timeseries aspect ...") is not mapped by RestliUtils.toTask: 500.
    assert answer.status_code == 500
    assert "Not supported for non-timeseries aspect" in answer.json()["message"]
    assert double.get_aspect(run, RESULT) == {"status": "RUNNING"}


def test_unknown_rest_li_resource_is_404(double: GmsDouble) -> None:
    answer = httpx.get(f"{double.url}/nope/{quote(POLYGON, safe='')}", headers=_headers(double))
    assert answer.status_code == 404
    assert answer.headers["X-RestLi-Error-Response"] == "true"
