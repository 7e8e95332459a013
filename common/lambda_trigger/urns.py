"""URN checks for the few entity types this project touches.

DataHub URNs are `urn:li:<entityType>:<id>`; a dataset id is the tuple
`(urn:li:dataPlatform:<platform>,<name>,<env>)`. We validate strictly here because the
dataset URN arrives from a browser or a programmatic caller and is used as a mapping key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambda_trigger.sanitize import describe_char, hostile_char

EXECUTION_REQUEST_PREFIX = "urn:li:dataHubExecutionRequest:"

# Platform names are simple identifiers; the dataset name may contain almost anything
# except the tuple separators' ambiguity at the ends, which the greedy match handles.
_DATASET_RE = re.compile(
    r"^urn:li:dataset:\(urn:li:dataPlatform:(?P<platform>[A-Za-z0-9_.\-]+),"
    r"(?P<name>.+),(?P<env>[A-Za-z0-9_]+)\)$"
)
_DATA_FLOW_RE = re.compile(
    r"^urn:li:dataFlow:\((?P<orchestrator>[^,()]+),(?P<flow>.+),(?P<cluster>[^,()]+)\)$"
)
_DATA_JOB_RE = re.compile(r"^urn:li:dataJob:\((?P<flow>urn:li:dataFlow:\(.+\)),(?P<job>[^()]+)\)$")
_ENTITY_TYPE_RE = re.compile(r"^urn:li:(?P<type>[A-Za-z]+):")
MAX_URN_LENGTH = 2000  # GMS rejects longer keys; fail early with a clear message instead.


class InvalidUrnError(ValueError):
    """A URN that is malformed or of the wrong entity type; the message says which."""


@dataclass(frozen=True)
class DatasetUrn:
    urn: str
    platform: str
    name: str
    env: str

    def __str__(self) -> str:
        return self.urn


def entity_type_of(urn: str) -> str | None:
    match = _ENTITY_TYPE_RE.match(urn)
    return match.group("type") if match else None


def _check_common(urn: object, field: str) -> str:
    if not isinstance(urn, str) or not urn:
        raise InvalidUrnError(f"{field} must be a non-empty string")
    if len(urn) > MAX_URN_LENGTH:
        raise InvalidUrnError(f"{field} is longer than {MAX_URN_LENGTH} characters")
    # Control, line-separator and bidi characters forge log lines and hide what a reader
    # sees; a lone surrogate cannot even be URL-encoded for GMS. Named, never echoed.
    bad = hostile_char(urn)
    if bad is not None:
        raise InvalidUrnError(f"{field} must not contain {describe_char(bad)}")
    if urn != urn.strip():
        raise InvalidUrnError(f"{field} must not have whitespace at its ends")
    return urn


def parse_dataset_urn(urn: object, field: str = "datasetUrn") -> DatasetUrn:
    text = _check_common(urn, field)
    match = _DATASET_RE.match(text)
    if match is None:
        kind = entity_type_of(text)
        if kind is not None and kind != "dataset":
            raise InvalidUrnError(f"{field} must be a dataset URN, got a {kind} URN: {text}")
        raise InvalidUrnError(
            f"{field} is not a valid dataset URN "
            f"(expected urn:li:dataset:(urn:li:dataPlatform:<platform>,<name>,<env>)): {text}"
        )
    return DatasetUrn(text, match.group("platform"), match.group("name"), match.group("env"))


def validate_data_job_urn(urn: object, field: str = "jobUrn") -> str:
    text = _check_common(urn, field)
    match = _DATA_JOB_RE.match(text)
    if match is None or _DATA_FLOW_RE.match(match.group("flow")) is None:
        kind = entity_type_of(text)
        if kind is not None and kind != "dataJob":
            raise InvalidUrnError(f"{field} must be a dataJob URN, got a {kind} URN: {text}")
        raise InvalidUrnError(
            f"{field} is not a valid dataJob URN "
            f"(expected urn:li:dataJob:(urn:li:dataFlow:(<orchestrator>,<flow>,<cluster>),<job>)): {text}"
        )
    return text


def execution_request_urn(run_id: str) -> str:
    return f"{EXECUTION_REQUEST_PREFIX}{run_id}"


def run_id_of(execution_request_urn_: str) -> str:
    if not execution_request_urn_.startswith(EXECUTION_REQUEST_PREFIX):
        raise InvalidUrnError(f"not an execution request URN: {execution_request_urn_}")
    return execution_request_urn_[len(EXECUTION_REQUEST_PREFIX) :]
