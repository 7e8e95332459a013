"""RUN_INGEST execution requests of our sources, as DataHub's scheduler and Run button write them."""

from __future__ import annotations

import json

import pytest

from lambda_trigger.contract import InvalidRequestError
from lambda_trigger.sources import recipe
from lambda_trigger_consumer.decode import ChangeLog
from lambda_trigger_consumer.request import Invalid, to_request
from lambda_trigger_consumer.source_request import dataset_of, from_source_aspect

DATASET = "urn:li:dataset:(urn:li:dataPlatform:athena,db.t,PROD)"
SOURCE = "urn:li:dataHubIngestionSource:lambda-trigger-abc"


def _scheduled(executor: str = "ours", **overrides: object) -> dict[str, object]:
    # IngestionScheduler.ExecutionRequestRunnable: pipeline_name injected into the recipe.
    body = json.loads(recipe("earnings", DATASET))
    body["pipeline_name"] = SOURCE
    aspect: dict[str, object] = {
        "task": "RUN_INGEST",
        "source": {"type": "SCHEDULED_INGESTION_SOURCE", "ingestionSource": SOURCE},
        "executorId": executor,
        "requestedAt": 123,
        "args": {"recipe": json.dumps(body), "version": "1.7.0.17", "debug_mode": "false"},
    }
    aspect.update(overrides)
    return aspect


def _change(
    aspect: dict[str, object], actor: str = "urn:li:corpuser:__datahub_system"
) -> ChangeLog:
    return ChangeLog(
        entity_urn="urn:li:dataHubExecutionRequest:0b5c6f9e-1111-2222-3333-444455556666",
        entity_type="dataHubExecutionRequest",
        change_type="UPSERT",
        aspect_name="dataHubExecutionRequestInput",
        aspect=aspect,
        actor=actor,
        created_ms=1,
        schema_id=1,
    )


def test_scheduled_request_becomes_a_run_of_the_recipes_dataset() -> None:
    request = to_request(_change(_scheduled()), "ours")
    assert request is not None and not isinstance(request, Invalid)
    assert request.run_id == "0b5c6f9e-1111-2222-3333-444455556666"
    assert request.dataset_urn == DATASET
    assert request.source_type == "SCHEDULED_INGESTION_SOURCE"
    assert request.requested_at_ms == 123
    assert request.extra_args == {"ingestionSource": SOURCE}
    # No actorUrn in a scheduled request: the writer (the system actor) is the requester.
    assert request.actor_urn == "urn:li:corpuser:__datahub_system"
    assert request.writer_urn == "urn:li:corpuser:__datahub_system"


def test_manual_run_keeps_the_user() -> None:
    aspect = _scheduled(actorUrn="urn:li:corpuser:alice")
    aspect["source"] = {"type": "MANUAL_INGESTION_SOURCE", "ingestionSource": SOURCE}
    request = to_request(_change(aspect, "urn:li:corpuser:alice"), "ours")
    assert request is not None and not isinstance(request, Invalid)
    assert request.source_type == "MANUAL_INGESTION_SOURCE"
    assert request.actor_urn == "urn:li:corpuser:alice"


def test_other_executors_sources_are_not_ours() -> None:
    assert to_request(_change(_scheduled(executor="default")), "ours") is None


@pytest.mark.parametrize(
    "aspect",
    [
        _scheduled(source={"type": "SCHEDULED_INGESTION_SOURCE"}),
        _scheduled(args={"recipe": "not json"}),
        _scheduled(args={"recipe": json.dumps({"source": {"config": {}}})}),
        _scheduled(args={"recipe": json.dumps({"source": {"config": {"datasetUrn": "urn:li:x"}}})}),
    ],
)
def test_unusable_source_requests_end_failure(aspect: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        from_source_aspect("r", aspect)
    assert isinstance(to_request(_change(aspect), "ours"), Invalid)


def test_dataset_of_a_stored_request() -> None:
    assert dataset_of({"datasetUrn": DATASET}) == DATASET
    assert dataset_of({"recipe": recipe("t", DATASET)}) == DATASET
    assert dataset_of({"recipe": "{}"}) is None
