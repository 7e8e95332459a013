"""Attacks on the consumer's trust in the request aspect: who wrote it decides, not what it says."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from datahub.metadata.schema_classes import GroupMembershipClass, RoleMembershipClass

from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.source_urns import source_urn

from .conftest import SIP, Env, emit

pytestmark = pytest.mark.integration

REFUSED = "lambda_trigger_consumer_unauthorised_requests_total"


def _user(env: Env, name: str, *, manage_ingestion: bool = False) -> tuple[str, str]:
    """A DataHub user with their own token: (urn, token)."""
    urn = f"urn:li:corpuser:{name}-{uuid.uuid4().hex[:6]}"
    token = f"token-{urn}"
    # A DataHub policy lets them execute the dataset's ingestion source, so GMS accepts their
    # request write on every release (ExecuteIngestionAuthValidator); the consumer's writer
    # check is what these tests are about.
    env.gms.add_token(
        token,
        urn,
        name,
        manage_ingestion=manage_ingestion,
        grants=frozenset({("EXECUTE_ENTITY", source_urn(env.executor_id, SIP))}),
    )
    return urn, token


def _write_as(env: Env, token: str, claimed_actor: str | None) -> RunRequest:
    """Write a run request with someone's own token, as the SDK would."""
    request = RunRequest(
        run_id=new_run_id(),
        dataset_urn=SIP,
        executor_id=env.executor_id,
        source_type=SourceType.SDK.value,
        requested_at_ms=now_ms(),
        actor_urn=claimed_actor,
        ingestion_source=source_urn(env.executor_id, SIP),
    )
    client = DataHubClient(env.datahub_settings(token=token))
    try:
        client.write_request(request)
    finally:
        client.close()
    return request


def test_a_writer_without_the_run_privilege_cannot_start_a_run(
    env: Env, start_consumer: Any
) -> None:
    """Mallory may write metadata but not run ingestion; she writes the request aspect herself
    and claims to be alice. The run ends FAILURE, nothing is invoked, the refusal is counted."""
    consumer = start_consumer()
    mallory, token = _user(env, "mallory")
    request = _write_as(env, token, claimed_actor="urn:li:corpuser:alice")

    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "FAILURE"
    assert f"not authorised: {mallory} may not start runs" in (result.report or "")
    assert env.moto.invocations(env.functions["sip"]) == []
    assert consumer.metric(REFUSED) == 1


def test_a_forged_actor_is_replaced_by_the_writer(
    env: Env, start_consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI token allowed to start runs claims `actorUrn: alice`: the function is told the
    truth (requestedBy = the CI actor), not the claim."""
    ci, token = _user(env, "ci-bot")
    monkeypatch.setenv("LAMBDA_TRIGGER_ALLOWED_ACTORS", f"urn:li:corpuser:nobody, {ci}")
    start_consumer()
    request = _write_as(env, token, claimed_actor="urn:li:corpuser:alice")

    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    (invocation,) = env.moto.invocations(env.functions["sip"])
    assert invocation.payload["requestedBy"] == ci


def test_a_member_of_an_allowed_group_may_start_runs(
    env: Env, start_consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = f"urn:li:corpGroup:ingest-{uuid.uuid4().hex[:6]}"
    dave, token = _user(env, "dave")
    emit(env, dave, GroupMembershipClass(groups=[group]))
    monkeypatch.setenv("LAMBDA_TRIGGER_ALLOWED_GROUPS", group)
    consumer = start_consumer()
    request = _write_as(env, token, claimed_actor=None)

    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    (invocation,) = env.moto.invocations(env.functions["sip"])
    assert invocation.payload["requestedBy"] == dave
    assert consumer.metric(REFUSED) == 0


def test_the_api_service_principal_is_trusted_for_the_requester(
    env: Env, start_consumer: Any
) -> None:
    """Requests the api writes (with the service token) keep the caller the api checked."""
    start_consumer()
    request = env.request(SIP)  # written with the service token, actorUrn sdk-user
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    (invocation,) = env.moto.invocations(env.functions["sip"])
    assert invocation.payload["requestedBy"] == "urn:li:corpuser:sdk-user"


def test_a_datahub_admin_may_start_runs_by_default(env: Env, start_consumer: Any) -> None:
    """`LAMBDA_TRIGGER_ALLOWED_ROLES` defaults to DataHub's Admin role (roleMembership)."""
    erin, token = _user(env, "erin", manage_ingestion=True)
    emit(env, erin, RoleMembershipClass(roles=["urn:li:dataHubRole:Admin"]))
    start_consumer()
    request = _write_as(env, token, claimed_actor="urn:li:corpuser:someone-else")
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    (invocation,) = env.moto.invocations(env.functions["sip"])
    assert invocation.payload["requestedBy"] == erin
