"""GMS's entity registry, as the double sees it: taken from the acryl-datahub wheel, not typed in.

GMS builds its registry from `metadata-models/src/main/resources/entity-registry.yml` plus the
PDL models. The wheel ships the same information generated from those files:
`schema_classes.ENTITY_TYPE_TO_ASPECT_NAMES` ("sourced verbatim from entity-registry.yml"),
`KEY_ASPECTS`, `ASPECT_NAME_MAP` (one class per aspect, with `ASPECT_TYPE` "timeseries" for
timeseries aspects) and the typed URN classes (`datahub.metadata.urns`) that turn a URN into its
key aspect the way GMS's `EntityKeyUtils.convertUrnToEntityKey` does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from datahub.emitter.serialization_helper import post_json_transform, pre_json_transform
from datahub.metadata import schema_classes as _sc
from datahub.metadata.urns import Urn

from devstack.gms_double.errors import (
    GmsIllegalArgument,
    GmsUnsupportedOperation,
    GmsValidationError,
)
from devstack.gms_double.store import copy_json

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class EntitySpec:
    name: str
    key_aspect: str
    # All aspect names including the key aspect (EntitySpec.getAspectSpecMap()).
    aspects: frozenset[str]


@cache
def _entities() -> dict[str, EntitySpec]:
    specs: dict[str, EntitySpec] = {}
    for entity, key_cls in _sc.KEY_ASPECTS.items():
        names = frozenset([key_cls.ASPECT_NAME, *_sc.ENTITY_TYPE_TO_ASPECT_NAMES.get(entity, [])])
        specs[entity] = EntitySpec(entity, key_cls.ASPECT_NAME, names)
    return specs


@cache
def _entities_lower() -> dict[str, EntitySpec]:
    # ConfigEntityRegistry keys entity specs by lower-cased name, and ValidationApiUtils.validateMCP
    # compares the MCP's entityType with the URN's equalsIgnoreCase: lookups are case-insensitive.
    return {name.lower(): spec for name, spec in _entities().items()}


def entity_spec(entity_type: str) -> EntitySpec | None:
    return _entities_lower().get(entity_type.lower())


def require_entity(entity_type: str) -> EntitySpec:
    """ValidationApiUtils.validateEntity: an unknown entity is a ValidationException."""
    spec = entity_spec(entity_type)
    if spec is None:
        raise GmsValidationError(f"Unknown entity: {entity_type}")
    return spec


def require_entity_for_path(entity_name: str) -> EntitySpec:
    # EntityRegistry.getEntitySpec (used by the OpenAPI controllers on the path's entityName)
    # throws IllegalArgumentException, which GlobalControllerExceptionHandler turns into a 400.
    spec = entity_spec(entity_name)
    if spec is None:
        raise GmsIllegalArgument(f"Failed to find entity with name {entity_name} in EntityRegistry")
    return spec


def aspect_in_entity(spec: EntitySpec, aspect_name: str) -> str | None:
    """EntitySpec.getAspectSpec: exact (case-sensitive) name; None when the entity lacks it."""
    return aspect_name if aspect_name in spec.aspects else None


def aspect_in_entity_ignore_case(spec: EntitySpec, aspect_name: str) -> str | None:
    # RequestInputUtil.lookupAspectSpec (OpenAPI) matches aspect names case-insensitively and
    # the controller then uses the canonical name (aspectSpec.getName()).
    for name in spec.aspects:
        if name.lower() == aspect_name.lower():
            return name
    return None


def require_aspect(spec: EntitySpec, aspect_name: str | None) -> str:
    """ValidationApiUtils.validateAspect."""
    if not aspect_name:
        raise GmsUnsupportedOperation("Aspect name is required for create and update operations")
    found = aspect_in_entity(spec, aspect_name)
    if found is None:
        raise GmsValidationError(f"Unknown aspect {aspect_name} for entity {spec.name}")
    return found


def aspect_class(aspect_name: str) -> Any:
    return _sc.ASPECT_NAME_MAP.get(aspect_name)


def is_timeseries(aspect_name: str) -> bool:
    # AspectSpec.isTimeseries() comes from @Aspect(type="timeseries"); the wheel mirrors it as
    # ASPECT_TYPE == "timeseries" (the same flag the SDK's TIMESERIES_ASPECT_MAP is built from).
    cls = aspect_class(aspect_name)
    return cls is not None and getattr(cls, "ASPECT_TYPE", "default") == "timeseries"


def pegasus_class_name(aspect_name: str) -> str:
    """The Pegasus FQCN GMS uses as the union member of VersionedAspect.aspect.

    The wheel's Avro names are the Pegasus names with `.pegasus2avro` inserted (EventUtils'
    renaming); DataHubGraph.get_aspect strips it again to find the member, so strip it here.
    """
    cls = aspect_class(aspect_name)
    if cls is None:
        raise KeyError(aspect_name)
    return str(cls.RECORD_SCHEMA.fullname).replace(".pegasus2avro", "")


_LINEAGE_ANNOTATION = re.compile(r'"isLineage":\s*true')


@cache
def emits_change_log_when_unchanged(aspect_name: str) -> bool:
    """EntityServiceImpl.shouldAspectEmitChangeLog: aspects with a lineage @Relationship always
    produce an MCL (as RESTATE) even when rewritten unchanged. The wheel keeps the @Relationship
    annotations in each aspect's Avro schema."""
    cls = aspect_class(aspect_name)
    if cls is None:
        return False
    return bool(_LINEAGE_ANNOTATION.search(json.dumps(cls.RECORD_SCHEMA.to_json())))


