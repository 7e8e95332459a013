"""Prometheus metrics of the consumer. Names and labels: docs/contract.md.

Held in an object with its own registry so tests can read fresh values; the process uses
one instance on the default registry.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info

from lambda_trigger import __version__
from lambda_trigger_consumer.aws_calls import KNOWN_APIS

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY, executor_id: str = "") -> None:
        p = "lambda_trigger_consumer"
        self.registry = registry
        self.received = Counter(
            f"{p}_received_messages", "MCL records received", ["topic"], registry=registry
        )
        self.key_discarded = Counter(
            f"{p}_key_discarded_messages",
            "Records dropped by Kafka key before decoding",
            ["topic"],
            registry=registry,
        )
        self.decoded = Counter(
            f"{p}_decoded_messages", "Records decoded", ["topic"], registry=registry
        )
        self.decode_failures = Counter(
            f"{p}_decode_failures",
            "Records that could not be decoded",
            ["reason"],
            registry=registry,
        )
        self.accepted = Counter(
            f"{p}_accepted_requests", "Run requests for this executor", registry=registry
        )
        self.invocations = Counter(
            f"{p}_invocations",
            "Job invocations by target label and outcome",
            ["target", "outcome"],
            registry=registry,
        )
        self.invocation_duration = Histogram(
            f"{p}_invocation_duration_seconds",
            "Time spent in the AWS call",
            ["target"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_to_invoke = Histogram(
            f"{p}_request_to_invoke_seconds",
            "From requestedAt to the start of the invocation",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.processed_duration = Histogram(
            f"{p}_processed_duration_seconds",
            "Time to handle one run request, from taking it up to its final status",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.status_writes = Counter(
            f"{p}_status_writes", "Status writes to DataHub", ["status"], registry=registry
        )
        self.status_write_failures = Counter(
            f"{p}_status_write_failures", "Failed status write attempts", registry=registry
        )
        self.dead_letters = Counter(
            f"{p}_dead_letters",
            "Records sent to the dead-letter topic",
            ["reason"],
            registry=registry,
        )
        self.inflight = Gauge(
            f"{p}_inflight_invocations", "Requests being handled now", registry=registry
        )
        self.lag = Gauge(
            f"{p}_lag_messages",
            "High watermark minus position",
            ["topic", "partition"],
            registry=registry,
        )
        self.last_commit = Gauge(
            f"{p}_last_commit_timestamp_seconds",
            "Unix time of the last successful offset commit",
            registry=registry,
        )
        self.mapping_reloads = Counter(
            f"{p}_mapping_reloads", "Mapping reloads", ["result"], registry=registry
        )
        self.open_runs = Gauge(
            f"{p}_open_runs",
            "Unfinished runs in the ledger partitions this consumer owns",
            registry=registry,
        )
        self.runs_finished = Counter(
            f"{p}_runs_finished",
            "Runs this consumer ended, by final DataHub status",
            ["status"],
            registry=registry,
        )
        self.takeovers = Counter(
            f"{p}_run_takeovers",
            "Runs ended by a deadline or after their consumer was lost",
            ["reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            f"{p}_duplicate_requests",
            "Requests ended DUPLICATE: a run of the same dataset and target was active",
            registry=registry,
        )
        self.unexpected_errors = Counter(
            f"{p}_unexpected_errors",
            "Exceptions in a run step (the run is ended FAILURE)",
            registry=registry,
        )
        self.completion_records = Counter(
            f"{p}_completion_records",
            "Lambda destination records read from the completion queue",
            ["result"],
            registry=registry,
        )
        # The trust boundary on Kafka (issue 19; docs/security.md).
        self.ledger_rejected = Counter(
            f"{p}_ledger_records_rejected",
            "Run ledger records skipped: not authenticated (unsigned, unknown_key, bad_mac, "
            "malformed_mac) or unreadable",
            ["reason"],
            registry=registry,
        )
        self.cancels_ignored = Counter(
            f"{p}_cancels_ignored",
            "KILL signals ignored because their writer may not cancel the run",
            registry=registry,
        )
        self.pre_invoke_refusals = Counter(
            f"{p}_pre_invoke_refusals",
            "Runs ended FAILURE by the check before the invoke (target, writer)",
            ["reason"],
            registry=registry,
        )
        self.dependency_up = Gauge(
            f"{p}_dependency_up",
            "1 while the dependency is reachable, 0 while not (dependencies.py)",
            ["dependency"],
            registry=registry,
        )
        self.aws_calls = Counter(
            f"{p}_aws_calls",
            "AWS API calls made, by API (Invoke, StartExecution, DescribeExecution, ...)",
            ["api"],
            registry=registry,
        )
        self.aws_throttles = Counter(
            f"{p}_aws_throttles",
            "AWS API calls answered with throttling (429, ThrottlingException), by API",
            ["api"],
            registry=registry,
        )
        # Issue 24: who waits, and how many runs the consumer has out in AWS.
        self.runs_queued = Gauge(
            f"{p}_runs_queued",
            "Runs waiting for a step thread, a synchronous invoke slot or their turn to claim, "
            "by priority class",
            ["priority"],
            registry=registry,
        )
        self.runs_inflight = Gauge(
            f"{p}_runs_inflight",
            "Runs invoked and not final, by kind (sync, event, stepfunctions)",
            ["kind"],
            registry=registry,
        )
        self.info = Info(f"{p}", "Build and configuration", registry=registry)
        self.info.info({"version": __version__, "executor_id": executor_id})
        # Children for every known label value exist from the start, so dashboards show 0
        # instead of "No data" and rate() sees the first event.
        for reason in ("unsigned", "unknown_key", "bad_mac", "malformed_mac", "unreadable"):
            self.ledger_rejected.labels(reason=reason)
            self.dead_letters.labels(reason=f"ledger_{reason}")
        for reason in ("target", "writer"):
            self.pre_invoke_refusals.labels(reason=reason)
        for reason in ("framing", "schema", "avro", "aspect", "unhandled"):
            self.decode_failures.labels(reason=reason)
            self.dead_letters.labels(reason=f"decode_{reason}")
        for reason in ("status_unwritable", "completion_malformed"):
            self.dead_letters.labels(reason=reason)
        for result in ("success", "error"):
            self.mapping_reloads.labels(result=result)
        for status in ("RUNNING", "SUCCESS", "FAILURE"):
            self.status_writes.labels(status=status)
        for status in ("SUCCESS", "FAILURE", "TIMEOUT", "CANCELLED", "DUPLICATE"):
            self.runs_finished.labels(status=status)
        for reason in ("deadline", "lost_owner"):
            self.takeovers.labels(reason=reason)
        for result in ("matched", "unmatched", "malformed", "unbound"):
            self.completion_records.labels(result=result)
        for priority in ("interactive", "programmatic", "triggered"):
            self.runs_queued.labels(priority=priority)
        for kind in ("sync", "event", "stepfunctions"):
            self.runs_inflight.labels(kind=kind)
        for api in KNOWN_APIS:
            self.aws_calls.labels(api=api)
            self.aws_throttles.labels(api=api)

    def known_targets(self, labels: Iterable[str]) -> None:
        """Create the per-target children for the mapping's labels (called on every load)."""
        for label in labels:
            self.invocation_duration.labels(target=label)
            for outcome in (
                "success",
                "function_error",
                "invoke_error",
                "started",
                "throttled",
                "unknown",
            ):
                self.invocations.labels(target=label, outcome=outcome)
