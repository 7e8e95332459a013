"""Any execution-request id DataHub accepts can be read back through the api and the CLI: the
README's `airflow-<uuid>`, a bare UUID (what DataHub's UI uses), the api's own `lt-` ids; and the
read-side check stays strict (lambda_trigger.runid.is_readable_run_id)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from conftest import POLYGON, Cli
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import (
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
    ExecutionRequestSourceClass,
)
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devstack.gms_double import GmsDouble
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings, DataHubSettings, MappingSettings
from lambda_trigger.source_urns import source_urn
from lambda_trigger_api.app import create_app

pytestmark = pytest.mark.integration

RESULT = "dataHubExecutionRequestResult"


@pytest.fixture(scope="module")
def api(double: GmsDouble) -> Iterator[TestClient]:
    app = create_app(
        ApiSettings(),
        DataHubSettings(
            gms_url=double.url,
            gms_token=double.admin_token,
            frontend_url=double.frontend_url,
            executor_id="lambda-trigger",
            timeout_seconds=5.0,
        ),
        MappingSettings(
            mapping_inline=json.dumps(
                {"targets": {"t": {"function": "f", "label": "L"}}, "rules": []}
            ),
            region="us-east-1",
        ),
        registry=CollectorRegistry(),
    )
    with TestClient(app) as client:
        yield client


def _write(gms: GmsDouble, run_id: str, status: str | None = None) -> None:
    urn = f"urn:li:dataHubExecutionRequest:{run_id}"
    emitter = DatahubRestEmitter(gms.url, token=gms.admin_token, retry_max_times=0)
    emitter.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=urn,
            aspect=ExecutionRequestInputClass(
                task="LAMBDA_TRIGGER_RUN",
                args={"datasetUrn": POLYGON},
                executorId="lambda-trigger",
                source=ExecutionRequestSourceClass(
                    type="AIRFLOW", ingestionSource=source_urn("lambda-trigger", POLYGON)
                ),
                requestedAt=1764100000000,
            ),
        )
    )
    if status:
        emitter.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=urn, aspect=ExecutionRequestResultClass(status=status)
            )
        )


@pytest.mark.parametrize(
    "run_id",
    [f"airflow-{uuid.uuid4()}", str(uuid.uuid4()), new_run_id(), "dag.task~1_2"],
    ids=["airflow-uuid", "uuid", "lt", "dots-tilde-underscore"],
)
def test_foreign_ids_are_readable_through_the_api_and_the_cli(
    double: GmsDouble, api: TestClient, cli: Cli, run_id: str
) -> None:
    _write(double, run_id, "RUNNING")
    answer = api.get(
        f"/api/ingestion/runs/{run_id}",
        headers={"Authorization": f"Bearer {double.admin_token}"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["runId"] == run_id
    assert body["state"] == "running" and body["datahubStatus"] == "RUNNING"
    assert body["datasetUrn"] == POLYGON

    shown = cli("get", "--urn", f"urn:li:dataHubExecutionRequest:{run_id}", "-a", RESULT)
    assert shown.returncode == 0, shown.stderr
    assert shown.json() == {RESULT: {"status": "RUNNING"}}


@pytest.mark.parametrize(
    "bad",
    ["airflow-1%0A", "a%20b", "a%2Fb", "x" * 201, "urn%3Ali%3Ax"],
    ids=["newline", "space", "slash", "too-long", "colon"],
)
def test_malformed_ids_are_not_looked_up(double: GmsDouble, api: TestClient, bad: str) -> None:
    before = double.request_count()
    answer = api.get(
        f"/api/ingestion/runs/{bad}", headers={"Authorization": f"Bearer {double.admin_token}"}
    )
    assert answer.status_code == 404
    assert answer.json()["status"] == "failed"
    # At most the caller check (GraphQL `me`) reached GMS, never a read of the malformed id.
    assert double.request_count() - before <= 1
