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
- sources of our executorId that the mapping no longer has are deleted (not those the api
  created on first use, below).

Ownership (`config.extraArgs`): every source this project writes carries
`lambdaTriggerOrigin` (`sync`, or `first-use` when the api or CLI created it for a dataset's
first run) and `lambdaTriggerFingerprint`, a hash of the executorId, recipe and schedule it
wrote. A stored source whose executorId, recipe or schedule no longer matches its fingerprint
(or that has none) was edited elsewhere, e.g. on DataHub's Ingestion page: `sources sync` shows
the difference and leaves it alone unless `--force`.

First use (`ensure_source`): every run request names its dataset's source (source_urns.py); when
that source does not exist yet, the api (and the CLI) create it without a schedule, so it
exists for the Ingestion page and for DataHub policies that grant EXECUTE on it.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import (
    DataHubIngestionSourceConfigClass,
    DataHubIngestionSourceInfoClass,
    DataHubIngestionSourceScheduleClass,
)

from lambda_trigger.datahub import DataHubClient, DataHubUnavailable, WriteRejected
from lambda_trigger.mapping import DEFAULT_LABEL, Mapping
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.settings import DataHubSettings, MappingSettings
from lambda_trigger.source_urns import source_urn
from lambda_trigger.urns import parse_dataset_urn

__all__ = ["source_urn"]
log = logging.getLogger(__name__)

SOURCE_TYPE = "lambda-trigger"
ORIGIN_ARG = "lambdaTriggerOrigin"
FINGERPRINT_ARG = "lambdaTriggerFingerprint"
ORIGIN_SYNC = "sync"
ORIGIN_FIRST_USE = "first-use"


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


def owned_fields(info: DataHubIngestionSourceInfoClass) -> dict[str, Any]:
    """What this project decides about a source: executorId, recipe (parsed, so key order and
    spacing do not count) and schedule."""
    try:
        recipe_value: Any = json.loads(info.config.recipe)
    except ValueError:
        recipe_value = info.config.recipe
    schedule = info.schedule
    return {
        "executorId": info.config.executorId,
        "recipe": recipe_value,
        "schedule": (
            {"interval": schedule.interval, "timezone": schedule.timezone} if schedule else None
        ),
    }


def fingerprint(info: DataHubIngestionSourceInfoClass) -> str:
    canonical = json.dumps(owned_fields(info), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _stamped(info: DataHubIngestionSourceInfoClass, origin: str) -> DataHubIngestionSourceInfoClass:
    extra = dict(info.config.extraArgs or {})
    extra[ORIGIN_ARG] = origin
    extra[FINGERPRINT_ARG] = fingerprint(info)
    info.config.extraArgs = extra
    return info


def source_info(
    executor_id: str,
    dataset_urn: str,
    target_name: str,
    label: str,
    schedule: DataHubIngestionSourceScheduleClass | None,
    origin: str,
) -> DataHubIngestionSourceInfoClass:
    return _stamped(
        DataHubIngestionSourceInfoClass(
            name=f"{label}: {parse_dataset_urn(dataset_urn).name}",
            type=SOURCE_TYPE,
            config=DataHubIngestionSourceConfigClass(
                recipe=recipe(target_name, dataset_urn), executorId=executor_id
            ),
            schedule=schedule,
        ),
        origin,
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
                source_info(executor_id, rule.dataset, target_name, label, schedule, ORIGIN_SYNC),
            )
        )
    return out


def _all_sources(client: DataHubClient) -> list[tuple[str, DataHubIngestionSourceInfoClass]]:
    urns = client.graph.get_urns_by_filter(entity_types=["dataHubIngestionSource"])
    out = []
    for urn in urns:
        info = client._get(urn, DataHubIngestionSourceInfoClass)
        if info is not None:
            out.append((urn, info))
    return out


def existing_sources(client: DataHubClient, executor_id: str) -> list[str]:
    """Our sources in DataHub: type `lambda-trigger` and our executorId."""
    return [
        urn
        for urn, info in _all_sources(client)
        if info.type == SOURCE_TYPE and info.config.executorId == executor_id
    ]


def foreign_executor_sources(client: DataHubClient, executor_id: str) -> list[tuple[str, str]]:
    """(urn, executorId) of sources of type `lambda-trigger` whose executorId is not ours: a
    UI edit (Advanced > Executor ID) that hands them to DataHub's own executor, which then runs
    `datahub ingest` with an unknown source type and fails."""
    out: list[tuple[str, str]] = []
    for urn, info in _all_sources(client):
        if info.type != SOURCE_TYPE or info.config.executorId == executor_id:
            continue
        dataset = dataset_of({"recipe": info.config.recipe})
        # Ours: its urn is the one this executorId gives its dataset (another deployment's
        # sources, with their own executorId, have other urns).
        if dataset is not None and source_urn(executor_id, dataset) == urn:
            out.append((urn, str(info.config.executorId)))
    return out


def edited_elsewhere(stored: DataHubIngestionSourceInfoClass) -> bool:
    """True when the stored source's executorId, recipe or schedule is not what this project
    last wrote (its fingerprint), or it carries no fingerprint at all."""
    written = (stored.config.extraArgs or {}).get(FINGERPRINT_ARG)
    return written != fingerprint(stored)


