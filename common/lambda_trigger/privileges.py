"""What the api's and the consumer's DataHub tokens must be allowed to do, checked at start and in
/readyz with one harmless probe per capability (docs/datahub-privileges.md lists the policies).

Without these rights DataHub refuses the writes, and some refusals are only counted (history
writes): the Runs tab would stay silently empty. So each component asks DataHub up front and
logs one line per missing right, naming the DataHub privilege; /readyz fails while one is missing.

Probes (nothing is ever written):
- platform privilege MANAGE_INGESTION: GraphQL `me { platformPrivileges { manageIngestion } }`
  (MeResolver answers from the token's policies);
- EDIT_ENTITY on an entity type: a *dry write* - an UPSERT of a small aspect on a probe URN
  with `If-Version-Match: 999999999`. GMS authorizes the write first (AspectResource:
  "User ... is unauthorized to modify entity", HTTP 403, when REST API authorization denies it;
  write validators such as ExecuteIngestionAuthValidator next), then ConditionalWriteValidator
  fails the batch because the aspect has no such version, so nothing is stored and no MCL is
  produced. A precondition failure therefore means "allowed", a refusal means "missing".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import ExecutionRequestResultClass, StatusClass

from lambda_trigger.datahub import (
    DataHubClient,
    DataHubUnavailable,
    PreconditionFailed,
    WriteRejected,
)

log = logging.getLogger(__name__)

IMPOSSIBLE_VERSION = "999999999"
PROBE_REQUEST = "urn:li:dataHubExecutionRequest:lambda-trigger-privilege-probe"
PROBE_DPI = "urn:li:dataProcessInstance:lambda-trigger-privilege-probe"
PROBE_FLOW = "urn:li:dataFlow:(lambda-trigger,privilege-probe,PROD)"
PROBE_JOB = f"urn:li:dataJob:({PROBE_FLOW},privilege-probe)"
PROBE_DATASET = "urn:li:dataset:(urn:li:dataPlatform:lambda-trigger,privilege-probe,PROD)"

Probe = Callable[[DataHubClient], None]  # returns if allowed; raises Missing or DataHubUnavailable


class Missing(Exception):
    """DataHub refused the probe: the token lacks the privilege."""


@dataclass(frozen=True)
class Capability:
    key: str  # stable id, used in /readyz
    privilege: str  # the DataHub privilege to grant, as its policy editor names it
    effect: str  # what goes wrong without it
    probe: Probe


def _dry_write(urn: str, aspect: Any) -> Probe:
    def probe(client: DataHubClient) -> None:
        try:
            client._emit(
                MetadataChangeProposalWrapper(
                    entityUrn=urn, aspect=aspect, headers={"If-Version-Match": IMPOSSIBLE_VERSION}
                )
            )
        except PreconditionFailed:
            return  # authorized; the impossible version stopped the write
        except WriteRejected as exc:
            raise Missing(str(exc)) from exc
        # A write that landed would mean GMS ignored If-Version-Match: say so, it is not harmless.
        log.warning("privilege probe on %s was stored: GMS ignored If-Version-Match", urn)

    return probe


def _manage_ingestion(client: DataHubClient) -> None:
    try:
        answer = client.graph.execute_graphql(
            "query { me { platformPrivileges { manageIngestion } } }"
        )
    except Exception as exc:  # the SDK raises its own GraphQL/HTTP errors
        raise DataHubUnavailable(str(exc)) from exc
    if not answer.get("me", {}).get("platformPrivileges", {}).get("manageIngestion"):
        raise Missing("me.platformPrivileges.manageIngestion is false")


MANAGE_INGESTION = Capability(
    "manageIngestion",
    "MANAGE_INGESTION (platform privilege 'Manage Metadata Ingestion')",
    "run requests are refused by GMS (ExecuteIngestionAuthValidator needs EXECUTE on the "
    "dataset's ingestion source) and ingestion sources cannot be created on first use",
    _manage_ingestion,
)
EDIT_REQUESTS = Capability(
    "editExecutionRequests",
    "EDIT_ENTITY on entity type dataHubExecutionRequest ('Edit Entity' metadata privilege)",
    "run requests, cancel signals and run results cannot be written",
    _dry_write(PROBE_REQUEST, ExecutionRequestResultClass(status="RUNNING")),
)
EDIT_DPI = Capability(
    "editDataProcessInstances",
    "EDIT_ENTITY on entity type dataProcessInstance",
    "run history is not written: the dataset's Runs tab stays empty",
    _dry_write(PROBE_DPI, StatusClass(removed=False)),
)


def _both(first: Probe, second: Probe) -> Probe:
    def probe(client: DataHubClient) -> None:
        first(client)
        second(client)

    return probe


EDIT_FLOWS = Capability(
    "editDataFlowsAndJobs",
    "EDIT_ENTITY on entity types dataFlow and dataJob",
    "the run history's pipeline and task (dataFlow/dataJob) are not written",
    _both(
        _dry_write(PROBE_FLOW, StatusClass(removed=False)),
        _dry_write(PROBE_JOB, StatusClass(removed=False)),
    ),
)
EDIT_DATASETS = Capability(
    "editDatasets",
    "EDIT_ENTITY on entity type dataset (for the `operation` aspect)",
    "a finished run's operation is not recorded on its dataset",
    _dry_write(PROBE_DATASET, StatusClass(removed=False)),
)

API_CAPABILITIES = (MANAGE_INGESTION, EDIT_REQUESTS)
CONSUMER_CAPABILITIES = (EDIT_REQUESTS, EDIT_DPI, EDIT_FLOWS, EDIT_DATASETS)


class PrivilegeCheck:
    """Runs the probes of one component; `status()` for /readyz, refreshed every `ttl` s.

    Logs one line per missing right when first found (and one when it comes back), not on every
    refresh. A DataHub outage is not a missing right: the probe is "unknown" and does not fail
    readiness here (the components' own DataHub checks report outages)."""

    def __init__(
        self,
        component: str,
        client: DataHubClient,
        capabilities: tuple[Capability, ...],
        *,
        ttl: float = 60.0,
    ) -> None:
        self.component = component
        self._client = client
        self._capabilities = capabilities
        self._ttl = ttl
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._missing: dict[str, Capability] = {}
        self._unknown: set[str] = set()
        self._refresh: threading.Thread | None = None

    def start(self) -> None:
        """Probe in the background (a start that must not wait for GMS); the lines follow."""
        with self._lock:
            if self._refresh is not None:
                return
            self._refresh = threading.Thread(
                target=self._background_run, name=f"{self.component}-privileges", daemon=True
            )
            thread = self._refresh
        thread.start()

    def _background_run(self) -> None:
        try:
            self.run()
        except Exception:  # a probe bug must not kill readiness reporting
            log.exception("%s: privilege check failed", self.component)
        finally:
            with self._lock:
                self._refresh = None

    def run(self) -> list[Capability]:
        """Probe every capability now; returns the missing ones."""
        missing: dict[str, Capability] = {}
        unknown: set[str] = set()
        for cap in self._capabilities:
            try:
                cap.probe(self._client)
            except Missing as exc:
                missing[cap.key] = cap
                log.debug("%s privilege probe %s refused: %s", self.component, cap.key, exc)
            except DataHubUnavailable as exc:
                unknown.add(cap.key)
                log.debug(
                    "%s privilege probe %s: DataHub unavailable: %s", self.component, cap.key, exc
                )
        with self._lock:
            for key, cap in missing.items():
                if key not in self._missing:
                    log.error(
                        "%s: its DataHub token lacks %s: %s (grant it in a DataHub policy; "
                        "docs/datahub-privileges.md)",
                        self.component,
                        cap.privilege,
                        cap.effect,
                    )
            for key, cap in self._missing.items():
                if key not in missing and key not in unknown:
                    log.info(
                        "%s: DataHub privilege %s is granted now", self.component, cap.privilege
                    )
            # An unknown probe keeps its last verdict.
            self._missing = {
                **{k: c for k, c in self._missing.items() if k in unknown},
                **missing,
            }
            self._unknown = unknown
            self._checked_at = time.monotonic()
            return list(self._missing.values())

    def status(self) -> tuple[bool, dict[str, object]]:
        """The last verdict, for /readyz. When older than `ttl`, a background refresh starts
        (a readiness probe must not wait for GMS timeouts); before any run, probe now."""
        with self._lock:
            never = self._checked_at is None
            running = self._refresh is not None
            stale = never or time.monotonic() - (self._checked_at or 0.0) > self._ttl
        if never and not running:
            self.run()
        elif stale:
            self.start()
        with self._lock:
            if self._checked_at is None:
                # The first check is still under way: unknown, not missing.
                return True, {"uncheckedPrivileges": [c.key for c in self._capabilities]}
            detail: dict[str, object] = {}
            if self._missing:
                detail["missingPrivileges"] = [c.privilege for c in self._missing.values()]
            if self._unknown:
                detail["uncheckedPrivileges"] = sorted(self._unknown)
            return not self._missing, detail
