"""A DataJob's own ARN as a run's target, and the two rules it must pass.

`DATAHUB_INGESTION_JOB_ARN_PROPERTY_URN` names a structured property on DataJobs holding a
Lambda or Step Functions ARN. Editing a structured property is an ordinary metadata right, so
a value there is invoked only if

1. it matches the mapping's `jobTargets` allow-list (ARN patterns per group; no `jobTargets`,
   nothing is invoked), and
2. the job is tied to the dataset the run is for: the DataJob's `dataJobInputOutput` aspect
   lists the dataset among its outputs (`outputDatasets`, or `outputDatasetEdges[].destinationUrn`,
   DataHub's model for "this job writes that dataset":
   metadata-models/src/main/pegasus/com/linkedin/datajob/DataJobInputOutput.pdl).

A job without the property falls back to the dataset's mapping as before. Both services use
this: the api answers 422, the consumer ends the run FAILURE. Messages never name the ARN.
"""

from __future__ import annotations

from dataclasses import dataclass

from datahub.metadata.schema_classes import DataJobInputOutputClass

from lambda_trigger.datahub import DataHubClient
from lambda_trigger.mapping import Mapping, Resolution


@dataclass(frozen=True)
class JobRefused:
    message: str


def job_output_datasets(datahub: DataHubClient, job_urn: str) -> set[str]:
    """May raise DataHubUnavailable, like every DataHubClient read."""
    aspect = datahub._get(job_urn, DataJobInputOutputClass)
    if aspect is None:
        return set()
    outputs = set(aspect.outputDatasets or [])
    outputs.update(edge.destinationUrn for edge in aspect.outputDatasetEdges or [])
    return outputs


def resolve_job_target(
    datahub: DataHubClient,
    mapping: Mapping,
    job_urn: str,
    dataset_urn: str,
    property_urn: str,
) -> Resolution | JobRefused | None:
    """None: the job has no ARN, the mapping decides. May raise DataHubUnavailable."""
    values = [str(v) for v in datahub.structured_property(job_urn, property_urn)]
    if not values:
        return None
    resolution = next((r for r in map(mapping.job_target, values) if r is not None), None)
    if resolution is None:
        return JobRefused(
            f"the ARN on job {job_urn} is not allowed by the mapping's jobTargets allow-list"
        )
    if dataset_urn not in job_output_datasets(datahub, job_urn):
        return JobRefused(
            f"job {job_urn} does not list dataset {dataset_urn} among its outputs "
            "(dataJobInputOutput)"
        )
    return resolution
