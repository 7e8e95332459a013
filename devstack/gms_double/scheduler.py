"""DataHub's ingestion-source scheduler and "Run" button, and a source's run history.

Writes (each the execution request DataHub itself writes):
- `IngestionSchedulerDouble.tick(at)`: IngestionScheduler (package com.datahub.metadata.ingestion,
  IngestionScheduler.java) turns a source's `schedule {interval, timezone}` into the next
  execution time (5-field cron prefixed with seconds "0", Spring CronExpression, the zone from
  `timezone`, default UTC) and then ExecutionRequestRunnable ingests, as the system actor, a new
  `dataHubExecutionRequestInput` with a random UUID: task RUN_INGEST, source {type
  SCHEDULED_INGESTION_SOURCE, ingestionSource}, executorId from the source's config (left out
  when absent), requestedAt now, args {recipe (pipeline_name injected, IngestionUtils.
  injectPipelineName), version (config.version, else the default CLI version), debug_mode,
  config.extraArgs}. `tick(at)` fires every scheduled source whose cron matches the minute of
  `at` in its zone, once per minute (the double's clock is the caller's, so tests are exact).
- `run_now(source, actor)`: CreateIngestionExecutionRequestResolver.java (datahub-graphql-core/
  .../resolvers/ingest/execution/): the same input with source type MANUAL_INGESTION_SOURCE,
  actorUrn = the caller, `run_id` = the execution request URN injected into the recipe too, and
  written as the caller.

- `cancel(source, execution_request_id, actor)`: CancelIngestionExecutionRequestResolver.java (same
  folder): reads the source's info and writes `dataHubExecutionRequestSignal` {signal KILL,
  executorId from the source's config (left out when absent), createdAt {now, the caller}} on the
  execution request, as the caller.

Reads: GraphQL `ingestionSource(urn) { urn type name executions(start, count) {...} }`, what the
Ingestion page's source history shows (IngestionSourceExecutionRequestsResolver.java: execution
requests whose input's `ingestionSource` is the source, newest `requestTimeMs` first).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from devstack.gms_double.auth import Principal
from devstack.gms_double.ingest import SYSTEM_ACTOR, Proposal, now_ms
from devstack.gms_double.search import SearchIndex
from devstack.gms_double.store import AspectStore


class SchedulerHost(Protocol):
    """What the scheduler needs from the double it runs in (server.GmsDouble is one).

    A protocol rather than an import of server.py, which imports gql.py, which imports this
    module: the package reads top-down (issue 23).
    """

    store: AspectStore

    def get_aspect(self, urn: str, aspect_name: str, version: int = 0) -> dict[str, Any] | None: ...

    def _ingest(self, proposals: list[Any], actor: str) -> list[Any]: ...


DEFAULT_CLI_VERSION = "1.7.0.17"  # GET /config managedIngestion.defaultCliVersion
_SOURCE_PREFIX = "urn:li:dataHubIngestionSource:"
_REQUEST_PREFIX = "urn:li:dataHubExecutionRequest:"

SDL = """
type Mutation {
  createIngestionExecutionRequest(input: CreateIngestionExecutionRequestInput!): String
  cancelIngestionExecutionRequest(input: CancelIngestionExecutionRequestInput!): String
}

input CreateIngestionExecutionRequestInput {
  ingestionSourceUrn: String!
}

input CancelIngestionExecutionRequestInput {
  ingestionSourceUrn: String!
  executionRequestUrn: String!
}

extend type Query {
  ingestionSource(urn: String!): IngestionSource
}

type IngestionSource {
  urn: String!
  type: String!
  name: String!
  executions(start: Int, count: Int): IngestionSourceExecutionRequests
}

type IngestionSourceExecutionRequests {
  start: Int
  count: Int
  total: Int
  executionRequests: [ExecutionRequestRow!]!
}

type ExecutionRequestRow {
  urn: String!
  id: String!
  input: ExecutionRequestInputRow!
  result: ExecutionRequestResultRow
}

type ExecutionRequestInputRow {
  task: String!
  source: ExecutionRequestSourceRow!
  requestedAt: Long!
  executorId: String
  actorUrn: String
}

type ExecutionRequestSourceRow {
  type: String
  ingestionSource: String
}

