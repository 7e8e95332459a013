"""Start-up privilege checks (common/lambda_trigger/privileges.py): a token without each right the
api or the consumer needs gives one clear start-up line naming the DataHub privilege and a
failing /readyz that names it; the probes write nothing (the GMS double models the policies:
devstack/gms_double/auth.py, write_auth.py)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from lambda_trigger.privileges import (
    API_CAPABILITIES,
    CONSUMER_CAPABILITIES,
    EDIT_DATASETS,
    EDIT_DPI,
    EDIT_FLOWS,
    EDIT_REQUESTS,
    MANAGE_INGESTION,
    Capability,
    PrivilegeCheck,
)
from lambda_trigger.settings import ApiSettings, ConsumerSettings
from lambda_trigger_api.app import create_app
from lambda_trigger_consumer.app import ConsumerApp

from .conftest import Env

pytestmark = pytest.mark.integration

ALL_EDITS = frozenset(
    {
        ("EDIT_ENTITY", "type:dataHubExecutionRequest"),
        ("EDIT_ENTITY", "type:dataProcessInstance"),
        ("EDIT_ENTITY", "type:dataFlow"),
        ("EDIT_ENTITY", "type:dataJob"),
        ("EDIT_ENTITY", "type:dataset"),
    }
)
# What each capability's policy grants, to take away one at a time.
GRANTS_OF = {
    EDIT_REQUESTS.key: {("EDIT_ENTITY", "type:dataHubExecutionRequest")},
    EDIT_DPI.key: {("EDIT_ENTITY", "type:dataProcessInstance")},
    EDIT_FLOWS.key: {("EDIT_ENTITY", "type:dataFlow"), ("EDIT_ENTITY", "type:dataJob")},
    EDIT_DATASETS.key: {("EDIT_ENTITY", "type:dataset")},
}


def _token_without(env: Env, cap: Capability | None) -> str:
    """A token whose policies grant everything the components need except `cap`."""
    token = f"svc-{uuid.uuid4().hex[:8]}"
    grants = set(ALL_EDITS) - GRANTS_OF.get(cap.key if cap else "", set())
    env.gms.add_token(
        token,
        f"urn:li:corpuser:{token}",
        token,
        manage_ingestion=cap is not MANAGE_INGESTION,
        grants=frozenset(grants),
        strict_policies=True,
    )
    return token


def _mcl_count(env: Env) -> int:
    return env.gms.mcl_count()


@pytest.mark.parametrize("cap", API_CAPABILITIES, ids=lambda c: c.key)
def test_api_without_a_privilege_logs_one_line_and_fails_readyz(
    env: Env, cap: Capability, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token_without(env, cap)
    before = _mcl_count(env)
    caplog.set_level(logging.INFO, logger="lambda_trigger.privileges")
    app = create_app(
        ApiSettings(),
        env.datahub_settings(token),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )
    with TestClient(app) as client:
        lines = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
        assert len(lines) == 1, lines
        assert lines[0].startswith("api: its DataHub token lacks ")
        assert cap.privilege in lines[0]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"] == "datahub_privileges_missing"
        assert cap.privilege in ready.json()["message"]
    assert _mcl_count(env) == before  # the probes wrote nothing


def test_api_with_every_privilege_is_ready(env: Env) -> None:
    token = _token_without(env, None)
    before = _mcl_count(env)
    app = create_app(
        ApiSettings(),
        env.datahub_settings(token),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "missingPrivileges" not in ready.json()
    assert _mcl_count(env) == before
    for urn in (
        "urn:li:dataHubExecutionRequest:lambda-trigger-privilege-probe",
        "urn:li:dataProcessInstance:lambda-trigger-privilege-probe",
    ):
        assert env.gms.get_aspect(urn, "dataHubExecutionRequestResult") is None
        assert env.gms.get_aspect(urn, "status") is None


@pytest.mark.parametrize("cap", CONSUMER_CAPABILITIES, ids=lambda c: c.key)
def test_consumer_check_names_each_missing_privilege(
    env: Env, cap: Capability, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token_without(env, cap)
    caplog.set_level(logging.INFO, logger="lambda_trigger.privileges")
    client = env.datahub_settings(token)
    from lambda_trigger.datahub import DataHubClient

    datahub = DataHubClient(client)
    try:
        check = PrivilegeCheck("consumer", datahub, CONSUMER_CAPABILITIES)
        missing = check.run()
        assert [c.key for c in missing] == [cap.key]
        lines = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
        assert lines == [
            f"consumer: its DataHub token lacks {cap.privilege}: {cap.effect} (grant it in a "
            "DataHub policy; docs/datahub-privileges.md)"
        ]
        check.run()  # again: no second line for the same missing right
        assert len([r for r in caplog.records if "lacks" in r.getMessage()]) == 1
        ok, detail = check.status()
        assert not ok and detail["missingPrivileges"] == [cap.privilege]
    finally:
        datahub.close()


def test_consumer_readyz_names_the_missing_privilege(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token_without(env, EDIT_DPI)
    caplog.set_level(logging.INFO, logger="lambda_trigger.privileges")
    settings = ConsumerSettings(
        bootstrap_servers=env.stack.kafka_bootstrap,
        schema_registry_url=env.gms.schema_registry_url,
        group_id=env.group_id,
        dead_letter_topic=f"dlq-{env.executor_id}",
        runs_topic=f"runs-{env.executor_id}",
        http_host="127.0.0.1",
        http_port=0,
        auto_offset_reset="latest",
    )
    app = ConsumerApp(
        settings, env.datahub_settings(token), env.mapping_settings(), registry=CollectorRegistry()
    )
    import threading

    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    try:
        ready: Any = None
        for _ in range(300):
            ready = httpx.get(f"http://127.0.0.1:{app.health.port}/readyz", timeout=5)
            if "missingPrivileges" in ready.json():
                break
            import time

            time.sleep(0.1)
        assert ready is not None and ready.status_code == 503
        assert ready.json()["missingPrivileges"] == [EDIT_DPI.privilege]
        lines = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
        assert len(lines) == 1 and EDIT_DPI.privilege in lines[0]
    finally:
        app.stop()
        thread.join(60)
