"""The GMS double's write validators by DataHub release (write_auth.py) and small GMS answers
(runs_tab pageSize), without Kafka: the pipeline with a producer that keeps the MCLs."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.gms_double import runs_tab
from devstack.gms_double.auth import Principal
from devstack.gms_double.errors import GmsValidationError, ValidationSubType
from devstack.gms_double.ingest import Proposal, WritePipeline
from devstack.gms_double.mcl import MclRequest, ProducedMcl
from devstack.gms_double.store import AspectRow, AspectStore
from devstack.gms_double.write_auth import (
    ExecuteValidator,
    api_write_denied,
    execute_validator_for,
)

REQUEST = "urn:li:dataHubExecutionRequest:wa-1"
SOURCE = "urn:li:dataHubIngestionSource:lambda-trigger-abc"
ADMIN = Principal("urn:li:corpuser:datahub", "datahub", True, admin=True)
NOBODY = Principal("urn:li:corpuser:nobody", "nobody", False)


def _pipeline(mode: ExecuteValidator) -> tuple[WritePipeline, list[MclRequest]]:
    produced: list[MclRequest] = []

    def produce(requests: list[MclRequest]) -> list[ProducedMcl]:
        produced.extend(requests)
        return []

    return WritePipeline(AspectStore(), produce, lambda: None, execute_validator=mode), produced


def _input(source: str | None) -> Proposal:
    value: dict[str, Any] = {
        "task": "LAMBDA_TRIGGER_RUN",
        "args": {},
        "executorId": "lambda-trigger",
        "source": {"type": "SDK", **({"ingestionSource": source} if source else {})},
        "requestedAt": 1,
    }
    return Proposal(
        "dataHubExecutionRequest", REQUEST, "UPSERT", "dataHubExecutionRequestInput", value
    )


@pytest.mark.parametrize(
    ("version", "mode"),
    [
        ("v1.1.0", ExecuteValidator.STRICT),
        ("v1.2.0", ExecuteValidator.STRICT),
        ("1.2.0.1", ExecuteValidator.STRICT),
        ("v1.3.0", ExecuteValidator.RELAXED),
        ("v1.7.0", ExecuteValidator.RELAXED),
        ("strict", ExecuteValidator.STRICT),
        ("relaxed", ExecuteValidator.RELAXED),
    ],
)
def test_release_selects_the_behaviour(version: str, mode: ExecuteValidator) -> None:
    assert execute_validator_for(version) is mode


def test_not_a_version_is_refused() -> None:
    with pytest.raises(ValueError, match="not a DataHub version"):
        execute_validator_for("latest")


def test_strict_refuses_no_source_even_for_the_admin_and_writes_nothing() -> None:
    pipeline, produced = _pipeline(ExecuteValidator.STRICT)
    with pytest.raises(GmsValidationError) as caught:
        pipeline.ingest([_input(None)], ADMIN.actor_urn, ADMIN)
    assert caught.value.subtypes == frozenset({ValidationSubType.AUTHORIZATION})
    assert f"msg=Couldn't find the ingestion source details for {REQUEST})" in caught.value.message
    assert produced == []
    assert pipeline.ingest([_input(SOURCE)], ADMIN.actor_urn, ADMIN)


def test_relaxed_accepts_no_source_and_checks_execute_on_a_named_one() -> None:
    pipeline, _ = _pipeline(ExecuteValidator.RELAXED)
    assert pipeline.ingest([_input(None)], NOBODY.actor_urn, NOBODY)
    with pytest.raises(GmsValidationError, match="Doesn't have permissions to execute this"):
        pipeline.ingest([_input(SOURCE)], NOBODY.actor_urn, NOBODY)
    granted = Principal(
        "urn:li:corpuser:ex", "ex", False, grants=frozenset({("EXECUTE_ENTITY", SOURCE)})
    )
    assert pipeline.ingest([_input(SOURCE)], granted.actor_urn, granted)
    other = Principal(
        "urn:li:corpuser:ex", "ex", False, grants=frozenset({("EXECUTE_ENTITY", SOURCE + "x")})
    )
    with pytest.raises(GmsValidationError):
        pipeline.ingest([_input(SOURCE)], other.actor_urn, other)


def test_no_session_when_auth_is_off_skips_the_validators() -> None:
    pipeline, _ = _pipeline(ExecuteValidator.STRICT)
    assert pipeline.ingest([_input(None)], "urn:li:corpuser:__datahub_system", None)


def test_modify_ingestion_source_needs_manage_ingestion() -> None:
    pipeline, _ = _pipeline(ExecuteValidator.RELAXED)
    info = Proposal(
        "dataHubIngestionSource",
        SOURCE,
        "UPSERT",
        "dataHubIngestionSourceInfo",
        {"name": "n", "type": "lambda-trigger", "config": {"recipe": "{}"}},
    )
    with pytest.raises(GmsValidationError, match="Doesn't have permissions to edit this Ingestion"):
        pipeline.ingest([info], NOBODY.actor_urn, NOBODY)
    manager = Principal("urn:li:corpuser:m", "m", True)
    assert pipeline.ingest([info], manager.actor_urn, manager)


def test_rest_api_authorization_only_for_strict_policy_actors() -> None:
    dataset = "urn:li:dataset:(urn:li:dataPlatform:hive,a,PROD)"
    assert api_write_denied([dataset], NOBODY) is None  # the double's default: may write
    strict = Principal(
        "urn:li:corpuser:s",
        "s",
        False,
        grants=frozenset({("EDIT_ENTITY", "type:dataset")}),
        strict_policies=True,
    )
    assert api_write_denied([dataset], strict) is None
    assert api_write_denied([REQUEST, REQUEST], strict) == (
        f"User urn:li:corpuser:s is unauthorized to modify entity: HttpStatus: 403 Urn: {REQUEST}"
    )


def test_runs_count_is_the_page_size_not_the_number_of_runs() -> None:
    store = AspectStore()
    dataset = "urn:li:dataset:(urn:li:dataPlatform:hive,a,PROD)"
    dpi = "urn:li:dataProcessInstance:r1"
    store.put_latest(
        dpi,
        "dataProcessInstanceOutput",
        AspectRow({"outputs": [dataset]}, {}, 1, "urn:li:corpuser:x"),
        keep_previous=False,
    )
    store.put_latest(
        dpi,
        "dataProcessInstanceProperties",
        AspectRow({"name": "r1", "created": {"time": 5, "actor": "x"}}, {}, 1, "x"),
        keep_previous=False,
    )
    page = runs_tab.entity_runs(store, dataset, 0, 50, "OUTGOING")
    assert (page["count"], page["total"], len(page["runs"])) == (50, 1, 1)
    assert runs_tab.entity_runs(store, dataset, 0, 20000, "OUTGOING")["count"] == 10000
