"""Request -> proposals and result -> response for GMS's two write APIs and its read endpoints.

Pure functions over parsed JSON, so the HTTP layer (server.py) only moves bytes.

- Rest.li (`/aspects`): metadata-service/restli-servlet-impl/.../resources/entity/AspectResource.java
  (`ingestProposal`, `ingestProposalBatch` with `async`, the GET returning a VersionedAspect,
  `return RESTLI_SUCCESS` = "success"), RestliUtils.toTask for the status of other exceptions.
- OpenAPI v3 (`/openapi/v3/entity/{entityName}`): metadata-service/openapi-servlet/.../v3/
  controller/EntityController.java (`toMCPBatch`: urn required, aspects looked up
  case-insensitively and silently skipped when unknown, `systemMetadata` and `headers` per
  aspect, change type UPSERT; `buildEntityList`), GenericEntitiesController.createEntity
  (`async` defaults to true: 202 instead of 200), models GenericEntityV3 / GenericAspectV3
  (`@JsonInclude(NON_NULL)`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devstack.gms_double import entity_registry as reg
from devstack.gms_double.errors import (
    GmsError,
    GmsIllegalArgument,
    GmsInternalError,
    GmsUnsupportedOperation,
    GmsValidationError,
    ValidationSubType,
)
from devstack.gms_double.ingest import Proposal, WriteResult
from devstack.gms_double.schema_registry import wheel_schema
from devstack.gms_double.store import AspectRow

RESTLI_SUCCESS = "success"
RESTLI_EXCEPTION_CLASS = "com.linkedin.restli.server.RestLiServiceException"


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able; None = empty body
    headers: dict[str, str] = field(default_factory=dict)


# -- Rest.li ------------------------------------------------------------------------------------


def restli_error(status: int, message: str | None) -> Reply:
    """A RestLiServiceException as the Rest.li 2.0 server serialises it (ErrorResponse)."""
    body: dict[str, Any] = {
        "exceptionClass": RESTLI_EXCEPTION_CLASS,
        "stackTrace": f"{RESTLI_EXCEPTION_CLASS} [HTTP Status:{status}]: {message}\n"
        "\t(GMS test double: no Java stack)",
        "message": message,
        "status": status,
    }
    return Reply(status, body, {"X-RestLi-Error-Response": "true"})


def restli_error_for(exc: GmsError) -> Reply:
    if isinstance(exc, GmsValidationError):
        # AspectResource.ingestProposals: `catch (ValidationException e)` -> 422.
        return restli_error(422, exc.message)
    if isinstance(exc, GmsIllegalArgument):
        return restli_error(400, exc.message)
    return restli_error(500, exc.message)


def _mcp_fields() -> frozenset[str]:
    return frozenset(f["name"] for f in wheel_schema("MetadataChangeProposal.avsc")["fields"])


def _generic_aspect_json(generic: Any, what: str) -> Any:
    """GenericRecordUtils.deserializeAspect for a Rest.li GenericAspect {value, contentType}."""
    if not isinstance(generic, dict) or not isinstance(generic.get("value"), str):
        raise GmsIllegalArgument(f"{what} must be a GenericAspect with a string value")
    if generic.get("contentType") != reg.JSON_CONTENT_TYPE:
        raise GmsIllegalArgument(f"Unsupported content-type: {generic.get('contentType')}")
    try:
        parsed = json.loads(generic["value"])
    except json.JSONDecodeError as exc:
        # ChangeItemImpl.convertToRecordTemplate rethrows as a RuntimeException: 500.
        raise GmsInternalError(
            f"Could not deserialize {generic['value']} for aspect {what}"
        ) from exc
    return parsed


def restli_proposal(raw: Any, where: str) -> Proposal:
    """A Rest.li MetadataChangeProposal (what DatahubRestEmitter sends as `proposal`)."""
    if not isinstance(raw, dict):
        raise GmsIllegalArgument(
            f"Input field validation failure, reason: ERROR :: {where} :: not a record"
        )
    unknown = sorted(set(raw) - _mcp_fields())
    if unknown:
        # Rest.li's strict request validation; the SDK matches on this phrase.
        raise GmsIllegalArgument(
            f"Parameters of method 'ingestProposal' failed validation with error "
            f"'ERROR :: {where}/{unknown[0]} :: unrecognized field found but not allowed'"
        )
    for required in ("entityType", "changeType"):
        if not isinstance(raw.get(required), str):
            raise GmsIllegalArgument(
                f"Input field validation failure, reason: ERROR :: {where}/{required} :: field is required but not found and has no default value"
            )
    aspect = raw.get("aspect")
    if aspect is None:
        raise GmsUnsupportedOperation(
            "Aspect and aspect name is required for create and update operations"
        )
    key_aspect = raw.get("entityKeyAspect")
    return Proposal(
        entity_type=raw["entityType"],
        entity_urn=raw.get("entityUrn") or "",
        change_type=raw["changeType"],
        aspect_name=raw.get("aspectName"),
        value=_generic_aspect_json(aspect, str(raw.get("aspectName"))),
        system_metadata=raw.get("systemMetadata"),
        headers=raw.get("headers"),
        audit_header=raw.get("auditHeader"),
        entity_key_aspect=(
            {
                "value": key_aspect["value"].encode("utf-8"),
                "contentType": key_aspect.get("contentType"),
            }
            if isinstance(key_aspect, dict) and isinstance(key_aspect.get("value"), str)
            else None
        ),
    )


def restli_ingest_body(action: str, body: Any) -> list[Proposal]:
    if not isinstance(body, dict):
        raise GmsIllegalArgument("Request body must be a JSON object")
    if action == "ingestProposal":
        return [restli_proposal(body.get("proposal"), "/proposal")]
    if action == "ingestProposalBatch":
        proposals = body.get("proposals")
        if not isinstance(proposals, list):
            raise GmsIllegalArgument(
                "Input field validation failure, reason: ERROR :: /proposals :: field is required but not found and has no default value"
            )
        return [restli_proposal(p, f"/proposals/{i}") for i, p in enumerate(proposals)]
    raise GmsIllegalArgument(f"Action '{action}' is not supported by the GMS test double")


def restli_versioned_aspect(aspect_name: str, row: AspectRow, version: int) -> Reply:
    """AspectResource.get: a VersionedAspect {aspect: {<Pegasus FQCN>: value}, version}."""
    return Reply(
        200, {"aspect": {reg.pegasus_class_name(aspect_name): row.value}, "version": version}
    )


def restli_not_found() -> Reply:
    # RestliUtils.nonExceptionResourceNotFound(): a 404 without an exception behind it.
    return Reply(404, {"status": 404}, {"X-RestLi-Error-Response": "true"})


# -- OpenAPI -------------------------------------------------------------------------------------


def openapi_error_for(exc: GmsError) -> Reply:
    """GlobalControllerExceptionHandler."""
    if isinstance(exc, GmsValidationError):
        if ValidationSubType.AUTHORIZATION in exc.subtypes:
            return Reply(403, {"error": "Authorization Error", "message": exc.message})
        if ValidationSubType.PRECONDITION in exc.subtypes:
            return Reply(412, {"error": "Precondition Error", "message": exc.message})
        return Reply(400, {"error": "Validation Error", "message": exc.message})
    if isinstance(exc, GmsIllegalArgument):
        return Reply(400, {"error": exc.message})
    return Reply(500, {"error": "Internal server error occurred"})


def openapi_proposals(body: Any) -> list[Proposal]:
    """EntityController.toMCPBatch (v3)."""
    if not isinstance(body, list):
        return []  # `if (entities.isArray())`: anything else is an empty batch
    proposals: list[Proposal] = []
    for entity in body:
        if not isinstance(entity, dict) or "urn" not in entity:
            raise GmsIllegalArgument("Missing `urn` field")
        urn = str(entity["urn"])
        parsed = reg.parse_urn(urn)
        spec = reg.entity_spec(parsed.entity_type)
        if spec is None:
            raise GmsIllegalArgument(
                f"Failed to find entity with name {parsed.entity_type} in EntityRegistry"
            )
        for name, aspect in entity.items():
            if name == "urn":
                continue
            canonical = reg.aspect_in_entity_ignore_case(spec, name)
            if canonical is None:
                continue  # `aspectSpec != null` guard: unknown aspects are dropped silently
            if not isinstance(aspect, dict):
                raise GmsIllegalArgument(f"Aspect {name} must be an object")
            headers = aspect.get("headers")
            proposals.append(
                Proposal(
                    entity_type=spec.name,
                    entity_urn=urn,
                    change_type="UPSERT",
                    aspect_name=canonical,
                    value=aspect.get("value"),
                    system_metadata=aspect.get("systemMetadata"),
                    headers={str(k): str(v) for k, v in headers.items()}
                    if isinstance(headers, dict)
                    else None,
                )
            )
    return proposals


def openapi_entity_list(
    results: list[WriteResult], with_system_metadata: bool
) -> list[dict[str, Any]]:
    """EntityController.buildEntityList: one GenericEntityV3 per URN, the last write of an aspect
    winning; `systemMetadata`/`auditStamp` only when asked for (NON_NULL)."""
    by_urn: dict[str, dict[str, Any]] = {}
    for r in results:
        entity = by_urn.setdefault(r.urn, {"urn": r.urn})
        item: dict[str, Any] = {"value": r.value}
        if with_system_metadata:
            item["systemMetadata"] = r.system_metadata
            item["auditStamp"] = r.audit_stamp
        entity[r.aspect_name] = item
    return list(by_urn.values())


def openapi_aspect(row: AspectRow, with_system_metadata: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"value": row.value}
    if with_system_metadata:
        item["systemMetadata"] = row.system_metadata
    return item


def truthy(value: str | None, default: bool) -> bool:
    # Spring's Boolean conversion of request parameters.
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes", "on")
