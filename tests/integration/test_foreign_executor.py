"""A foreign final result written before our claim: a variant of DataHub's executor action writes
FAILURE when its dispatcher finds no executor for `executorId: lambda-trigger` (docs/
datahub-privileges.md, "DataHub's executor"). If that lands before the consumer's RUNNING claim,
the consumer must not invoke, the run must end with that report, and nothing may stay open."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import ExecutionRequestResultClass
from fastapi.testclient import TestClient

from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.runid import new_run_id
from lambda_trigger.source_urns import source_urn

from .conftest import POLY, SIP, Env, bearer

pytestmark = pytest.mark.integration

FOREIGN_REPORT = "Failed to find executor with id lambda-trigger"


def test_foreign_failure_before_the_claim_is_not_invoked_and_ends_clearly(
    env: Env, api: TestClient, start_consumer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lambda_trigger_consumer")
    run_id = new_run_id()
    request = RunRequest(
        run_id,
        SIP,
        env.executor_id,
        SourceType.SDK.value,
        now_ms(),
        actor_urn="urn:li:corpuser:alice",
        ingestion_source=source_urn(env.executor_id, SIP),
    )
    client = env.datahub()
    try:
        client.write_request(request)
    finally:
        client.close()
    # The other executor reacts to the request's MCL first and writes its final result.
    DatahubRestEmitter(env.gms.url, token=env.gms.admin_token).emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=request.urn,
            aspect=ExecutionRequestResultClass(
                status="FAILURE", report=FOREIGN_REPORT, startTimeMs=now_ms(), durationMs=0
            ),
        )
    )
    consumer = start_consumer()
    later = env.request(POLY)  # proves the consumer has passed the first request
    env.wait_status(later.run_id, {"SUCCESS"}, timeout=60)
    consumer.wait_idle()  # nothing stranded: no open run, nothing in flight

    assert env.moto.invocations(env.functions["sip"]) == []
    stored = env.gms.get_aspect(request.urn, "dataHubExecutionRequestResult")
    assert stored is not None and stored["status"] == "FAILURE"
    assert stored["report"] == FOREIGN_REPORT  # the foreign result stands, untouched
    lines = [r.getMessage() for r in caplog.records if run_id in r.getMessage()]
    assert any(
        "not started: DataHub already holds a final result written by another writer "
        f"(FAILURE: {FOREIGN_REPORT})" in line
        for line in lines
    ), lines
    status = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["alice"]))
    assert status.status_code == 200, status.text
    assert status.json()["state"] == "failed"
    assert status.json()["message"] == FOREIGN_REPORT
    assert status.json()["cancellable"] is False
