"""Step 4: which job runs this request.

Order: a Step Functions / Lambda ARN stored on the request's DataJob (structured property
named by DATAHUB_INGESTION_JOB_ARN_PROPERTY_URN), allowed only when it matches the mapping's
`jobTargets` allow-list and the job outputs the dataset (lambda_trigger.job_targets); then the
mapping (exact > tag > pattern > default). The dataset must exist in DataHub and not be
soft-deleted: the api checks this too, but programmatic requests never pass through the api.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambda_trigger.contract import RunRequest
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.job_targets import JobRefused, resolve_job_target
from lambda_trigger.mapping import JOB_TARGET_LABEL, Mapping, Resolution
from lambda_trigger.urns import parse_dataset_urn

__all__ = ["JOB_TARGET_LABEL", "NoTarget", "resolve_target"]


@dataclass(frozen=True)
class NoTarget:
    """The run cannot start; `message` goes into the FAILURE report."""

    message: str


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
        job = resolve_job_target(
            datahub, mapping, request.job_urn, request.dataset_urn, job_arn_property_urn
        )
        if isinstance(job, JobRefused):
            return NoTarget(job.message)
        if job is not None:
            return job
    tags = datahub.tags(request.dataset_urn) if mapping.needs_tags else []
    resolution = mapping.resolve(parse_dataset_urn(request.dataset_urn), tags)
    if resolution is None:
        return NoTarget(f"no ingestion job is mapped to dataset {request.dataset_urn}")
    return resolution
