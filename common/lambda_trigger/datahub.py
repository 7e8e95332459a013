"""The few DataHub reads and writes both services make, over the acryl-datahub SDK.

Everything here raises one of two exceptions the callers map to their own behaviour
(the api to 503/4xx, the consumer to retries and statuses):
- `DataHubUnavailable`: DataHub did not answer usefully (network, 5xx, 401 for our token);
- `PreconditionFailed`: a conditional write was refused (the aspect changed under us).
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import requests
from datahub.configuration.common import GraphError, OperationalError
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.ingestion.graph.client import DataHubGraph
from datahub.ingestion.graph.config import DatahubClientConfig
from datahub.metadata.schema_classes import (
    DatasetKeyClass,
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
    GlobalTagsClass,
    StatusClass,
    StructuredPropertiesClass,
    _Aspect,
)

from lambda_trigger.contract import RunRequest, RunResult
from lambda_trigger.settings import DataHubSettings
from lambda_trigger.urns import execution_request_urn

log = logging.getLogger(__name__)
A = TypeVar("A", bound=_Aspect)

# GMS answers a failed If-Version-Match / If-None-Match with 412 (ConditionalWriteValidator).
_PRECONDITION_STATUS = 412


class DataHubUnavailable(RuntimeError):
    """DataHub could not be reached or did not answer usefully."""


class PreconditionFailed(RuntimeError):
    """A conditional write was rejected by GMS."""


class WriteRejected(RuntimeError):
    """GMS refused a write for another 4xx reason (validation, authorisation)."""


def _error_status(info: dict[str, Any]) -> int | None:
    status = info.get("status")
    return int(status) if isinstance(status, int | str) and str(status).isdigit() else None


class DataHubClient:
    def __init__(self, settings: DataHubSettings, *, retries: int = 2) -> None:
        self.settings = settings
        self.graph = DataHubGraph(
            DatahubClientConfig(
                server=settings.gms_url,
                token=settings.gms_token,
                timeout_sec=settings.timeout_seconds,
                retry_max_times=retries,
            )
        )

    def close(self) -> None:
        self.graph.close()

    # --- reads ------------------------------------------------------------------------

    def _get(self, urn: str, aspect: type[A]) -> A | None:
        try:
            return self.graph.get_aspect(urn, aspect)
        except (requests.RequestException, GraphError) as exc:
            raise DataHubUnavailable(f"reading {aspect.ASPECT_NAME} of {urn}: {exc}") from exc

    def dataset_state(self, urn: str) -> str:
        """`present`, `missing` or `removed` (soft-deleted: GMS still has it, the UI hides it)."""
        if self._get(urn, DatasetKeyClass) is None:
            return "missing"
        status = self._get(urn, StatusClass)
        return "removed" if status is not None and status.removed else "present"

    def tags(self, urn: str) -> list[str]:
        aspect = self._get(urn, GlobalTagsClass)
        return [t.tag for t in aspect.tags] if aspect else []

    def structured_property(self, urn: str, property_urn: str) -> list[str | float]:
        aspect = self._get(urn, StructuredPropertiesClass)
        if aspect is None:
            return []
        for prop in aspect.properties:
            if prop.propertyUrn == property_urn:
                return list(prop.values)
        return []

    def read_request(self, run_id: str) -> ExecutionRequestInputClass | None:
        return self._get(execution_request_urn(run_id), ExecutionRequestInputClass)

    def read_result(self, run_id: str) -> ExecutionRequestResultClass | None:
        return self._get(execution_request_urn(run_id), ExecutionRequestResultClass)

    def reachable(self) -> bool:
        try:
            response = self.graph._session.get(
                f"{self.settings.gms_url.rstrip('/')}/config", timeout=5
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    # --- writes -----------------------------------------------------------------------

    def _emit(self, mcp: MetadataChangeProposalWrapper) -> None:
        try:
            self.graph.emit_mcp(mcp)
        except OperationalError as exc:
            status = _error_status(exc.info)
            if status == _PRECONDITION_STATUS:
                raise PreconditionFailed(exc.message) from exc
            if status is not None and 400 <= status < 500 and status != 401:
                raise WriteRejected(f"{exc.message} (HTTP {status})") from exc
            raise DataHubUnavailable(exc.message) from exc
        except requests.RequestException as exc:
            raise DataHubUnavailable(str(exc)) from exc

    def write_request(self, request: RunRequest) -> None:
        """Create the execution request. `If-Version-Match: -1` (aspect absent) turns a run id
        collision into an error instead of silently overwriting someone else's run."""
        self._emit(
            MetadataChangeProposalWrapper(
                entityUrn=request.urn,
                aspect=request.to_aspect(),
                headers={"If-Version-Match": "-1"},
            )
        )

    def claim(self, run_id: str, result: RunResult) -> bool:
        """Write the first (RUNNING) result only if no result exists yet.

        Returns False when another writer got there first: the run was already started,
        so it must not be invoked again (this is what makes redelivery safe)."""
        try:
            self._emit(
                MetadataChangeProposalWrapper(
                    entityUrn=execution_request_urn(run_id),
                    aspect=result.to_aspect(),
                    headers={"If-Version-Match": "-1"},
                )
            )
        except PreconditionFailed:
            return False
        return True

    def write_result(self, run_id: str, result: RunResult) -> None:
        self._emit(
            MetadataChangeProposalWrapper(
                entityUrn=execution_request_urn(run_id), aspect=result.to_aspect()
            )
        )
