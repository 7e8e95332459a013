"""GMS's synchronous write path for a batch of proposals, behaviour by behaviour.

Sources (all in datahub-project/datahub):

- `metadata-io/.../entity/EntityServiceImpl.java`:
  `ingestProposal` (timeseries first, then the rest), `ingestTimeseriesProposal` (a timeseries
  aspect is not stored in SQL: its entity's key aspect is upserted, then its MCL goes to the
  timeseries topic with no previous value), `ingestAspectsToLocalDB` (default aspects, version
  numbering, pre-commit validation that fails the whole request when it comes from an API,
  "Skipping obsolete write" for repeated aspects in one batch), `applyUpsert` (the
  systemMetadata bookkeeping and "do not increment version" for an unchanged value),
  `conditionallyProduceMCLAsync`/`isNoOp` (no MCL when the new value equals the old one, unless
  ALWAYS_EMIT_CHANGE_LOG (default false) or the aspect has a lineage relationship).
- `metadata-io/.../aspect/utils/DefaultAspectsUtil.java`: a write to an entity whose key aspect is
  missing also writes the key aspect (CREATE, header `If-None-Match: *`, the first item's
  systemMetadata without `version`); explicitly sent key aspects are dropped from the batch.
- `metadata-io/.../entity/validation/ValidationApiUtils.java` (validateMCP): unknown entity,
  URN/entity-type mismatch and unknown aspect are ValidationExceptions.
- `metadata-utils/.../SystemMetadataUtils.java`: default runId/lastObserved, `aspectModified`
  set to the write's AuditStamp unless the actor is the system actor, `properties.isNoOp`.
- Pre-commit validators registered in SpringStandardPluginConfiguration:
  `ConditionalWriteValidator` (If-Version-Match, If-Modified-Since, If-Unmodified-Since),
  `CreateIfNotExistsValidator` (CREATE / CREATE_ENTITY, `If-None-Match: *` turns the failure into a
  silent drop), `ExecutionRequestResultValidator` (a dataHubExecutionRequestResult whose stored
  status is SUCCESS, ABORTED, CANCELLED or DUPLICATE cannot be written again).

Hard delete (`delete_urn`, what `POST /entities?action=delete` runs): EntityServiceImpl.deleteUrn
deletes the key aspect with `hardDelete=true` through deleteAspectWithoutMCL, which removes every
row of the entity (EbeanAspectDao.deleteUrn) and yields one RollbackResult for the key aspect
(changeType DELETE, old value = the key, no new value); deleteUrn then produces exactly that one
MCL (alwaysProduceMCLAsync -> PegasusUtils.constructMCL: no `aspect`, no `systemMetadata`,
`previousAspectValue`/`previousSystemMetadata` = the key row's, `created` = the system actor).
No MCL per non-key aspect: consumers treat the key aspect's DELETE as the entity's removal.
A soft delete is an ordinary UPSERT of the `status` aspect (removed=true) and goes through
`ingest`; an entity without a `status` aspect (dataHubExecutionRequest) rejects it.

Authorization on writes: only the two validators of write_auth.py (ExecuteIngestionAuthValidator,
ModifyIngestionSourceAuthValidator), run on the proposed items with the caller as the session
before anything is written, in the behaviour of the double's DataHub version.

Not modelled: PATCH and DELETE change types in proposals, browsePaths/browsePathsV2/dataPlatformInstance
default aspects (only the key aspect is generated), other authorization (any other aspect may be
written by every authenticated actor), MCP side effects, the async (`async=true`) path through the MCP topic (the double
processes such a request synchronously).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devstack.gms_double import entity_registry as reg
from devstack.gms_double import write_auth
from devstack.gms_double.errors import (
    GmsIllegalArgument,
    GmsInternalError,
    GmsUnsupportedOperation,
    GmsValidationError,
    ValidationSubType,
)
from devstack.gms_double.mcl import MclRequest
from devstack.gms_double.schema_registry import TIMESERIES_MCL_TOPIC, VERSIONED_MCL_TOPIC
from devstack.gms_double.store import AspectRow, AspectStore, copy_json

# metadata-utils Constants
SYSTEM_ACTOR = "urn:li:corpuser:__datahub_system"
DEFAULT_RUN_ID = "no-run-id-provided"
NO_OP_KEY = "isNoOp"

# ConditionalWriteValidator / CreateIfNotExistsValidator constants.
IF_VERSION_MATCH = "If-Version-Match"
IF_MODIFIED_SINCE = "If-Modified-Since"
IF_UNMODIFIED_SINCE = "If-Unmodified-Since"
IF_NONE_MATCH = "If-None-Match"
UNVERSIONED_ASPECT_VERSION = "-1"
DEFAULT_LAST_MODIFIED_TIME = -(2**63)  # Long.MIN_VALUE

# ExecutionRequestResultValidator.IMMUTABLE_STATUS and its registration (entity, aspect, ops).
EXECUTION_REQUEST_ENTITY = "dataHubExecutionRequest"
EXECUTION_REQUEST_RESULT_ASPECT = "dataHubExecutionRequestResult"
IMMUTABLE_EXECUTION_STATUS = frozenset({"ABORTED", "CANCELLED", "SUCCESS", "DUPLICATE"})
EXECUTION_RESULT_VALIDATOR_OPS = frozenset({"UPSERT", "UPDATE"})

# The change types the double's upsert path accepts (ChangeItemImpl.validateOrDefaultChangeType);
# PATCH and DELETE exist in GMS but are not modelled here.
SUPPORTED_CHANGE_TYPES = ("UPSERT", "CREATE", "CREATE_ENTITY")
CREATE_CHANGE_TYPES = frozenset({"CREATE", "CREATE_ENTITY"})

# ALWAYS_EMIT_CHANGE_LOG (application.yaml / env table): default false.
ALWAYS_EMIT_CHANGE_LOG = False


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Proposal:
    """One MetadataChangeProposal as the API layer parsed it."""

    entity_type: str
    entity_urn: str
    change_type: str
    aspect_name: str | None
    value: Any
    system_metadata: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    # The other MCP fields the MCL inherits (PegasusUtils.constructMCL copies the proposal).
    audit_header: dict[str, Any] | None = None
    entity_key_aspect: dict[str, Any] | None = None


@dataclass
class _Item:
    urn: str
    entity: reg.EntitySpec
    aspect_name: str
    change_type: str
    value: dict[str, Any]
    system_metadata: dict[str, Any]
    headers: dict[str, str]
    audit_header: dict[str, Any] | None
    entity_key_aspect: dict[str, Any] | None
    timeseries: bool
    # Filled in by _apply_upsert:
    previous: AspectRow | None = None
    change_sm: dict[str, Any] = field(default_factory=dict)
    new_row: AspectRow | None = None
    changed: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.urn, self.aspect_name

    @property
    def entity_name(self) -> str:
        return self.entity.name


@dataclass(frozen=True)
class WriteResult:
    """What an API answers for one written aspect (OpenAPI's GenericEntityV3 entries)."""

    urn: str
    aspect_name: str
    value: dict[str, Any]
    system_metadata: dict[str, Any]
    audit_stamp: dict[str, Any]


@dataclass(frozen=True)
class _Violation:
    urn: str
    aspect_name: str
    change_type: str
    subtype: ValidationSubType
    msg: str

    def render(self) -> str:
        # Lombok @Value toString of AspectValidationException (the `item` field left out).
        return (
            f"AspectValidationException(changeType={self.change_type}, entityUrn={self.urn}, "
            f"aspectName={self.aspect_name}, subType={self.subtype.value}, msg={self.msg})"
        )


def _collection_message(violations: list[_Violation]) -> str:
    """ValidationExceptionCollection.toString: groups by (urn, aspect), sorted."""
    groups: dict[tuple[str, str], list[_Violation]] = {}
    for v in violations:
        groups.setdefault((v.urn, v.aspect_name), []).append(v)
    parts = [
        f"EntityAspect:({urn}, {aspect}) Exceptions: [{', '.join(v.render() for v in vs)}]"
        for (urn, aspect), vs in sorted(groups.items(), key=lambda kv: f"({kv[0][0]}, {kv[0][1]})")
    ]
    return "ValidationExceptionCollection{" + "; ".join(parts) + "}"


def aspect_json_bytes(value: dict[str, Any]) -> bytes:
    # GenericRecordUtils.serializeAspect: RecordUtils.toJsonString (compact JSON).
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _parse_instant_ms(text: str) -> int:
    # java.time.Instant.parse: ISO-8601 instants such as 2024-01-01T00:00:00Z.
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as exc:
        # A DateTimeParseException is not mapped by either API: 500.
        raise GmsInternalError(f"Text '{text}' could not be parsed at index 0") from exc


class WritePipeline:
    """Runs proposals through the write path. Callers hold the double's write lock.

    `produce` hands a write's MCLs to the producer once its rows are committed and may return
    before the broker acknowledged them (mcl.MclProducer.produce): what it returns is kept, in
    order, for `take_deliveries`, so the caller waits for the acknowledgements after releasing
    its lock, as GMS joins its MCL futures after the transaction (EntityServiceImpl.emitMCL)."""

    def __init__(
        self,
        store: AspectStore,
        produce: Callable[[list[MclRequest]], object],
        on_commit: Callable[[], None],
        *,
        versioned_topic: str = VERSIONED_MCL_TOPIC,
        timeseries_topic: str = TIMESERIES_MCL_TOPIC,
        execute_validator: write_auth.ExecuteValidator = write_auth.ExecuteValidator.RELAXED,
    ) -> None:
        self.execute_validator = execute_validator
        self._versioned_topic = versioned_topic
        self._timeseries_topic = timeseries_topic
        self._store = store
        self._producer = produce
        self._on_commit = on_commit
        self._deliveries: list[object] = []

    def _produce(self, requests: list[MclRequest]) -> None:
        if requests:
            self._deliveries.append(self._producer(requests))

    def take_deliveries(self) -> list[object]:
        """What `produce` returned since the last call, in produce order."""
        taken, self._deliveries = self._deliveries, []
        return taken

    # -- entry point -------------------------------------------------------------------------

    def ingest(
        self,
        proposals: list[Proposal],
        actor: str,
        session: write_auth.Session | None = None,
    ) -> list[WriteResult]:
        """`session`: the caller, as GMS passes it to validateProposedAspectsWithAuth on API
        writes; None when GMS authentication is off."""
        audit = {"time": now_ms(), "actor": actor}
        # AspectsBatchImpl.builder().mcps(...) validates every proposal before anything is written.
        items = [self._to_item(p, audit) for p in proposals]
        denied = write_auth.violations(items, session, self.execute_validator)
        if denied:
            found = [
                _Violation(
                    i.urn, i.aspect_name, i.change_type, ValidationSubType.AUTHORIZATION, msg
                )
                for i, msg in denied
            ]
            raise GmsValidationError(
                _collection_message(found), frozenset({ValidationSubType.AUTHORIZATION})
            )

        results: list[WriteResult] = []
        timeseries = [i for i in items if i.timeseries]
        if timeseries:
            results.extend(self._ingest_timeseries(timeseries, audit))
        versioned = [i for i in items if not i.timeseries]
        if versioned:
            results.extend(self._ingest_versioned(versioned, audit))
        return results

    # -- hard delete ---------------------------------------------------------------------------

    def delete_urn(self, urn: str) -> tuple[int, int]:
        """EntityServiceImpl.deleteUrn plus EntityResource.deleteTimeseriesAspects: returns
        (rows deleted, timeseries values deleted). Nothing stored: (0, 0) and no MCL."""
        parsed = reg.parse_urn(urn)
        spec = reg.require_entity(parsed.entity_type)
        key = self._store.latest(urn, spec.key_aspect)
        if key is None:
            # "Entity to delete does not exist": an empty RollbackRunResult. Timeseries values
            # of a never-keyed entity cannot exist in the double (their write stores the key).
            return 0, 0
        rows, timeseries = self._store.delete_urn(urn)
        self._on_commit()
        mcl: dict[str, Any] = {
            "auditHeader": None,
            "entityType": spec.name,
            "entityUrn": urn,
            "entityKeyAspect": None,
            "changeType": "DELETE",
            "aspectName": spec.key_aspect,
            "aspect": None,
            "systemMetadata": None,
            "headers": None,
            "previousAspectValue": {
                "value": aspect_json_bytes(key.value),
                "contentType": reg.JSON_CONTENT_TYPE,
            },
            "previousSystemMetadata": key.system_metadata,
            # createSystemAuditStamp(): the deletion is attributed to the system actor.
            "created": {"time": now_ms(), "actor": SYSTEM_ACTOR},
        }
        self._produce([MclRequest(self._versioned_topic, urn, mcl)])
        return rows, timeseries

    # -- proposal -> item --------------------------------------------------------------------

    def _to_item(self, p: Proposal, audit: dict[str, Any]) -> _Item:
        if not p.entity_urn:
            raise GmsIllegalArgument(
                "entityUrn is required (entityKeyAspect-only proposals are not modelled)"
            )
        parsed = reg.parse_urn(p.entity_urn)
        spec = reg.require_entity(parsed.entity_type)
        if p.entity_type.lower() != spec.name.lower():
            raise GmsValidationError(
                "URN entity type does not match MCP entity type. "
                f"{parsed.entity_type} != {p.entity_type}"
            )
        aspect_name = reg.require_aspect(spec, p.aspect_name)
        change_type = p.change_type or "UPSERT"
        timeseries = reg.is_timeseries(aspect_name)
        if timeseries and change_type != "UPSERT":
            raise GmsUnsupportedOperation(f"ChangeType not supported: [{change_type}]")
        if change_type not in SUPPORTED_CHANGE_TYPES:
            raise GmsIllegalArgument(
                f"ChangeType {change_type} not in [{', '.join(SUPPORTED_CHANGE_TYPES)}] "
                "(GMS test double: PATCH and DELETE are not modelled)"
            )
        # The key aspect must be valid for the URN (validateRecordTemplate on buildKeyAspect).
        reg.key_aspect_of(p.entity_urn)
        reg.validate_aspect_value(spec, aspect_name, p.value)
        assert isinstance(p.value, dict)

        sm = copy_json(p.system_metadata) if p.system_metadata else {}
        # SystemMetadataUtils.generateSystemMetadataIfEmpty
        if sm.get("runId") is None:
            sm["runId"] = DEFAULT_RUN_ID
        if not sm.get("lastObserved"):
            sm["lastObserved"] = audit["time"]
        # SystemMetadataUtils.setAspectModified
        if audit["actor"] != SYSTEM_ACTOR:
            sm["aspectModified"] = dict(audit)
        return _Item(
            urn=p.entity_urn,
            entity=spec,
            aspect_name=aspect_name,
            change_type=change_type,
            value=copy_json(p.value),
            system_metadata=sm,
            headers=dict(p.headers or {}),
            audit_header=p.audit_header,
            entity_key_aspect=p.entity_key_aspect,
            timeseries=timeseries,
        )

    # -- timeseries ----------------------------------------------------------------------------

    def _ingest_timeseries(self, items: list[_Item], audit: dict[str, Any]) -> list[WriteResult]:
        # ingestTimeseriesProposal: the entity's key aspect is upserted synchronously first.
        keys: list[_Item] = []
        for item in items:
            key_name, key_value = reg.key_aspect_of(item.urn)
            keys.append(
                _Item(
                    urn=item.urn,
                    entity=item.entity,
                    aspect_name=key_name,
                    change_type="UPSERT",
                    value=key_value,
                    system_metadata=copy_json(item.system_metadata),
                    headers={},
                    audit_header=None,
                    entity_key_aspect=None,
                    timeseries=False,
                )
            )
        # The key aspects' results are not part of the answer (only the timeseries items are).
        self._ingest_versioned(keys, audit)

        results: list[WriteResult] = []
        requests = []
        for item in items:
            self._store.put_timeseries(
                item.urn,
                item.aspect_name,
                AspectRow(item.value, item.system_metadata, audit["time"], audit["actor"]),
            )
            requests.append(
                MclRequest(
                    self._timeseries_topic,
                    item.urn,
                    self._mcl(item, "UPSERT", item.system_metadata, None, audit),
                )
            )
            results.append(
                WriteResult(item.urn, item.aspect_name, item.value, item.system_metadata, audit)
            )
        self._on_commit()
        self._produce(requests)
        return results

    # -- versioned -----------------------------------------------------------------------------

    def _ingest_versioned(self, inputs: list[_Item], audit: dict[str, Any]) -> list[WriteResult]:
        batch = self._with_default_aspects(inputs)

        db: dict[tuple[str, str], AspectRow | None] = {}
        for item in batch:
            if item.key not in db:
                db[item.key] = self._store.latest(*item.key)
        running: dict[tuple[str, str], AspectRow | None] = dict(db)
        versions: dict[tuple[str, str], int] = {}
        for key, row in db.items():
            versions[key] = row.version_number(self._store.history_len(*key)) if row else 0

        for item in batch:
            self._apply_upsert(item, db, running, versions, audit)

        violations = self._validate_pre_commit(batch)
        fatal = [v for v in violations if v.subtype is not ValidationSubType.FILTER]
        if fatal:
            raise GmsValidationError(
                _collection_message(fatal), frozenset(v.subtype for v in fatal)
            )
        dropped = {(v.urn, v.aspect_name) for v in violations}

        written: list[_Item] = []
        for item in batch:
            if item.key in dropped:
                continue
            final = running[item.key]
            # "Skipping obsolete write": only the last write of an aspect within a batch lands.
            if final is not None and final.system_metadata.get("version") != item.change_sm.get(
                "version"
            ):
                continue
            assert item.new_row is not None
            self._store.put_latest(
                item.urn,
                item.aspect_name,
                item.new_row,
                keep_previous=item.changed and item.previous is not None,
            )
            written.append(item)
        if written:
            self._on_commit()

        requests: list[MclRequest] = []
        for item in written:
            no_op = item.change_sm.get("properties", {}).get(NO_OP_KEY) == "true" or (
                item.previous is not None and item.previous.value == item.value
            )
            if no_op and not (
                ALWAYS_EMIT_CHANGE_LOG or reg.emits_change_log_when_unchanged(item.aspect_name)
            ):
                continue  # "Skipped producing MCL ... Aspect has not changed."
            requests.append(
                MclRequest(
                    self._versioned_topic,
                    item.urn,
                    self._mcl(
                        item, "RESTATE" if no_op else "UPSERT", item.change_sm, item.previous, audit
                    ),
                )
            )
        self._produce(requests)
        return [WriteResult(i.urn, i.aspect_name, i.value, i.change_sm, audit) for i in written]

    def _with_default_aspects(self, inputs: list[_Item]) -> list[_Item]:
        """DefaultAspectsUtil.withAdditionalChanges: drop sent key aspects, then add the key
        aspect for every URN whose key aspect is not stored yet."""
        batch = [i for i in inputs if i.aspect_name != i.entity.key_aspect]
        first_by_urn: dict[str, _Item] = {}
        for item in inputs:
            first_by_urn.setdefault(item.urn, item)
        for urn, template in first_by_urn.items():
            key_name, key_value = reg.key_aspect_of(urn)
            if self._store.has_latest(urn, key_name):
                continue
            sm = copy_json(template.system_metadata)
            sm.pop("version", None)
            batch.append(
                _Item(
                    urn=urn,
                    entity=template.entity,
                    aspect_name=key_name,
                    change_type="CREATE",
                    value=key_value,
                    system_metadata=sm,
                    headers={IF_NONE_MATCH: "*"},
                    audit_header=None,
                    entity_key_aspect={
                        "value": aspect_json_bytes(key_value),
                        "contentType": reg.JSON_CONTENT_TYPE,
                    },
                    timeseries=False,
                )
            )
        return batch

    @staticmethod
    def _apply_upsert(
        item: _Item,
        db: dict[tuple[str, str], AspectRow | None],
        running: dict[tuple[str, str], AspectRow | None],
        versions: dict[tuple[str, str], int],
        audit: dict[str, Any],
    ) -> None:
        """EntityServiceImpl.applyUpsert (+ AspectsBatch.incrementBatchVersion)."""
        current = running[item.key]
        row_next = max(1, versions[item.key] + 1)
        change_sm = copy_json(item.system_metadata)
        change_sm["version"] = str(row_next)
        if row_next == 1 and "aspectModified" in item.system_metadata:
            change_sm["aspectCreated"] = copy_json(item.system_metadata["aspectModified"])

        if current is not None:
            previous_db = db[item.key]
            stored_sm = copy_json(current.system_metadata)
            previous_run = previous_db.system_metadata.get("runId") if previous_db else None
            _set_or_remove(stored_sm, "lastRunId", previous_run)
            if change_sm.get("lastObserved") is not None:
                stored_sm["lastObserved"] = change_sm["lastObserved"]
            _set_or_remove(stored_sm, "runId", change_sm.get("runId"))
            if current.value != item.value:
                stored_sm["version"] = change_sm["version"]
                if "aspectModified" in change_sm:
                    stored_sm["aspectModified"] = copy_json(change_sm["aspectModified"])
                if "aspectCreated" in change_sm:
                    stored_sm["aspectCreated"] = copy_json(change_sm["aspectCreated"])
                item.new_row = AspectRow(item.value, stored_sm, audit["time"], audit["actor"])
                item.changed = True
            else:
                # "Do not increment version with the incoming change (match existing version)"
                match = current.system_metadata.get("version") or str(row_next)
                change_sm["version"] = str(match)
                stored_sm["version"] = str(match)
                item.new_row = AspectRow(
                    current.value, stored_sm, current.created_on, current.created_by
                )
                item.changed = False
            item.previous = previous_db
        else:
            item.new_row = AspectRow(
                item.value, copy_json(change_sm), audit["time"], audit["actor"]
            )
            item.changed = True
            item.previous = None
        item.change_sm = change_sm
        running[item.key] = item.new_row
        versions[item.key] = int(change_sm["version"])

    # -- validators ----------------------------------------------------------------------------

    def _validate_pre_commit(self, batch: list[_Item]) -> list[_Violation]:
        out: list[_Violation] = []
        out.extend(self._conditional_write(batch))
        out.extend(self._create_if_not_exists(batch))
        out.extend(self._execution_request_result(batch))
        return out

    def _conditional_write(self, batch: list[_Item]) -> list[_Violation]:
        """ConditionalWriteValidator.validatePreCommitAspects."""
        out: list[_Violation] = []
        for item in batch:
            if item.change_type == "RESTATE":
                continue
            expected = item.headers.get(IF_VERSION_MATCH)
            if expected is not None:
                if item.change_type in CREATE_CHANGE_TYPES:
                    actual = UNVERSIONED_ASPECT_VERSION
                elif item.previous is not None:
                    actual = str(item.previous.version_number(0))
                else:
                    actual = UNVERSIONED_ASPECT_VERSION
                if expected != actual:
                    out.append(
                        self._violation(
                            item,
                            ValidationSubType.PRECONDITION,
                            f"Expected version {expected}, actual version {actual}",
                        )
                    )
            for header in (IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE):
                text = item.headers.get(header)
                if text is None:
                    continue
                if item.change_type in CREATE_CHANGE_TYPES or item.previous is None:
                    last_modified = DEFAULT_LAST_MODIFIED_TIME
                else:
                    last_modified = item.previous.created_on
                header_ms = _parse_instant_ms(text)
                if header == IF_MODIFIED_SINCE and not last_modified > header_ms:
                    out.append(
                        self._violation(
                            item,
                            ValidationSubType.PRECONDITION,
                            f"Item last modified {last_modified} <= {header_ms} (epoch ms)",
                        )
                    )
                if header == IF_UNMODIFIED_SINCE and not last_modified <= header_ms:
                    out.append(
                        self._violation(
                            item,
                            ValidationSubType.PRECONDITION,
                            f"Item last modified {last_modified} > {header_ms} (epoch ms)",
                        )
                    )
        return out

    def _create_if_not_exists(self, batch: list[_Item]) -> list[_Violation]:
        """CreateIfNotExistsValidator.validatePreCommitAspects."""
        out: list[_Violation] = []
        new_entities = {i.urn for i in batch if i.aspect_name == i.entity.key_aspect}
        for item in batch:
            precondition = item.headers.get(IF_NONE_MATCH) == "*"
            message = None
            if item.change_type == "CREATE_ENTITY" and item.urn not in new_entities:
                message = "Cannot perform CREATE_ENTITY if not exists since the entity key already exists."
            elif item.change_type == "CREATE" and item.previous is not None:
                message = "Cannot perform CREATE since the aspect already exists."
            if message is None:
                continue
            # With `If-None-Match: *` the write is dropped quietly instead of failing the batch.
            if precondition:
                out.append(
                    self._violation(
                        item,
                        ValidationSubType.FILTER,
                        "Dropping write per precondition header If-None-Match: *",
                    )
                )
            else:
                out.append(self._violation(item, ValidationSubType.VALIDATION, message))
        return out

    def _execution_request_result(self, batch: list[_Item]) -> list[_Violation]:
        """ExecutionRequestResultValidator.validatePreCommitAspects."""
        out: list[_Violation] = []
        for item in batch:
            if (
                item.entity.name != EXECUTION_REQUEST_ENTITY
                or item.aspect_name != EXECUTION_REQUEST_RESULT_ASPECT
                or item.change_type not in EXECUTION_RESULT_VALIDATOR_OPS
                or item.previous is None
            ):
                continue
            previous_status = item.previous.value.get("status")
            if previous_status in IMMUTABLE_EXECUTION_STATUS:
                out.append(
                    self._violation(
                        item,
                        ValidationSubType.VALIDATION,
                        "Invalid update to immutable state for aspect dataHubExecutionRequestResult. "
                        f"Execution urn: {item.urn} previous status: {previous_status}. "
                        f"Denied status update: {item.value.get('status')}",
                    )
                )
        return out

    @staticmethod
    def _violation(item: _Item, subtype: ValidationSubType, msg: str) -> _Violation:
        return _Violation(item.urn, item.aspect_name, item.change_type, subtype, msg)

    # -- MCL -------------------------------------------------------------------------------------

    @staticmethod
    def _mcl(
        item: _Item,
        change_type: str,
        system_metadata: dict[str, Any],
        previous: AspectRow | None,
        audit: dict[str, Any],
    ) -> dict[str, Any]:
        """PegasusUtils.constructMCL(base = the proposal, ...)."""
        mcl: dict[str, Any] = {
            "auditHeader": item.audit_header,
            "entityType": item.entity.name,
            "entityUrn": item.urn,
            "entityKeyAspect": item.entity_key_aspect,
            "changeType": change_type,
            "aspectName": item.aspect_name,
            "aspect": {
                "value": aspect_json_bytes(item.value),
                "contentType": reg.JSON_CONTENT_TYPE,
            },
            "systemMetadata": system_metadata,
            "headers": item.headers or None,
            "previousAspectValue": None,
            "previousSystemMetadata": None,
            "created": dict(audit),
        }
        if previous is not None:
            mcl["previousAspectValue"] = {
                "value": aspect_json_bytes(previous.value),
                "contentType": reg.JSON_CONTENT_TYPE,
            }
            mcl["previousSystemMetadata"] = previous.system_metadata
        return mcl


def _set_or_remove(d: dict[str, Any], key: str, value: Any) -> None:
    # SetMode.REMOVE_IF_NULL
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value