def diff_text(
    urn: str, stored: DataHubIngestionSourceInfoClass, wanted: DataHubIngestionSourceInfoClass
) -> str:
    def lines(info: DataHubIngestionSourceInfoClass) -> list[str]:
        return json.dumps(owned_fields(info), indent=2, sort_keys=True).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(
            lines(stored), lines(wanted), fromfile=f"{urn} (in DataHub)", tofile=f"{urn} (mapping)"
        )
    )


@dataclass(frozen=True)
class SyncResult:
    written: list[str]
    deleted: list[str]
    refused: dict[str, str] = field(default_factory=dict)  # urn -> diff


def sync(
    client: DataHubClient, mapping: Mapping, executor_id: str, *, force: bool = False
) -> SyncResult:
    desired = desired_sources(mapping, executor_id)
    wanted = {d.urn for d in desired}
    written: list[str] = []
    refused: dict[str, str] = {}
    for source in desired:
        stored = client._get(source.urn, DataHubIngestionSourceInfoClass)
        if (
            stored is not None
            and not force
            and edited_elsewhere(stored)
            and owned_fields(stored) != owned_fields(source.info)
        ):
            refused[source.urn] = diff_text(source.urn, stored, source.info)
            continue
        client.graph.emit_mcp(
            MetadataChangeProposalWrapper(entityUrn=source.urn, aspect=source.info)
        )
        written.append(source.urn)
    deleted = []
    for urn in existing_sources(client, executor_id):
        if urn in wanted:
            continue
        stored = client._get(urn, DataHubIngestionSourceInfoClass)
        origin = (stored.config.extraArgs or {}).get(ORIGIN_ARG) if stored else None
        if origin == ORIGIN_FIRST_USE:
            continue  # the api's, for a dataset without an exact rule: not sync's to delete
        if stored is not None and not force and edited_elsewhere(stored):
            refused[urn] = f"{urn}: edited in DataHub since it was written; not deleted\n"
            continue
        # Hard delete: a soft-deleted source would stay scheduled (IngestionScheduler reads
        # every source's info, whatever its status).
        client.graph.delete_entity(urn, hard=True)
        deleted.append(urn)
    return SyncResult(written, deleted, refused)


class FirstUseSources:
    """The api's (and CLI's) `ensure`: the dataset's source exists before its request names it.

    One read per dataset and process (remembered once seen); a create that DataHub refuses
    (the token lacks MANAGE_INGESTION) is logged once and the request still names the source:
    GMS then decides on EXECUTE for it."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._warned = False
        self._lock = threading.Lock()

    def ensure(self, client: DataHubClient, dataset_urn: str, target_name: str, label: str) -> str:
        executor_id = client.settings.executor_id
        urn = source_urn(executor_id, dataset_urn)
        with self._lock:
            if urn in self._known:
                return urn
        if client._get(urn, DataHubIngestionSourceInfoClass) is None:
            info = source_info(executor_id, dataset_urn, target_name, label, None, ORIGIN_FIRST_USE)
            try:
                client._emit(MetadataChangeProposalWrapper(entityUrn=urn, aspect=info))
            except WriteRejected as exc:
                if not self._warned:
                    log.warning(
                        "cannot create ingestion source %s for %s (needs the DataHub privilege "
                        "MANAGE_INGESTION; or run `datahub-lambda-trigger sources sync`): %s",
                        urn,
                        dataset_urn,
                        exc,
                    )
                    self._warned = True
                return urn
            log.info("created ingestion source %s for %s (first run)", urn, dataset_urn)
        with self._lock:
            self._known.add(urn)
        return urn


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sources = sub.add_parser(
        "sources", help="DataHub ingestion sources for the mapped datasets (schedules, Run)"
    )
    cmds = sources.add_subparsers(dest="sources_command", required=True)
    sync_cmd = cmds.add_parser(
        "sync",
        help="create or update one source per exact dataset rule; delete sources of removed rules",
    )
    urn_cmd = cmds.add_parser(
        "urn",
        help="print the ingestion source URN a run request for DATASET_URN names "
        "(source.ingestionSource; LAMBDA_TRIGGER_EXECUTOR_ID)",
    )
    urn_cmd.add_argument("dataset_urn")
    sync_cmd.add_argument(
        "--force",
        action="store_true",
        help="overwrite (or delete) sources whose executorId, recipe or schedule was edited in "
        "DataHub since this tool wrote them",
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if getattr(args, "sources_command", "sync") == "urn":
        settings = DataHubSettings()
        print(source_urn(settings.executor_id, parse_dataset_urn(args.dataset_urn).urn), file=out)
        return 0
    settings = DataHubSettings()
    mapping = MappingSource(MappingSettings()).current()
    client = DataHubClient(settings)
    try:
        result = sync(
            client, mapping, settings.executor_id, force=bool(getattr(args, "force", False))
        )
    except DataHubUnavailable as exc:
        print(f"error: DataHub: {exc}", file=err)
        return 4
    finally:
        client.close()
    for urn, diff in result.refused.items():
        print(
            f"refused: {urn} was edited in DataHub (executorId, recipe or schedule); "
            "rerun with --force to overwrite:",
            file=err,
        )
        print(diff, file=err, end="" if diff.endswith("\n") else "\n")
    print(
        json.dumps(
            {
                "written": result.written,
                "deleted": result.deleted,
                "refused": sorted(result.refused),
            }
        ),
        file=out,
    )
    return 3 if result.refused else 0
