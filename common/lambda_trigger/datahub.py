"""The few DataHub reads and writes both services make, over the acryl-datahub SDK.

Everything here raises one of these exceptions the callers map to their own behaviour
(the api to 503/4xx, the consumer to retries and statuses):
- `DataHubUnavailable`: DataHub did not answer usefully (network, 5xx, 401 for our token);
- `PreconditionFailed`: a conditional write was refused (the aspect changed under us);
- `WriteRejected`: any other 4xx for a write.

Every write here is safe to retry. The SDK itself retries a POST on 5xx and read errors, so a
write may have landed although its answer was lost; the retry then meets its own earlier write
(a failed `If-Version-Match`, or GMS's immutable-state check). Each write therefore reads the
aspect back on a refusal and tells "my write landed" from "someone else's write is there".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from datahub.configuration.common import GraphError, OperationalError
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.ingestion.graph.client import DataHubGraph
from datahub.ingestion.graph.config import DatahubClientConfig
from datahub.metadata.schema_classes import (
    AuditStampClass,
    DatasetKeyClass,
    ExecutionRequestInputClass,
    ExecutionRequestResultClass,
    ExecutionRequestSignalClass,
    GlobalTagsClass,
    StatusClass,
    StructuredPropertiesClass,
    UpstreamLineageClass,
    _Aspect,
)

from lambda_trigger.contract import (
    CLAIM_KEY,
    KILL_SIGNAL,
    DataHubStatus,
    RunRequest,
    RunResult,
    is_final,
    now_ms,
    report_details,
)
from lambda_trigger.settings import DataHubSettings
from lambda_trigger.urns import execution_request_urn, run_id_of

log = logging.getLogger(__name__)
A = TypeVar("A", bound=_Aspect)

# A failed If-Version-Match is a ValidationException in GMS (ConditionalWriteValidator): the
# OpenAPI path answers 412, but Rest.li's AspectResource.ingestProposal catches every
# ValidationException as 422 (the SDK's default path). GMS's immutable-state check
# (ExecutionRequestResultValidator) is a 422 on Rest.li too. Both mean "your write was refused
# because of what is stored", and every caller here reads the aspect back to learn what is.
_REFUSED_STATUSES = frozenset({412, 422})
# The run id warm() reads: never minted (run ids are lt-<time>-<random>, runid.py).
WARMUP_RUN_ID = "lambda-trigger-warmup"


# The most datasets DataHubClient remembers as present (present_for_seconds).
PRESENT_CACHE_SIZE = 10_000


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
    def __init__(
        self,
        settings: DataHubSettings,
        *,
        retries: int = 2,
        present_for_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`present_for_seconds`: how long a "present" answer of dataset_state is taken again
        without asking GMS (0: never). The consumer checks a run's dataset when it takes the
        run up and again right before the invoke, two reads of GMS each; in a burst of 2,000
        runs over 200 datasets that was 8,000 reads, most of them answering what was read a
        moment before (benchmarks/burst.py). Only "present" is kept: a dataset that is missing
        or removed is asked about again, so it runs as soon as it exists."""
        self.settings = settings
        self._present_for = present_for_seconds
        self._clock = clock
        self._present: dict[str, float] = {}  # dataset urn -> when GMS said "present"
        self._present_lock = threading.Lock()
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
        if self._present_for > 0:
            now = self._clock()
            with self._present_lock:
                seen = self._present.get(urn)
                if seen is not None and now - seen < self._present_for:
                    return "present"
        if self._get(urn, DatasetKeyClass) is None:
            return "missing"
        status = self._get(urn, StatusClass)
        state = "removed" if status is not None and status.removed else "present"
        if self._present_for > 0:
            with self._present_lock:
                if state == "present":
                    if len(self._present) >= PRESENT_CACHE_SIZE:
                        self._present.clear()  # bounded: a new start costs a read per dataset
                    self._present[urn] = now
                else:
                    self._present.pop(urn, None)
        return state

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

    def upstreams(self, urn: str) -> list[str] | None:
        """The dataset's `upstreamLineage` upstream datasets (None: no such aspect)."""
        lineage = self._get(urn, UpstreamLineageClass)
        return None if lineage is None else [u.dataset for u in lineage.upstreams]

    def read_request(self, run_id: str) -> ExecutionRequestInputClass | None:
        return self._get(execution_request_urn(run_id), ExecutionRequestInputClass)

    def read_result(self, run_id: str) -> ExecutionRequestResultClass | None:
        return self._get(execution_request_urn(run_id), ExecutionRequestResultClass)

    def warm(self) -> None:
        """Before the first run (issue 25): open the connection pool and have the SDK fetch
        GMS's /config now (it does so lazily, on its first write, to choose between Rest.li
        and OpenAPI ingestion), then one read through the SDK's read path (an execution
        request that does not exist: GMS answers 404, the SDK None). Raises
        DataHubUnavailable while GMS does not answer."""
        try:
            self.graph.test_connection()
        except Exception as exc:  # requests' errors, or ConfigurationError for a bad answer
            raise DataHubUnavailable(f"GMS /config: {exc}") from exc
        self.read_result(WARMUP_RUN_ID)

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
        self._emit_all([mcp])

    def _emit_all(self, mcps: list[MetadataChangeProposalWrapper]) -> None:
        """One proposal: the SDK's single write; more: one batch call (OpenAPI v3's list POST,
        or Rest.li's ingestProposalBatch), which GMS runs as one batch: a refusal of any item
        (a failed precondition, a validator) fails the whole call and writes none of it
        (EntityServiceImpl.ingestAspectsToLocalDB throws for an API request)."""
        try:
            if len(mcps) == 1:
                self.graph.emit_mcp(mcps[0])
            else:
                self.graph.emit_mcps(mcps)
        except OperationalError as exc:
            status = _error_status(exc.info)
            if "subType=AUTHORIZATION" in str(exc.message):
                # A write validator's auth exception (e.g. ExecuteIngestionAuthValidator): Rest.li
                # renders it 422 like a failed precondition, but it is a refusal.
                raise WriteRejected(f"{exc.message} (HTTP {status})") from exc
            if status in _REFUSED_STATUSES:
                raise PreconditionFailed(f"{exc.message} (HTTP {status})") from exc
            if status is not None and 400 <= status < 500 and status != 401:
                raise WriteRejected(f"{exc.message} (HTTP {status})") from exc
            raise DataHubUnavailable(exc.message) from exc
        except requests.RequestException as exc:
            raise DataHubUnavailable(str(exc)) from exc

    def write_request(self, request: RunRequest) -> None:
        """Create the execution request. `If-Version-Match: -1` (aspect absent) turns a run id
        collision into an error instead of silently overwriting someone else's run; a refusal
        whose stored request is this very one is our own earlier attempt, which landed."""
        aspect = request.to_aspect()
        try:
            self._emit(
                MetadataChangeProposalWrapper(
                    entityUrn=request.urn, aspect=aspect, headers={"If-Version-Match": "-1"}
                )
            )
        except PreconditionFailed:
            stored = self._get(request.urn, ExecutionRequestInputClass)
            if stored is not None and stored.to_obj() == aspect.to_obj():
                log.info("run %s: request already stored (a retried write)", request.run_id)
                return
            raise

    def claim(self, run_id: str, result: RunResult) -> ClaimOutcome:
        """Write the first result only if none exists yet (`If-Version-Match: -1`).

        `result.details["claim"]` is a nonce. When the write is refused, the stored result is
        read back: our nonce means our own earlier attempt landed (the SDK retried a write whose
        answer was lost), so the claim is ours; anything else belongs to another writer, and
        the run must not be started again."""
        nonce = result.details.get(CLAIM_KEY)
        try:
            self._emit(
                MetadataChangeProposalWrapper(
                    entityUrn=execution_request_urn(run_id),
                    aspect=result.to_aspect(),
                    headers={"If-Version-Match": "-1"},
                )
            )
        except PreconditionFailed as exc:
            stored = self.read_result(run_id)
            if stored is None:
                # Refused, yet nothing is stored: a validation error, not a lost race.
                raise WriteRejected(str(exc)) from exc
            if nonce is not None and report_details(stored).get(CLAIM_KEY) == nonce:
                log.info("run %s: claim already stored (a retried write)", run_id)
                return ClaimOutcome(True, stored)
            return ClaimOutcome(False, stored)
        return ClaimOutcome(True, None)

    def write_result(self, run_id: str, result: RunResult) -> bool:
        """Write a status over an earlier one. True when DataHub now holds it; False when a
        final status written by someone else is there (GMS refused to change it)."""
        try:
            self._emit(
                MetadataChangeProposalWrapper(
                    entityUrn=execution_request_urn(run_id), aspect=result.to_aspect()
                )
            )
        except (PreconditionFailed, WriteRejected) as exc:
            stored = self.read_result(run_id)
            if stored is not None and stored.to_obj() == result.to_aspect().to_obj():
                log.info("run %s: status %s already stored", run_id, result.status)
                return True
            if stored is not None and is_final(stored.status):
                log.info(
                    "run %s: not writing %s, DataHub already has the final status %s",
                    run_id,
                    result.status,
                    stored.status,
                )
                return False
            raise WriteRejected(str(exc)) from exc
        return True

    def write_results(self, results: list[tuple[str, RunResult]]) -> None:
        """Unconditional status writes of several runs in one call (status_writer.py in the
        consumer). All or nothing: PreconditionFailed or WriteRejected means none was
        written, and the caller writes each alone with `write_result`, which tells a refusal
        from an earlier write of its own. A run must appear at most once."""
        if len({run_id for run_id, _ in results}) != len(results):
            raise ValueError("write_results: a run appears more than once")
        self._emit_all(
            [
                MetadataChangeProposalWrapper(
                    entityUrn=execution_request_urn(run_id), aspect=result.to_aspect()
                )
                for run_id, result in results
            ]
        )

    def write_signal(self, run_id: str, executor_id: str, actor_urn: str) -> None:
        """The cancel signal, as DataHub's CancelIngestionExecutionRequestResolver writes it."""
        self._emit(
            MetadataChangeProposalWrapper(
                entityUrn=execution_request_urn(run_id),
                aspect=ExecutionRequestSignalClass(
                    signal=KILL_SIGNAL,
                    executorId=executor_id,
                    createdAt=AuditStampClass(time=now_ms(), actor=actor_urn),
                ),
            )
        )

    def execution_request_ids(self, limit: int = 500) -> list[str]:
        """Run ids of execution requests in DataHub's search index (any executor), at most
        `limit`: the caller reads and sorts them."""
        try:
            out: list[str] = []
            for urn in self.graph.get_urns_by_filter(
                entity_types=["dataHubExecutionRequest"], batch_size=min(limit, 1000)
            ):
                out.append(run_id_of(urn))
                if len(out) >= limit:
                    break
            return out
        except (requests.RequestException, GraphError, OperationalError) as exc:
            raise DataHubUnavailable(f"searching execution requests: {exc}") from exc

    def running_run_ids(self, limit: int = 200) -> list[str]:
        """Run ids of execution requests whose result status is RUNNING, from DataHub's search
        index (`executionResultStatus` is @Searchable in ExecutionRequestResult.pdl). The index
        lags writes by a moment: good for telling a user "a run is active", not for locking."""
        try:
            urns = self.graph.get_urns_by_filter(
                entity_types=["dataHubExecutionRequest"],
                extraFilters=[
                    {
                        "field": "executionResultStatus",
                        "values": [DataHubStatus.RUNNING.value],
                        "condition": "EQUAL",
                    }
                ],
                batch_size=limit,
            )
            out: list[str] = []
            for urn in urns:
                out.append(run_id_of(urn))
                if len(out) >= limit:
                    break
            return out
        except (requests.RequestException, GraphError, OperationalError) as exc:
            raise DataHubUnavailable(f"searching running execution requests: {exc}") from exc


@dataclass(frozen=True)
class ClaimOutcome:
    """`ours`: the claim is ours, start the run. Otherwise `stored` is what another writer put
    there (a final status, or another owner's RUNNING claim)."""

    ours: bool
    stored: ExecutionRequestResultClass | None
