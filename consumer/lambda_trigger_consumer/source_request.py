"""RUN_INGEST execution requests of our ingestion sources (`sources sync`, sources.py) as runs.

DataHub writes them in two places, both with task `RUN_INGEST`, `source.ingestionSource` = the
source, `executorId` copied from the source's config, and args `recipe` (the source's recipe with
`pipeline_name` injected), `version`, `debug_mode` plus the config's extraArgs:
- its scheduler, on the source's cron (IngestionScheduler.ExecutionRequestRunnable, package
  com.datahub.metadata.ingestion): source type SCHEDULED_INGESTION_SOURCE, no actorUrn, written
  by the system actor;
- the Ingestion page's "Run" (datahub-graphql-core/.../ingest/execution/
  CreateIngestionExecutionRequestResolver.java): source type MANUAL_INGESTION_SOURCE,
  actorUrn = the user, `run_id` injected into the recipe too, written as the user.

Each becomes one RunRequest for the recipe's dataset and goes the button's way: the ledger, the
writer check of authorize.py (the system actor must be allowed, e.g. in
LAMBDA_TRIGGER_ALLOWED_ACTORS, for scheduled runs), the dataset's mapped target, one active run
per dataset and target. The source's urn stays in the request (DataHub's gc keeps a source's
requests by its own count and age rules) and in `extra_args["ingestionSource"]`.
"""

from __future__ import annotations

import json
from typing import Any

from lambda_trigger.contract import InvalidRequestError, RunRequest
from lambda_trigger.sources import dataset_of
from lambda_trigger.urns import InvalidUrnError, parse_dataset_urn

__all__ = ["dataset_of", "from_source_aspect", "is_source_run"]

RUN_INGEST = "RUN_INGEST"
SOURCE_ARG = "ingestionSource"


def is_source_run(aspect: dict[str, Any]) -> bool:
    return aspect.get("task") == RUN_INGEST


def from_source_aspect(run_id: str, aspect: dict[str, Any]) -> RunRequest:
    """Raises InvalidRequestError with a message for the run's FAILURE report."""
    source = aspect.get("source") if isinstance(aspect.get("source"), dict) else {}
    assert isinstance(source, dict)
    ingestion_source = source.get("ingestionSource")
    if not isinstance(ingestion_source, str) or not ingestion_source:
        raise InvalidRequestError("RUN_INGEST request without source.ingestionSource")
    args = aspect.get("args") if isinstance(aspect.get("args"), dict) else {}
    assert isinstance(args, dict)
    try:
        recipe = json.loads(str(args.get("recipe") or ""))
        config = recipe["source"]["config"]
        dataset = config["datasetUrn"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequestError(
            f"source {ingestion_source}: its recipe names no datasetUrn (run `datahub-lambda-"
            f"trigger sources sync`): {type(exc).__name__}"
        ) from exc
    try:
        dataset_urn = parse_dataset_urn(dataset, "recipe source.config.datasetUrn").urn
    except InvalidUrnError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return RunRequest(
        run_id=run_id,
        dataset_urn=dataset_urn,
        executor_id=str(aspect.get("executorId", "")),
        source_type=str(source.get("type") or "SCHEDULED_INGESTION_SOURCE"),
        requested_at_ms=int(aspect.get("requestedAt") or 0),
        actor_urn=aspect.get("actorUrn"),
        reason=f"ingestion source {ingestion_source}",
        extra_args={SOURCE_ARG: ingestion_source},
    )
