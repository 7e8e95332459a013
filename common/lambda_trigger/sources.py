"""`datahub-lambda-trigger sources sync`: each mapped dataset as a DataHub ingestion source.

DataHub's Ingestion page lists `dataHubIngestionSource` entities; it can run one ("Run"),
show its history under its name, cancel a run, and run it on a cron schedule in a time zone
(its IngestionScheduler). A source whose `config.executorId` is ours is never picked up by
DataHub's own executor (datahub-actions filters on executorId): the execution requests that the
scheduler and the Run button write for it (task RUN_INGEST) come to this project's consumer,
which runs them like button runs (consumer/lambda_trigger_consumer/source_request.py).

One source per exact `dataset` rule of the mapping (a dataset and its target): one execution
request of a source is then exactly one run of one dataset - the button's run - with the same
one-active-run rule, the same authorisation (the writer of the request), and the same history
on the dataset's Runs tab. A target reached only through tag, pattern or default rules has no
source (which datasets it covers is only known dataset by dataset).

- urn: `urn:li:dataHubIngestionSource:lambda-trigger-<hash of executorId and dataset>`, stable,
  so a sync is idempotent (an unchanged source is an unchanged aspect: GMS writes nothing);
- info: name "<label>: <dataset name>", type `lambda-trigger`, config {recipe, executorId},
  schedule {interval: the rule's `schedule.cron`, timezone} when the rule has one;
- recipe: `{"source": {"type": "lambda-trigger", "config": {"target": <target name>,
  "datasetUrn": <dataset>, "datasets": [<dataset>]}}}`;
- sources of our executorId that the mapping no longer has are deleted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from typing import TextIO

from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import (
    DataHubIngestionSourceConfigClass,
    DataHubIngestionSourceInfoClass,
    DataHubIngestionSourceScheduleClass,
)

from lambda_trigger.datahub import DataHubClient, DataHubUnavailable
from lambda_trigger.mapping import DEFAULT_LABEL, Mapping
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.settings import DataHubSettings, MappingSettings
from lambda_trigger.urns import parse_dataset_urn

SOURCE_TYPE = "lambda-trigger"
_PREFIX = "urn:li:dataHubIngestionSource:lambda-trigger-"


def dataset_of(args: dict[str, str]) -> str | None:
    """The dataset of a stored request's args: `datasetUrn`, or a source run's recipe's
    (a cancel is recorded on the ledger partition of the run's dataset)."""
    if args.get("datasetUrn"):
        return args["datasetUrn"]
    try:
        dataset = json.loads(args.get("recipe") or "")["source"]["config"]["datasetUrn"]
    except (ValueError, KeyError, TypeError):
        return None
    return dataset if isinstance(dataset, str) else None


@dataclass(frozen=True)
class DesiredSource:
    urn: str
    info: DataHubIngestionSourceInfoClass


def source_urn(executor_id: str, dataset_urn: str) -> str:
    digest = hashlib.sha256(f"{executor_id}\n{dataset_urn}".encode()).hexdigest()[:20]
    return f"{_PREFIX}{digest}"


def recipe(target: str, dataset_urn: str) -> str:
    return json.dumps(
        {
            "source": {
                "type": SOURCE_TYPE,
                "config": {"target": target, "datasetUrn": dataset_urn, "datasets": [dataset_urn]},
            }
        },
        sort_keys=True,
    )


def desired_sources(mapping: Mapping, executor_id: str) -> list[DesiredSource]:
    out: list[DesiredSource] = []
    for index, rule in enumerate(mapping.document.rules):
        if rule.dataset is None:
            continue
        resolution = mapping.resolve(rule.dataset)
        assert resolution is not None  # an exact rule always resolves
        target_name = rule.target if isinstance(rule.target, str) else f"rule-{index + 1}"
        label = resolution.target.label or DEFAULT_LABEL
        schedule = (
            DataHubIngestionSourceScheduleClass(
                interval=rule.schedule.cron, timezone=rule.schedule.timezone
            )
            if rule.schedule is not None
            else None
        )
        out.append(
            DesiredSource(
                source_urn(executor_id, rule.dataset),
                DataHubIngestionSourceInfoClass(
                    name=f"{label}: {parse_dataset_urn(rule.dataset).name}",
                    type=SOURCE_TYPE,
                    config=DataHubIngestionSourceConfigClass(
                        recipe=recipe(target_name, rule.dataset), executorId=executor_id
                    ),
                    schedule=schedule,
                ),
            )
        )
    return out


def existing_sources(client: DataHubClient, executor_id: str) -> list[str]:
    """Our sources in DataHub: type `lambda-trigger` and our executorId."""
    urns = client.graph.get_urns_by_filter(entity_types=["dataHubIngestionSource"])
    ours: list[str] = []
    for urn in urns:
        info = client._get(urn, DataHubIngestionSourceInfoClass)
        if info is not None and info.type == SOURCE_TYPE and info.config.executorId == executor_id:
            ours.append(urn)
    return ours


@dataclass(frozen=True)
class SyncResult:
    written: list[str]
    deleted: list[str]


def sync(client: DataHubClient, mapping: Mapping, executor_id: str) -> SyncResult:
    desired = desired_sources(mapping, executor_id)
    wanted = {d.urn for d in desired}
    for source in desired:
        client.graph.emit_mcp(
            MetadataChangeProposalWrapper(entityUrn=source.urn, aspect=source.info)
        )
    deleted = [urn for urn in existing_sources(client, executor_id) if urn not in wanted]
    for urn in deleted:
        # Hard delete: a soft-deleted source would stay scheduled (IngestionScheduler reads
        # every source's info, whatever its status).
        client.graph.delete_entity(urn, hard=True)
    return SyncResult([d.urn for d in desired], deleted)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sources = sub.add_parser(
        "sources", help="DataHub ingestion sources for the mapped datasets (schedules, Run)"
    )
    cmds = sources.add_subparsers(dest="sources_command", required=True)
    cmds.add_parser(
        "sync",
        help="create or update one source per exact dataset rule; delete sources of removed rules",
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    settings = DataHubSettings()
    mapping = MappingSource(MappingSettings()).current()
    client = DataHubClient(settings)
    try:
        result = sync(client, mapping, settings.executor_id)
    except DataHubUnavailable as exc:
        print(f"error: DataHub: {exc}", file=err)
        return 4
    finally:
        client.close()
    print(json.dumps({"written": result.written, "deleted": result.deleted}), file=out)
    return 0
