"""GMS's authorization validators on API writes, by DataHub release (the double's `--datahub-version`).

`SpringStandardPluginConfiguration` (metadata-service/factories/.../gms/factory/plugins/,
read at commit 00e0ccde57fcfe2c557628aea6f0c79a98f0ea61) registers two AspectPayloadValidators
whose `validateProposedAspectsWithAuth` gets the caller's AuthorizationSession on API writes
(none when GMS authentication is off: both then log "Authentication details not found,
ignoring..." and pass):

- `ExecuteIngestionAuthValidator` on `dataHubExecutionRequest`/`dataHubExecutionRequestInput`,
  change types CREATE, UPSERT, PATCH, UPDATE, CREATE_ENTITY
  (package com.linkedin.metadata.ingestion.validation, metadata-io). Two behaviours:
  * STRICT, read at commit 786b628a9da62a556d6055ef7ac378e066a63c22 (before PR #14253): an input
    without `source.ingestionSource` gets the auth exception "Couldn't find the ingestion
    source details for <request urn>" for ANY writer (admin included); with one, the writer needs
    EXECUTE on that source, else "Doesn't have permissions to execute this Ingestion".
  * RELAXED, read at commit 17c60335d1d6233596ce057c3a8158ab927a53d6 (after PR #14253 "Update
    execute ingestion validator to run only on ingestion sources", merged 2025-07-29): an input
    without `source.ingestionSource` passes; with one, EXECUTE on it is still required.
  EXECUTE on a `dataHubIngestionSource` is granted by MANAGE_INGESTION or EXECUTE_ENTITY on the
  source (ExecuteIngestionAuthValidatorTest, metadata-io/src/test/.../ingestion/validators/, at
  commit 06ebc42ef31780700afc54f3887097f3457d77ef).
- `ModifyIngestionSourceAuthValidator` on `dataHubIngestionSource`/`dataHubIngestionSourceInfo`,
  every change type (read at commit 17c60335d1d6233596ce057c3a8158ab927a53d6): CREATE needs
  ApiOperation.CREATE, UPSERT/UPDATE/PATCH/RESTATE need UPDATE, DELETE needs DELETE on the
  source; PoliciesConfig.API_ENTITY_PRIVILEGE_MAP maps all three to MANAGE_INGESTION for
  `dataHubIngestionSource`. Messages: "Doesn't have permissions to create|edit|delete this
  Ingestion source". Same in both behaviours.

REST API authorization (AuthUtil.isAPIAuthorizedMCPs, called by AspectResource.ingestProposal
before the batch is built; REST_API_AUTHORIZATION_ENABLED, default true): a write needs
EDIT_ENTITY on each proposal's entity (ApiOperation UPDATE for UPSERT; CREATE also accepts
CREATE_ENTITY, PoliciesConfig.API_PRIVILEGE_MAP). Rest.li refuses with HTTP 403
"User <actor> is unauthorized to modify entity: HttpStatus: 403 Urn: <urn>[, ...]"
(metadata-service/restli-servlet-impl/.../resources/entity/AspectResource.java). The double
applies it only to principals with `strict_policies` (auth.Principal): the others keep the
double's older "every authenticated actor may write". OpenAPI writes get the same 403 and
message in the double (GenericEntitiesController's own wording was not read).

An auth exception is an AspectValidationException of subtype AUTHORIZATION; the batch fails
before anything is written. Rest.li answers 422 (AspectResource catches the
ValidationException), OpenAPI answers 403 {"error": "Authorization Error"} (api.openapi_error_for).

Which releases have which behaviour: STRICT for releases cut before 2025-07-29 (DataHub v1.2.0:
the acryl-datahub 1.2.0 wheel released with it is dated 2025-07-17), RELAXED for v1.3.0 and
later, including v1.7.0, the release this project targets. The release-to-commit mapping is by
date, not read at the tag commits (the stored DataHub snapshot is too large to fetch here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from enum import Enum
from typing import Any, Protocol

EXECUTION_REQUEST_ENTITY = "dataHubExecutionRequest"
EXECUTION_REQUEST_INPUT_ASPECT = "dataHubExecutionRequestInput"
INGESTION_SOURCE_ENTITY = "dataHubIngestionSource"
INGESTION_SOURCE_INFO_ASPECT = "dataHubIngestionSourceInfo"

EXECUTE_VALIDATOR_OPS = frozenset({"CREATE", "UPSERT", "PATCH", "UPDATE", "CREATE_ENTITY"})
# AUTH_CHANGE_TYPE_OPERATIONS in SpringStandardPluginConfiguration.
MODIFY_SOURCE_VALIDATOR_OPS = frozenset(
    {"CREATE", "CREATE_ENTITY", "UPDATE", "UPSERT", "PATCH", "DELETE", "RESTATE"}
)

MANAGE_INGESTION = "MANAGE_INGESTION"
EXECUTE_ENTITY = "EXECUTE_ENTITY"

NO_SOURCE_MESSAGE = "Couldn't find the ingestion source details for {urn}"
NO_EXECUTE_MESSAGE = "Doesn't have permissions to execute this Ingestion"
MODIFY_MESSAGES = {
    "create": "Doesn't have permissions to create this Ingestion source",
    "edit": "Doesn't have permissions to edit this Ingestion source",
    "delete": "Doesn't have permissions to delete this Ingestion source",
}

DATAHUB_VERSION_ENV = "GMS_DOUBLE_DATAHUB_VERSION"
DEFAULT_DATAHUB_VERSION = "v1.7.0"
# The first release whose ExecuteIngestionAuthValidator has PR #14253 (see module docstring).
FIRST_RELAXED_RELEASE = (1, 3, 0)


class ExecuteValidator(Enum):
    STRICT = "strict"
    RELAXED = "relaxed"


class Session(Protocol):
    """What the validators ask of the caller (auth.Principal)."""

    def allows(self, privilege: str, resource: str | None = None) -> bool: ...


def parse_version(text: str) -> tuple[int, ...]:
    """`v1.2.0`, `1.2.0.1`, `v1.3.0rc2` -> (1, 2, 0), (1, 2, 0, 1), (1, 3, 0)."""
    match = re.fullmatch(r"v?(\d+(?:\.\d+)*)\S*", text.strip())
    if match is None:
        raise ValueError(f"not a DataHub version: {text!r} (expected e.g. v1.7.0)")
    return tuple(int(p) for p in match.group(1).split("."))


def execute_validator_for(version: str) -> ExecuteValidator:
    """`strict` and `relaxed` name the behaviours directly; else a DataHub release."""
    lowered = version.strip().lower()
    if lowered in (ExecuteValidator.STRICT.value, ExecuteValidator.RELAXED.value):
        return ExecuteValidator(lowered)
    if parse_version(version) < FIRST_RELAXED_RELEASE:
        return ExecuteValidator.STRICT
    return ExecuteValidator.RELAXED


def datahub_version_from_env() -> str:
    return os.environ.get(DATAHUB_VERSION_ENV) or DEFAULT_DATAHUB_VERSION


def may_execute_source(session: Session, source_urn: str) -> bool:
    return session.allows(MANAGE_INGESTION) or session.allows(EXECUTE_ENTITY, source_urn)


class AuthItem(Protocol):
    """The fields of one proposed item the validators read (ingest._Item)."""

    urn: str
    aspect_name: str
    change_type: str
    value: dict[str, Any]

    @property
    def entity_name(self) -> str: ...


def violations(
    items: Iterable[AuthItem], session: Session | None, mode: ExecuteValidator
) -> list[tuple[AuthItem, str]]:
    """(item, message) per AUTHORIZATION exception, in item order."""
    if session is None:
        return []  # "Authentication details not found, ignoring..."
    out: list[tuple[AuthItem, str]] = []
    for item in items:
        if (
            item.entity_name == EXECUTION_REQUEST_ENTITY
            and item.aspect_name == EXECUTION_REQUEST_INPUT_ASPECT
            and item.change_type in EXECUTE_VALIDATOR_OPS
        ):
            source = item.value.get("source")
            source_urn = source.get("ingestionSource") if isinstance(source, dict) else None
            if not source_urn:
                if mode is ExecuteValidator.STRICT:
                    out.append((item, NO_SOURCE_MESSAGE.format(urn=item.urn)))
            elif not may_execute_source(session, str(source_urn)):
                out.append((item, NO_EXECUTE_MESSAGE))
        elif (
            item.entity_name == INGESTION_SOURCE_ENTITY
            and item.aspect_name == INGESTION_SOURCE_INFO_ASPECT
            and item.change_type in MODIFY_SOURCE_VALIDATOR_OPS
            and not session.allows(MANAGE_INGESTION)
        ):
            out.append((item, _modify_message(item.change_type)))
    return out


def _modify_message(change_type: str) -> str:
    if change_type in ("CREATE", "CREATE_ENTITY"):
        return MODIFY_MESSAGES["create"]
    if change_type == "DELETE":
        return MODIFY_MESSAGES["delete"]
    return MODIFY_MESSAGES["edit"]


EDIT_ENTITY = "EDIT_ENTITY"


class ApiSession(Session, Protocol):
    @property
    def actor_urn(self) -> str: ...

    @property
    def strict_policies(self) -> bool: ...


def api_write_denied(urns: Iterable[str], session: ApiSession) -> str | None:
    """The 403 message when REST API authorization refuses some of `urns`, else None."""
    if not session.strict_policies:
        return None
    denied = [u for u in dict.fromkeys(urns) if not session.allows(EDIT_ENTITY, u)]
    if not denied:
        return None
    return f"User {session.actor_urn} is unauthorized to modify entity: " + ", ".join(
        f"HttpStatus: 403 Urn: {u}" for u in denied
    )