type ExecutionRequestResultRow {
  status: String!
  startTimeMs: Long
  durationMs: Long
}
"""


def _field_matches(spec: str, value: int, low: int, high: int) -> bool:
    for item in spec.split(","):
        part, step = item, 1
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = int(a), int(b)
        else:
            first = int(part)
            last = high if step > 1 else first
        if first <= value <= last and (value - first) % step == 0:
            return True
    return False


def cron_matches(interval: str, at: datetime) -> bool:
    """A 5-field cron (minute hour day-of-month month day-of-week; `*`, lists, ranges, steps;
    day-of-week 0 or 7 = Sunday) at the minute of `at`."""
    minute, hour, dom, month, dow = interval.split()
    weekday = (at.isoweekday()) % 7  # Sunday 0
    return (
        _field_matches(minute, at.minute, 0, 59)
        and _field_matches(hour, at.hour, 0, 23)
        and _field_matches(dom, at.day, 1, 31)
        and _field_matches(month, at.month, 1, 12)
        and (_field_matches(dow, weekday, 0, 7) or (weekday == 0 and _field_matches(dow, 7, 0, 7)))
    )


def _input(info: dict[str, Any], source_urn: str, source_type: str, recipe: str) -> dict[str, Any]:
    config = info.get("config") or {}
    args: dict[str, str] = {
        "recipe": recipe,
        "version": str(config.get("version") or DEFAULT_CLI_VERSION),
    }
    args.update({str(k): str(v) for k, v in (config.get("extraArgs") or {}).items()})
    args["debug_mode"] = "true" if config.get("debugMode") else "false"
    value: dict[str, Any] = {
        "task": "RUN_INGEST",
        "source": {"type": source_type, "ingestionSource": source_urn},
        "requestedAt": now_ms(),
        "args": args,
    }
    if config.get("executorId"):
        value["executorId"] = config["executorId"]
    return value


def _with(recipe: str, **fields: str) -> str:
    # IngestionUtils.injectPipelineName / injectRunId: top-level recipe keys.
    data = json.loads(recipe)
    data.update(fields)
    return json.dumps(data)


class IngestionSchedulerDouble:
    def __init__(self, double: SchedulerHost) -> None:
        self._double = double
        self._fired: set[tuple[str, str]] = set()

    def _info(self, source_urn: str) -> dict[str, Any] | None:
        return self._double.get_aspect(source_urn, "dataHubIngestionSourceInfo")

    def _write(self, value: dict[str, Any], actor: str, request_id: str) -> str:
        urn = f"{_REQUEST_PREFIX}{request_id}"
        self._double._ingest(
            [
                Proposal(
                    entity_type="dataHubExecutionRequest",
                    entity_urn=urn,
                    change_type="UPSERT",
                    aspect_name="dataHubExecutionRequestInput",
                    value=value,
                )
            ],
            actor,
        )
        return request_id

    def fire(self, source_urn: str) -> str:
        """ExecutionRequestRunnable.run for one source; returns the execution request id."""
        info = self._info(source_urn)
        if info is None:
            raise KeyError(source_urn)
        recipe = _with(info["config"]["recipe"], pipeline_name=source_urn)
        value = _input(info, source_urn, "SCHEDULED_INGESTION_SOURCE", recipe)
        return self._write(value, SYSTEM_ACTOR, str(uuid.uuid4()))

    def run_now(self, source_urn: str, actor: str) -> str:
        """CreateIngestionExecutionRequestResolver (the Ingestion page's Run)."""
        info = self._info(source_urn)
        if info is None:
            raise KeyError(f"Failed to find ingestion source with urn {source_urn}")
        request_id = str(uuid.uuid4())
        recipe = _with(
            info["config"]["recipe"],
            run_id=f"{_REQUEST_PREFIX}{request_id}",
            pipeline_name=source_urn,
        )
        value = _input(info, source_urn, "MANUAL_INGESTION_SOURCE", recipe)
        value["actorUrn"] = actor
        return self._write(value, actor, request_id)

    def cancel(self, source_urn: str, request_id: str, actor: str) -> None:
        """CancelIngestionExecutionRequestResolver (the Ingestion page's Cancel)."""
        info = self._info(source_urn)
        if info is None:
            raise KeyError(f"Failed to find ingestion source with urn {source_urn}")
        signal: dict[str, Any] = {"signal": "KILL", "createdAt": {"time": now_ms(), "actor": actor}}
        executor = (info.get("config") or {}).get("executorId")
        if executor:
            signal["executorId"] = executor
        self._double._ingest(
            [
                Proposal(
                    entity_type="dataHubExecutionRequest",
                    entity_urn=f"{_REQUEST_PREFIX}{request_id}",
                    change_type="UPSERT",
                    aspect_name="dataHubExecutionRequestSignal",
                    value=signal,
                )
            ],
            actor,
        )

    def tick(self, at: datetime) -> dict[str, str]:
        """Fire the scheduled sources due at `at` (an aware datetime); each at most once per
        minute. Returns {source urn: execution request id} of the requests written."""
        written: dict[str, str] = {}
        for urn in sorted(self._double.store.urns()):
            if not urn.startswith(_SOURCE_PREFIX):
                continue
            info = self._info(urn)
            schedule = (info or {}).get("schedule")
            if not schedule:
                continue
            local = at.astimezone(ZoneInfo(schedule.get("timezone") or "UTC"))
            minute = local.strftime("%Y-%m-%dT%H:%M%z")
            if (urn, minute) in self._fired or not cron_matches(schedule["interval"], local):
                continue
            self._fired.add((urn, minute))
            written[urn] = self.fire(urn)
        return written


def source_history(store: AspectStore, source_urn: str, start: int, count: int) -> dict[str, Any]:
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for urn in store.urns():
        if not urn.startswith(_REQUEST_PREFIX):
            continue
        row = store.latest(urn, "dataHubExecutionRequestInput")
        if row is None or (row.value.get("source") or {}).get("ingestionSource") != source_urn:
            continue
        rows.append((int(row.value.get("requestedAt") or 0), urn, row.value))
    rows.sort(key=lambda r: (-r[0], r[1]))
    page = rows[start : start + count]
    out = []
    for _at, urn, value in page:
        result = store.latest(urn, "dataHubExecutionRequestResult")
        out.append(
            {
                "urn": urn,
                "id": urn[len(_REQUEST_PREFIX) :],
                "input": {
                    "task": value.get("task"),
                    "source": value.get("source") or {},
                    "requestedAt": value.get("requestedAt") or 0,
                    "executorId": value.get("executorId"),
                    "actorUrn": value.get("actorUrn"),
                },
                "result": result.value if result is not None else None,
            }
        )
    return {"start": start, "count": len(out), "total": len(rows), "executionRequests": out}


def root_values(search: SearchIndex | None) -> dict[str, Any]:
    def ingestion_source(_info: Any, urn: str) -> dict[str, Any] | None:
        if search is None:
            return None
        store = search._store
        row = store.latest(urn, "dataHubIngestionSourceInfo")
        if row is None:
            return None

        def executions(_info: Any, start: int = 0, count: int = 10) -> dict[str, Any]:
            return source_history(store, urn, start or 0, count or 10)

        return {
            "urn": urn,
            "type": row.value.get("type"),
            "name": row.value.get("name"),
            "executions": executions,
        }

    return {"ingestionSource": ingestion_source}


# IngestionAuthUtils.canManageIngestion failing: an AuthorizationException.
UNAUTHORIZED = "Unauthorized to perform this action. Please contact your DataHub administrator."


def mutation_values(
    scheduler: IngestionSchedulerDouble | None, principal: Principal
) -> dict[str, Any]:
    """`createIngestionExecutionRequest` and `cancelIngestionExecutionRequest`, what the Ingestion
    page's Run and Cancel buttons send (ingestion.graphql), for a caller with manageIngestion."""

    def allowed() -> IngestionSchedulerDouble:
        if scheduler is None:
            raise RuntimeError("GMS test double: no scheduler on this endpoint")
        if not (principal.admin or principal.manage_ingestion):
            raise PermissionError(UNAUTHORIZED)
        return scheduler

    def create(_info: Any, input: dict[str, Any]) -> str:
        request_id = allowed().run_now(input["ingestionSourceUrn"], principal.actor_urn)
        return f"{_REQUEST_PREFIX}{request_id}"

    def cancel(_info: Any, input: dict[str, Any]) -> str:
        urn = str(input["executionRequestUrn"])
        allowed().cancel(
            input["ingestionSourceUrn"], urn.removeprefix(_REQUEST_PREFIX), principal.actor_urn
        )
        return urn

    return {"createIngestionExecutionRequest": create, "cancelIngestionExecutionRequest": cancel}
