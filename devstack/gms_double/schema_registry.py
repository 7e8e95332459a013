"""GMS's internal schema registry (`SCHEMA_REGISTRY_TYPE: INTERNAL`), served under
`/schema-registry/api/`.

Taken from DataHub's source:

- ids: `metadata-events/mxe-utils-avro/.../SchemaIdOrdinal.java` (compile-time constants);
- which id is which version of which schema: `metadata-events/mxe-utils-avro/src/main/resources/
  schema-config.yaml` (MetadataChangeLog has six versions; version 6 is
  METADATA_CHANGE_LOG_TIMESERIES = id 19);
- topic <-> schema: `SchemaRegistryServiceImpl.buildTopicToSchemaNameMap` (both MCL topics map to
  the schema name "MetadataChangeLog");
- the HTTP answers: `metadata-service/schema-registry-servlet/.../SchemaRegistryController.java`.

Which id GMS puts in front of an MCL: GMS's producer uses Confluent's KafkaAvroSerializer
(application.yaml `kafka.serde.event.value.serializer`), which registers the value schema with
`POST /subjects/<topic>-value/versions` and frames the record with the id it gets back. The
controller's `register` answers `getSchemaIdForTopic(topic)`: the id of the highest version of
the topic's schema, i.e. 19 for both `MetadataChangeLog_Versioned_v1` and
`MetadataChangeLog_Timeseries_v1`. So every MCL the double produces carries id 19.

The schemas themselves come from the acryl-datahub wheel (`datahub/metadata/schemas/*.avsc`, the
same Pegasus-to-Avro renamed schemas as EventUtils.RENAMED_*_AVRO_SCHEMA). The wheel does not ship
the legacy "v1" resource schemas (ids 0-3, 5-7, 9-15) or the failed-MCP/MAE/upgrade schemas: for
those the double answers 404 where GMS would return the schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# SchemaIdOrdinal.java
SCHEMA_ID_ORDINALS: dict[str, int] = {
    "METADATA_CHANGE_PROPOSAL_V1": 0,
    "FAILED_METADATA_CHANGE_PROPOSAL_V1": 1,
    "METADATA_CHANGE_LOG_V1": 2,
    "METADATA_CHANGE_LOG_TIMESERIES_V1": 3,
    "PLATFORM_EVENT": 4,
    "METADATA_CHANGE_EVENT_V1": 5,
    "FAILED_METADATA_CHANGE_EVENT_V1": 6,
    "METADATA_AUDIT_EVENT_V1": 7,
    "DATAHUB_UPGRADE_HISTORY_EVENT": 8,
    "METADATA_CHANGE_PROPOSAL_V1_FIX": 9,
    "FAILED_METADATA_CHANGE_PROPOSAL_V1_FIX": 10,
    "METADATA_CHANGE_LOG_V1_FIX": 11,
    "METADATA_CHANGE_LOG_TIMESERIES_V1_FIX": 12,
    "METADATA_CHANGE_EVENT_V1_FIX": 13,
    "FAILED_METADATA_CHANGE_EVENT_V1_FIX": 14,
    "METADATA_AUDIT_EVENT_V1_FIX": 15,
    "METADATA_CHANGE_PROPOSAL": 16,
    "FAILED_METADATA_CHANGE_PROPOSAL": 17,
    "METADATA_CHANGE_LOG": 18,
    "METADATA_CHANGE_LOG_TIMESERIES": 19,
    "METADATA_CHANGE_EVENT": 20,
    "FAILED_METADATA_CHANGE_EVENT": 21,
    "METADATA_AUDIT_EVENT": 22,
}

# schema-config.yaml: schema name -> [(version, ordinal)], and its compatibility.
SCHEMA_VERSIONS: dict[str, list[tuple[int, str]]] = {
    "MetadataChangeProposal": [
        (1, "METADATA_CHANGE_PROPOSAL_V1"),
        (2, "METADATA_CHANGE_PROPOSAL_V1_FIX"),
        (3, "METADATA_CHANGE_PROPOSAL"),
    ],
    "FailedMetadataChangeProposal": [
        (1, "FAILED_METADATA_CHANGE_PROPOSAL_V1"),
        (2, "FAILED_METADATA_CHANGE_PROPOSAL_V1_FIX"),
        (3, "FAILED_METADATA_CHANGE_PROPOSAL"),
    ],
    "MetadataChangeLog": [
        (1, "METADATA_CHANGE_LOG_V1"),
        (2, "METADATA_CHANGE_LOG_TIMESERIES_V1"),
        (3, "METADATA_CHANGE_LOG_V1_FIX"),
        (4, "METADATA_CHANGE_LOG_TIMESERIES_V1_FIX"),
        (5, "METADATA_CHANGE_LOG"),
        (6, "METADATA_CHANGE_LOG_TIMESERIES"),
    ],
    "PlatformEvent": [(1, "PLATFORM_EVENT")],
    "MetadataChangeEvent": [
        (1, "METADATA_CHANGE_EVENT_V1"),
        (2, "METADATA_CHANGE_EVENT_V1_FIX"),
        (3, "METADATA_CHANGE_EVENT"),
    ],
    "FailedMetadataChangeEvent": [
        (1, "FAILED_METADATA_CHANGE_EVENT_V1"),
        (2, "FAILED_METADATA_CHANGE_EVENT_V1_FIX"),
        (3, "FAILED_METADATA_CHANGE_EVENT"),
    ],
    "MetadataAuditEvent": [
        (1, "METADATA_AUDIT_EVENT_V1"),
        (2, "METADATA_AUDIT_EVENT_V1_FIX"),
        (3, "METADATA_AUDIT_EVENT"),
    ],
    "DataHubUpgradeHistoryEvent": [(1, "DATAHUB_UPGRADE_HISTORY_EVENT")],
}
SCHEMA_COMPATIBILITY: dict[str, str] = {
    "MetadataChangeProposal": "NONE",
    "FailedMetadataChangeProposal": "NONE",
    "MetadataChangeLog": "NONE",
    "PlatformEvent": "BACKWARD",
    "MetadataChangeEvent": "NONE",
    "FailedMetadataChangeEvent": "NONE",
    "MetadataAuditEvent": "NONE",
    "DataHubUpgradeHistoryEvent": "BACKWARD",
}

# Default topic names (TopicConventionImpl / application.yaml kafka.topics) -> schema name,
# in SchemaRegistryServiceImpl.getAllTopics order (the timeseries MCL topic is not listed there).
VERSIONED_MCL_TOPIC = "MetadataChangeLog_Versioned_v1"
TIMESERIES_MCL_TOPIC = "MetadataChangeLog_Timeseries_v1"
TOPIC_SCHEMAS: dict[str, str] = {
    "MetadataChangeProposal_v1": "MetadataChangeProposal",
    "FailedMetadataChangeProposal_v1": "FailedMetadataChangeProposal",
    VERSIONED_MCL_TOPIC: "MetadataChangeLog",
    "PlatformEvent_v1": "PlatformEvent",
    "MetadataChangeEvent_v4": "MetadataChangeEvent",
    "FailedMetadataChangeEvent_v4": "FailedMetadataChangeEvent",
    "MetadataAuditEvent_v4": "MetadataAuditEvent",
    "DataHubUpgradeHistory_v1": "DataHubUpgradeHistoryEvent",
}

# Ordinals whose schema the wheel ships (EventSchemaConstants.SCHEMA_ID_TO_SCHEMA_MAP maps these
# to the current, renamed classes).
_WHEEL_AVSC: dict[str, str] = {
    "METADATA_CHANGE_PROPOSAL": "MetadataChangeProposal.avsc",
    "METADATA_CHANGE_LOG": "MetadataChangeLog.avsc",
    "METADATA_CHANGE_LOG_TIMESERIES": "MetadataChangeLog.avsc",
    "PLATFORM_EVENT": "PlatformEvent.avsc",
    "METADATA_CHANGE_EVENT": "MetadataChangeEvent.avsc",
}

MCL_SCHEMA_ID = SCHEMA_ID_ORDINALS["METADATA_CHANGE_LOG_TIMESERIES"]


@cache
def wheel_schema(file_name: str) -> dict[str, Any]:
    text = resources.files("datahub.metadata.schemas").joinpath(file_name).read_text("utf-8")
    loaded = json.loads(text)
    assert isinstance(loaded, dict)
    return loaded


def mcl_schema() -> dict[str, Any]:
    return wheel_schema("MetadataChangeLog.avsc")


def schema_string(schema: dict[str, Any]) -> str:
    # org.apache.avro.Schema.toString(): compact JSON.
    return json.dumps(schema, separators=(",", ":"))


def topic_of_subject(subject: str) -> str:
    # `subject.replaceFirst("-value", "")` in every controller method.
    return subject.replace("-value", "", 1)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-able, a raw string (text), or None (empty body)
    raw_text: bool = False


class InternalSchemaRegistry:
    """SchemaRegistryServiceImpl + SchemaRegistryController, read-only like the original.

    The MCL topic names follow GMS's TopicConvention, which METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME
    and METADATA_CHANGE_LOG_TIMESERIES_TOPIC_NAME rename; the registry maps whatever names are
    configured."""

    def __init__(
        self,
        versioned_topic: str = VERSIONED_MCL_TOPIC,
        timeseries_topic: str = TIMESERIES_MCL_TOPIC,
    ) -> None:
        renamed = {VERSIONED_MCL_TOPIC: versioned_topic}
        self._listed = {renamed.get(t, t): name for t, name in TOPIC_SCHEMAS.items()}
        self._all = {**self._listed, timeseries_topic: "MetadataChangeLog"}

    # -- service -----------------------------------------------------------------------------

    def _schema_name(self, topic: str) -> str | None:
        return self._all.get(topic)

    @staticmethod
    def _versions(schema_name: str) -> list[int]:
        return sorted(v for v, _ in SCHEMA_VERSIONS[schema_name])

    @staticmethod
    def _id_for(schema_name: str, version: int) -> int | None:
        for v, ordinal in SCHEMA_VERSIONS[schema_name]:
            if v == version:
                return SCHEMA_ID_ORDINALS[ordinal]
        return None

    @staticmethod
    def _schema_for(schema_name: str, version: int) -> dict[str, Any] | None:
        for v, ordinal in SCHEMA_VERSIONS[schema_name]:
            if v == version and ordinal in _WHEEL_AVSC:
                return wheel_schema(_WHEEL_AVSC[ordinal])
        return None

    def schema_id_for_topic(self, topic: str) -> int | None:
        """getSchemaIdForTopic: the id of the highest version of the topic's schema."""
        name = self._schema_name(topic)
        if name is None:
            return None
        return self._id_for(name, max(self._versions(name)))

    def latest_version(self, topic: str) -> int | None:
        name = self._schema_name(topic)
        return max(self._versions(name)) if name else None

    def schema_for_id(self, schema_id: int) -> tuple[str, dict[str, Any] | None] | None:
        """getSchemaForId + getTopicNameById: (topic, schema or None if the wheel lacks it)."""
        for name, versions in SCHEMA_VERSIONS.items():
            for version, ordinal in versions:
                if SCHEMA_ID_ORDINALS[ordinal] == schema_id:
                    topic = next(t for t, n in self._listed.items() if n == name)
                    return topic, self._schema_for(name, version)
        return None

    # -- controller --------------------------------------------------------------------------

    def get_schema_by_id(self, schema_id: int, fetch_max_id: bool) -> Answer:
        found = self.schema_for_id(schema_id)
        if found is None or found[1] is None:
            return Answer(404, None)
        body: dict[str, Any] = {"schema": schema_string(found[1]), "schemaType": "AVRO"}
        if fetch_max_id:
            body["maxId"] = schema_id
        return Answer(200, body)

    def get_schema_only(self, schema_id: int) -> Answer:
        found = self.schema_for_id(schema_id)
        if found is None or found[1] is None:
            return Answer(404, None)
        return Answer(200, schema_string(found[1]), raw_text=True)

    def list_subjects(self) -> Answer:
        return Answer(200, [f"{topic}-value" for topic in self._listed])

    def list_versions(self, subject: str) -> Answer:
        name = self._schema_name(topic_of_subject(subject))
        if name is None:
            return Answer(404, None)
        return Answer(200, self._versions(name))

    def get_schema_by_version(self, subject: str, version: str) -> Answer:
        topic = topic_of_subject(subject)
        name = self._schema_name(topic)
        if version == "latest":
            if name is None:
                return Answer(404, None)
            number = max(self._versions(name))
        else:
            try:
                number = int(version)
            except ValueError:
                return Answer(400, None)
            if name is None or number not in self._versions(name):
                return Answer(404, None)
        schema = self._schema_for(name, number)
        if schema is None:
            return Answer(404, None)
        # The controller sets `id` to getSchemaIdForTopic(topic) (the latest id) for every version.
        return Answer(
            200,
            {
                "subject": subject,
                "version": number,
                "id": self.schema_id_for_topic(topic),
                "schema": schema_string(schema),
            },
        )

    def register(self, subject: str) -> Answer:
        schema_id = self.schema_id_for_topic(topic_of_subject(subject))
        if schema_id is None:
            return Answer(404, None)
        return Answer(200, {"id": schema_id})

    def subject_config(self, subject: str) -> Answer:
        name = self._schema_name(topic_of_subject(subject))
        return Answer(200, {"compatibilityLevel": SCHEMA_COMPATIBILITY.get(name or "", "NONE")})

    @staticmethod
    def top_level_config() -> Answer:
        return Answer(200, {"compatibilityLevel": "BACKWARD"})

    @staticmethod
    def schema_types() -> Answer:
        return Answer(200, ["AVRO"])
