"""One accepted request, on a worker thread: target -> claim -> invoke -> status.

The outcome tells the poll loop what to do with the record's offset:
- DONE: the run reached its end state in DataHub (or was already handled): commit may pass it;
- HANDED_BACK: DataHub stayed unreachable until shutdown before anything was started: the
  offset stays uncommitted so the record is delivered again after a restart.
A claimed run is never handed back: its final status is retried and, as a last resort,
dead-lettered, because a second delivery would find it claimed and never finish it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from lambda_trigger.contract import DataHubStatus, RunRequest, RunResult, lambda_payload, now_ms
from lambda_trigger.datahub import DataHubClient, DataHubUnavailable, WriteRejected
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger_consumer import status
from lambda_trigger_consumer.authorize import Authorizer
from lambda_trigger_consumer.invoke import Invoker
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.request import Invalid
from lambda_trigger_consumer.target import NoTarget, resolve_target

log = logging.getLogger(__name__)
T = TypeVar("T")
# Clocks differ a little between writers and the consumer; more than this is not skew.
FUTURE_TOLERANCE_SECONDS = 300.0


class Outcome(Enum):
    DONE = "done"
    HANDED_BACK = "handed_back"


class _HandBack(Exception):
    pass


@dataclass(frozen=True)
class HandlerConfig:
    job_arn_property_urn: str | None = None
    # Older requests are not started: after an outage or a consumer-group reset, a backlog
    # of day-old clicks must not all fire at once.
    max_request_age_seconds: float = 3600.0
    # How long a final status write is retried after shutdown began, before dead-lettering.
    final_write_grace_seconds: float = 30.0


FinalWriteFallback = Callable[[str, RunResult, str], None]


class Handler:
    def __init__(
        self,
        datahub: DataHubClient,
        mappings: MappingSource,
        invoker: Invoker,
        metrics: ConsumerMetrics,
        config: HandlerConfig,
        stopping: threading.Event,
        on_final_write_failed: FinalWriteFallback,
        authorizer: Authorizer | None = None,
    ) -> None:
        self._datahub = datahub
        self._mappings = mappings
        self._invoker = invoker
        self._metrics = metrics
        self._config = config
        self._stopping = stopping
        self._on_final_write_failed = on_final_write_failed
        self._authorizer = authorizer

    def handle(self, request: RunRequest | Invalid) -> Outcome:
        self._metrics.inflight.inc()
        started = time.monotonic()
        try:
            self._handle(request)
            return Outcome.DONE
        except _HandBack:
            log.warning("run %s handed back: DataHub unreachable at shutdown", request.run_id)
            return Outcome.HANDED_BACK
        finally:
            self._metrics.inflight.dec()
            self._metrics.processed_duration.observe(time.monotonic() - started)

    # --- steps --------------------------------------------------------------------------

    def _handle(self, request: RunRequest | Invalid) -> None:
        start_ms = now_ms()
        if isinstance(request, Invalid):
            self._finish_unstarted(request.run_id, start_ms, request.message)
            return
        age = (start_ms - request.requested_at_ms) / 1000
        # trust boundary: a requestedAt in the future is the writer's claim, not a reason to
        # skip expiry (lambda_trigger_consumer.authorize).
        if age < -FUTURE_TOLERANCE_SECONDS:
            self._finish_unstarted(
                request.run_id, start_ms, "request refused: requestedAt is in the future"
            )
            return
        if age > self._config.max_request_age_seconds:
            self._finish_unstarted(
                request.run_id,
                start_ms,
                f"request expired: requested {age:.0f} s ago, limit {self._config.max_request_age_seconds:.0f} s",
            )
            return
        # trust boundary: authorise the writer before resolving the target (authorize.py).
        if self._authorizer is not None:
            authorizer, asked = self._authorizer, request
            decision = self._until_stopping(
                "authorise", lambda: authorizer.check(asked), is_write=False
            )
            if decision.refusal is not None:
                self._finish_unstarted(request.run_id, start_ms, decision.refusal)
                return
            request = decision.request  # requestedBy is the writer unless the api wrote it
        resolution = self._until_stopping(
            "resolve target",
            lambda: resolve_target(
                request, self._mappings.current(), self._datahub, self._config.job_arn_property_urn
            ),
            is_write=False,
        )
        if isinstance(resolution, NoTarget):
            self._finish_unstarted(request.run_id, start_ms, resolution.message)
            return
        claim = status.running(start_ms, resolution)
        if not self._until_stopping("claim", lambda: self._datahub.claim(request.run_id, claim)):
            log.info("run %s already has a status: not invoking it again", request.run_id)
            return
        self._metrics.status_writes.labels(status=DataHubStatus.RUNNING.value).inc()
        if request.requested_at_ms:
            self._metrics.request_to_invoke.observe(
                max(0.0, (now_ms() - request.requested_at_ms) / 1000)
            )
        log.info(
            "run %s: invoking %s (%s)", request.run_id, resolution.target_key, resolution.matched_by
        )
        payload = lambda_payload(request, resolution.target.payload)
        invocation = self._invoker.invoke(resolution.target, payload, request.run_id)
        self._metrics.invocations.labels(target=resolution.label, outcome=invocation.outcome).inc()
        self._metrics.invocation_duration.labels(target=resolution.label).observe(
            invocation.duration_seconds
        )
        log.info(
            "run %s: %s in %.3f s", request.run_id, invocation.outcome, invocation.duration_seconds
        )
        self._write_final(request.run_id, status.after_invocation(start_ms, resolution, invocation))

    def _finish_unstarted(self, run_id: str, start_ms: int, message: str) -> None:
        log.warning("run %s not started: %s", run_id, message)
        result = status.not_started(start_ms, message)
        if self._until_stopping("write failure", lambda: self._datahub.claim(run_id, result)):
            self._metrics.status_writes.labels(status=result.status.value).inc()

    def _until_stopping(self, what: str, call: Callable[[], T], *, is_write: bool = True) -> T:
        """Retry while DataHub is unreachable; give the record back once shutdown begins."""
        delay = 0.5
        while True:
            try:
                return call()
            except DataHubUnavailable as exc:
                if is_write:
                    self._metrics.status_write_failures.inc()
                log.warning("%s: DataHub unavailable (%s); retrying in %.1f s", what, exc, delay)
                if self._stopping.wait(delay):
                    raise _HandBack from exc
                delay = min(delay * 2, 30.0)

    def _write_final(self, run_id: str, result: RunResult) -> None:
        delay = 0.5
        deadline: float | None = None
        while True:
            try:
                self._datahub.write_result(run_id, result)
                self._metrics.status_writes.labels(status=result.status.value).inc()
                return
            except WriteRejected as exc:
                self._metrics.status_write_failures.inc()
                log.error(
                    "run %s: DataHub rejected the final status %s: %s", run_id, result.status, exc
                )
                self._on_final_write_failed(run_id, result, str(exc))
                return
            except DataHubUnavailable as exc:
                self._metrics.status_write_failures.inc()
                if self._stopping.is_set() and deadline is None:
                    deadline = time.monotonic() + self._config.final_write_grace_seconds
                if deadline is not None and time.monotonic() >= deadline:
                    log.error("run %s: final status %s not written: %s", run_id, result.status, exc)
                    self._on_final_write_failed(run_id, result, str(exc))
                    return
                log.warning(
                    "run %s: final status write failed (%s); retrying in %.1f s", run_id, exc, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
