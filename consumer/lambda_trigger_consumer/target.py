"""Step 4: which job runs this request.

Order: a Step Functions / Lambda ARN stored on the request's DataJob (structured property
named by DATAHUB_INGESTION_JOB_ARN_PROPERTY_URN), then the mapping (exact > tag > pattern >
default). The dataset must exist in DataHub and not be soft-deleted: the api checks this too,
but programmatic requests never pass through the api.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambda_trigger.contract import RunRequest
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.mapping import LambdaTarget, Mapping, Resolution, StepFunctionsTarget
from lambda_trigger.urns import parse_dataset_urn

_SFN_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$")
_LAMBDA_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$"
)
JOB_TARGET_LABEL = "Job's own pipeline"


@dataclass(frozen=True)
class NoTarget:
    """The run cannot start; `message` goes into the FAILURE report."""

    message: str


def _job_target(value: str) -> LambdaTarget | StepFunctionsTarget | None:
    if _SFN_ARN.match(value):
        return StepFunctionsTarget(
            type="stepfunctions", state_machine_arn=value, label=JOB_TARGET_LABEL
        )
    if _LAMBDA_ARN.match(value):
        return LambdaTarget(function=value, label=JOB_TARGET_LABEL)
    return None


def resolve_target(
    request: RunRequest,
    mapping: Mapping,
    datahub: DataHubClient,
    job_arn_property_urn: str | None,
) -> Resolution | NoTarget:
    """May raise DataHubUnavailable: the caller retries, the run has not been claimed yet."""
    state = datahub.dataset_state(request.dataset_urn)
    if state != "present":
        word = "does not exist" if state == "missing" else "was deleted"
        return NoTarget(f"dataset {request.dataset_urn} {word} in DataHub")
    if request.job_urn and job_arn_property_urn:
        for value in datahub.structured_property(request.job_urn, job_arn_property_urn):
            target = _job_target(str(value))
            if target is not None:
                return Resolution(target, "job-property", f"job {request.job_urn}")
    tags = datahub.tags(request.dataset_urn) if mapping.needs_tags else []
    resolution = mapping.resolve(parse_dataset_urn(request.dataset_urn), tags)
    if resolution is None:
        return NoTarget(f"no ingestion job is mapped to dataset {request.dataset_urn}")
    return resolution