# A write parses its URN several times (proposal checks, key aspect, default aspects): the
# parsed URNs and key aspects of the latest URNs are kept (Urn objects are not changed by anyone).
_URN_CACHE_SIZE = 4096


@lru_cache(maxsize=_URN_CACHE_SIZE)
def parse_urn(urn: str) -> Any:
    """Urn.createFromString: a malformed URN fails before any aspect work. GMS answers 400
    (IllegalArgumentException / InvalidUrnException); the message text is the double's own."""
    try:
        return Urn.from_string(urn)
    except Exception as exc:
        raise GmsIllegalArgument(f"Invalid urn {urn}: {exc}") from exc


def key_aspect_of(urn: str) -> tuple[str, dict[str, Any]]:
    """EntityApiUtils.buildKeyAspect: the key aspect's name and Pegasus JSON for a URN."""
    name, value = _key_aspect(urn)
    return name, copy_json(value)  # the caller may keep or change its copy


@lru_cache(maxsize=_URN_CACHE_SIZE)
def _key_aspect(urn: str) -> tuple[str, dict[str, Any]]:
    parsed = parse_urn(urn)
    spec = require_entity(parsed.entity_type)
    if not hasattr(parsed, "to_key_aspect"):
        raise GmsValidationError(
            f"Invalid format for aspect: {spec.name}\n Cause: no key for {urn}"
        )
    return spec.key_aspect, to_pegasus_json(parsed.to_key_aspect())


def to_pegasus_json(aspect: Any) -> dict[str, Any]:
    """The aspect as GMS (Pegasus) serialises it: what the SDK sends (`pre_json_transform`)."""
    value = pre_json_transform(aspect.to_obj())
    assert isinstance(value, dict)
    return value


def validate_aspect_value(spec: EntitySpec, aspect_name: str, value: Any) -> None:
    """ValidationApiUtils.validateRecordTemplate / validateOrThrow: the aspect must deserialize
    into its model and validate against its schema, else a ValidationException naming the class."""
    cls = aspect_class(aspect_name)
    if cls is None:
        # A registry aspect without generated class: accepted as-is (GMS would know its model).
        return
    if not isinstance(value, dict):
        raise GmsValidationError(
            f"Failed to validate record with class {pegasus_class_name(aspect_name)}: "
            f"expected a JSON object, got {type(value).__name__}"
        )
    try:
        obj = cls.from_obj(post_json_transform(value))
        ok = bool(obj.validate())
    except Exception as exc:
        raise GmsValidationError(
            f"Failed to validate record with class {pegasus_class_name(aspect_name)}: {exc}"
        ) from exc
    if not ok:
        raise GmsValidationError(
            f"Invalid format for aspect: {spec.name}\n Cause: {aspect_name} does not match its schema"
        )


def entity_type_names() -> list[str]:
    return sorted(_entities())
