"""Wiring: settings -> mapping, DataHub client, registry, invoker, metrics -> Runner."""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import replace
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from lambda_trigger.contract import RunRequest
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.kafka_security import TokenProvider, for_client, kafka_client_config
from lambda_trigger.mapping_source import MappingInfoCollector, MappingSource
from lambda_trigger.privileges import CONSUMER_CAPABILITIES, PrivilegeCheck
from lambda_trigger.settings import ConsumerSettings, DataHubSettings, MappingSettings
from lambda_trigger_consumer.authorize import Authorizer
from lambda_trigger_consumer.aws_calls import CallCounter
from lambda_trigger_consumer.aws_session import new_session
from lambda_trigger_consumer.completion import CompletionReader
from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.dependencies import DependencyMonitor, register_defaults
from lambda_trigger_consumer.driver import CancelGate, DriverConfig, Gate, RunDriver
from lambda_trigger_consumer.health import HealthServer, liveness, readiness
from lambda_trigger_consumer.history import RunHistory
from lambda_trigger_consumer.invoke import Invoker
from lambda_trigger_consumer.kafka_defaults import consumer_config
from lambda_trigger_consumer.kafka_logs import KafkaLogging
from lambda_trigger_consumer.ledger import LedgerView, LedgerWriter, RunEntry
from lambda_trigger_consumer.ledger_auth import LedgerSigner
from lambda_trigger_consumer.lineage import LineageCache, LineageWatcher
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.registries import build_registry
from lambda_trigger_consumer.runner import Runner
from lambda_trigger_consumer.status_writer import StatusWriter
from lambda_trigger_consumer.topics import KafkaUnreachable, TopicPlan, ensure_topics
from lambda_trigger_consumer.trigger_decider import (
    IntentWriter,
    OperationReader,
    TriggerDecider,
    TriggerMetrics,
)
from lambda_trigger_consumer.trigger_intents import TriggerBook
from lambda_trigger_consumer.upstream_runner import PlanRunner
from lambda_trigger_consumer.warm import consumer_warmup

log = logging.getLogger(__name__)

# How long a dataset GMS has said exists is believed without asking again (a run's two checks
# of its dataset, and the many runs of one dataset in a burst, cost one read pair).
DATASET_PRESENT_SECONDS = 10.0


def _connect_error(bootstrap_servers: str, fallback: Exception) -> str:
    """Why the first bootstrap server does not answer, as the OS says it ("Connection
    refused", "Name or service not known"), which tells an operator more than librdkafka's
    "Broker transport failure"."""
    host, _, port = bootstrap_servers.split(",", maxsplit=1)[0].strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
            return str(fallback)
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc)


class ConsumerApp:
    """Everything the consumer process runs; tests build it the same way `main` does."""

    def __init__(
        self,
        consumer: ConsumerSettings | None = None,
        datahub: DataHubSettings | None = None,
        mapping: MappingSettings | None = None,
        *,
        registry: CollectorRegistry = REGISTRY,
        driver_config: DriverConfig | None = None,
        gate: Gate | None = None,
        kafka_token_provider: TokenProvider | None = None,
    ) -> None:
        self.settings = settings = consumer or ConsumerSettings()
        datahub_settings = datahub or DataHubSettings()
        mapping_settings = mapping or MappingSettings()
        self.metrics = ConsumerMetrics(registry, executor_id=datahub_settings.executor_id)
        # Lineage triggers start once the topics are checked and the mapping names one.
        self._trigger_threads: list[Any] = []
        self._trigger_lock = threading.Lock()
        self._topics_ready = threading.Event()  # the ledger's partition count is known
        # A bad mapping raises MappingError here: the service does not start.
        self.mappings = MappingSource(
            mapping_settings,
            reload_seconds=settings.mapping_reload_seconds,
            on_reload=self._on_mapping_reload,
        )
        self.metrics.known_targets(self.mappings.current().labels())
        registry.register(MappingInfoCollector("lambda_trigger_consumer", self.mappings))
        # SCHEMA_REGISTRY_TYPE's registry (registries.py); bad credentials settings raise
        # RegistryAuthError here, naming the setting: the service does not start.
        registry_setup = build_registry(settings, mapping_settings.resolved_region())
        region = mapping_settings.resolved_region()
        invoker = Invoker(
            region,
            excerpt_bytes=settings.report_payload_bytes,
            keepalive_seconds=settings.aws_keepalive_seconds,
            calls=CallCounter(self.metrics.aws_calls, self.metrics.aws_throttles),
            max_pool_connections=max(10, settings.max_inflight + settings.step_threads),
        )
        # Who is reachable: logs "X unreachable at ... since ..." once, and its recovery.
        self.dependencies = DependencyMonitor(self.metrics.dependency_up)
        register_defaults(
            self.dependencies,
            kafka=settings.bootstrap_servers,
            gms_url=datahub_settings.gms_url,
            schema_registry_url=registry_setup.address,
            # The Lambda client the runs use tells its endpoint (one botocore session and
            # client, not a second set of service models just for the address: ~10 MiB).
            aws_endpoint=invoker.endpoint_url() if region else None,
            schema_registry_probe=registry_setup.registry.probe,
            schema_registry_hint=registry_setup.hint,
        )
        self.kafka_logging = KafkaLogging(self.dependencies)
        self._threads: dict[str, threading.Thread | None] = {
            "mapping-reload": None,
            "dependency-probe": None,
            "warm-up": None,
        }
        # A dataset GMS said exists is taken as existing for DATASET_PRESENT_SECONDS: each run
        # checks its dataset when taken up and again right before its invoke (datahub.py).
        self.datahub = DataHubClient(datahub_settings, present_for_seconds=DATASET_PRESENT_SECONDS)
        # What its token may do in DataHub: checked at start and in /readyz (privileges.py).
        self.privileges = PrivilegeCheck("consumer", self.datahub, CONSUMER_CAPABILITIES)
        self.registry = registry_setup.registry
        self._registry_address = registry_setup.address
        # TLS / SASL / MSK IAM for every client below, from one place (kafka_security.py);
        # a setting that cannot work raises KafkaSecurityError here: the service does not start.
        security = kafka_client_config(
            settings.bootstrap_servers,
            settings.kafka_config_json,
            provider=kafka_token_provider,
            region=region,
        )
        log.info("Kafka at %s: %s", settings.bootstrap_servers, security.describe())
        kafka: dict[str, Any] = {
            **self.kafka_logging.config(),  # librdkafka logs/errors: de-duplicated, one line
            **security.properties,
        }
        overrides = security.user_properties()
        self._topics = TopicPlan(
            settings.topic,
            settings.runs_topic,
            settings.dead_letter_topic,
            settings.topic_partitions,
            settings.topic_replication,
            settings.create_topics,
        )
        self._kafka = kafka
        self.dead_letters = DeadLetters(
            for_client(kafka, "dead-letter"), settings.dead_letter_topic, self.metrics
        )
        # The ledger's partition count is known once the topics are checked (run()). Its
        # records are signed (ledger_auth.py): without a key, LedgerKeyError stops the start.
        self.ledger = LedgerWriter(
            for_client(kafka, "ledger"), settings.runs_topic, 0, LedgerSigner.from_settings()
        )
        self.view = LedgerView()
        self.completions: CompletionReader | None = None
        queue_arn: str | None = None
        self._stopping = threading.Event()
        if settings.completion_queue_url:
            sqs = CallCounter(self.metrics.aws_calls, self.metrics.aws_throttles).observe(
                new_session().client("sqs", region_name=region)
            )
            self.completions = CompletionReader(
                sqs,
                settings.completion_queue_url,
                self.ledger,
                self.dead_letters,
                self.metrics,
                self._stopping,
            )
            queue_arn = self.completions.queue_arn()
        if settings.sfn_status_events and not settings.completion_queue_url:
            log.warning(
                "LAMBDA_TRIGGER_SFN_STATUS_EVENTS needs LAMBDA_TRIGGER_COMPLETION_QUEUE_URL (the "
                "events arrive there); Step Functions runs are polled as without events"
            )
        config = driver_config or DriverConfig(
            job_arn_property_urn=mapping_settings.job_arn_property_urn,
            max_request_age_seconds=settings.max_request_age_seconds,
            sync_margin_seconds=settings.sync_margin_seconds,
            async_max_seconds=settings.async_max_seconds,
            sfn_max_seconds=settings.sfn_max_seconds,
            throttle_retry_seconds=settings.throttle_retry_seconds,
            sfn_poll_rate=settings.sfn_poll_rate,
            # Events arrive through the completion queue only: without it, poll as before.
            sfn_status_events=settings.sfn_status_events and bool(settings.completion_queue_url),
            sfn_events_poll_seconds=settings.sfn_events_poll_seconds,
            step_threads=settings.step_threads,
            max_claims=settings.max_claims,
            one_active_run=settings.one_active_run,
            max_inflight=settings.max_inflight,
            queue_aging_seconds=settings.queue_aging_seconds,
        )
        self.authorizer: Authorizer | None = None
        cancel_gate: CancelGate | None = None
        if gate is None:
            # trust boundary: who may start runs by writing the request aspect, and who may
            # cancel them (authorize.py).
            authorizer = self.authorizer = Authorizer(
                self.datahub, datahub_settings, registry=registry
            )

            def gate(request: RunRequest) -> tuple[RunRequest, str | None]:
                decision = authorizer.check(request)
                return decision.request, decision.refusal

            cancel_gate = authorizer.may_cancel

        if queue_arn and config.completion_queue_arn is None:
            config = replace(config, completion_queue_arn=queue_arn)
        # The dataset's Runs tab (issue 11): on unless LAMBDA_TRIGGER_NATIVE_HISTORY=false.
        self.history = RunHistory(self.datahub, registry=registry)
        # Lineage triggers (docs/triggers.md): on when the mapping names a triggered dataset.
        self.lineage = LineageCache()
        self.trigger_book = TriggerBook()
        self.view.trigger_sink = self.trigger_book
        self.trigger_metrics = TriggerMetrics(registry)
        self.intents = IntentWriter(
            self.ledger, self.lineage, self.mappings, self.trigger_metrics, self._stopping
        )
        self.status_writer = StatusWriter(
            self.datahub,
            linger_seconds=settings.status_batch_ms / 1000,
            max_batch=settings.status_batch_max,
        )
        self.driver = RunDriver(
            self.view,
            self.ledger,
            self.datahub,
            self.mappings,
            invoker,
            self.metrics,
            config,
            gate=gate,
            cancel_gate=cancel_gate,
            on_unwritable=self._unwritable,
            history=self.history,
            on_finished=self.intents.run_finished,
            status_writer=self.status_writer,
            plans=PlanRunner(  # "run with upstream" parents (upstream_runner.py)
                self.datahub,
                self.mappings,
                datahub_settings.executor_id,
                gate=gate,
                service_actor=(
                    self.authorizer.service_actor if self.authorizer is not None else None
                ),
                max_request_age_seconds=config.max_request_age_seconds,
                job_arn_property_urn=mapping_settings.job_arn_property_urn,
            ),
        )
        group: dict[str, Any] = {
            # The consumer's fetch and prefetch defaults (kafka_defaults.py); the user's Kafka
            # settings (LAMBDA_TRIGGER_KAFKA_CONFIG, KAFKA_PROPERTIES_*...) still win over them.
            **consumer_config(for_client(kafka, "consumer"), overrides),
            "group.id": settings.group_id,
            "auto.offset.reset": settings.auto_offset_reset,
            "client.id": f"datahub-lambda-trigger-{datahub_settings.executor_id}",
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": max(1000, settings.session_timeout_ms // 4),
        }
        if settings.group_instance_id:
            group["group.instance.id"] = settings.group_instance_id
        self._group = {k: v for k, v in group.items() if k != "group.instance.id"}
        self._executor_id = datahub_settings.executor_id
        self.runner = Runner(
            group,
            settings.topic,
            datahub_settings.executor_id,
            self.registry,
            self.ledger,
            self.view,
            self.driver,
            self.datahub,
            self.dead_letters,
            self.metrics,
            commit_interval_seconds=settings.commit_interval_seconds,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
        )
        # Ready only once warm (issue 25): the first run after a start pays no lazy set-up.
        self.warmup = consumer_warmup(
            authorizer=authorizer,
            datahub=self.datahub,
            registry=self.registry,
            topic=settings.topic,
            invoker=invoker,
            mappings=self.mappings,
            stop=self.runner.stopping,
            keep_warm_seconds=settings.keep_warm_seconds,
            threads=self._warm_threads,  # the run's threads, made before the first run
        )
        self.health = HealthServer(
            settings.http_host, settings.http_port, registry, self._live, self._ready
        )

    def _warm_threads(self) -> None:
        """The threads a run and a cancel pass through (driver.py, runner.py)."""
        self.driver.warm()
        self.runner.warm()

    def _unwritable(self, entry: RunEntry, error: str) -> None:
        """DataHub refuses this run's status for good: keep the ledger entry on the
        dead-letter topic for an operator, since the run itself must be let go."""
        self.dead_letters.send(
            "status_unwritable",
            f"run {entry.run_id}: {error}",
            key=entry.run_id.encode(),
            value=entry.to_json(),
            extra={"runId": entry.run_id},
        )

    def _on_mapping_reload(self, ok: bool) -> None:
        self.metrics.mapping_reloads.labels(result="success" if ok else "error").inc()
        if ok:
            self.metrics.known_targets(self.mappings.current().labels())
            if self._topics_ready.is_set():  # the mapping's first trigger: no restart needed
                self._start_triggers()
            warmup = getattr(self, "warmup", None)
            if warmup is not None:
                warmup.again()  # new targets: their clients and timeouts

    def _live(self) -> tuple[bool, dict[str, object]]:
        # The process only (poll loop, run driver, helper threads): a dependency outage never
        # restarts the pod and kills the runs it is waiting for (docs/operations.md).
        live, info = liveness(
            min(self.runner.last_loop, self.driver.last_loop), threads=self._threads
        )
        return live, info

    def _ready(self) -> tuple[bool, dict[str, object]]:
        # Ready = can do its work: a group member whose share is settled, whatever it holds. A
        # member with only ledger partitions drives runs; one with none (a group larger than the
        # partition count) stands by to take over. Requiring an MCL partition kept such members
        # not-ready forever and stalled every rollout of more than one replica.
        # And every partition it holds is being fetched (issue 25): a member that has just been
        # assigned partitions would not see a request written to them for a few hundred ms.
        partitions = len(self.runner.assignment)
        deps = self.dependencies.status()
        return readiness(
            (
                self.runner.in_group and self.runner.fetching,
                {
                    "groupMember": self.runner.in_group,
                    "assignedPartitions": partitions,
                    "partitionsNotFetchedYet": self.runner.unfetched,
                    "ledgerPartitions": len(self.runner.ledger_assignment),
                    "openRuns": self.view.size(),
                },
            ),
            (not deps["failing"], deps),
            (True, self.mappings.status()),
            self.privileges.status(),
            self.warmup.status(),
        )

    def _watch_mapping(self) -> None:
        """Check the mapping file on a clock, not only when a request arrives: a broken edit
        must show (log, metric, alert) before the next click, and a new target's series must
        exist before its first invocation."""
        while not self.runner.stopping.wait(self.settings.mapping_reload_seconds):
            self.mappings.reload_if_changed()

    def run(self) -> None:
        # One start-up line per missing DataHub privilege; in the background, so a GMS that
        # does not answer yet does not hold up the start (its outage is reported as such).
        self.privileges.start()
        self.health.start()
        self._threads["warm-up"] = self.warmup.start()
        watcher = threading.Thread(target=self._watch_mapping, name="mapping-reload", daemon=True)
        watcher.start()
        self._threads["mapping-reload"] = watcher
        self._threads["dependency-probe"] = self.dependencies.start_probes(
            self.runner.stopping, self.settings.dependency_probe_seconds
        )
        if self.completions is not None:
            self.completions.start()
        if self.authorizer is not None:
            # The start-up line on GMS authentication (on, or off and what that means).
            threading.Thread(target=self.authorizer.start, name="auth-probe", daemon=True).start()
        log.info(
            "consuming %s as group %s; run ledger %s; schema registry %s at %s; metrics on :%d",
            self.settings.topic,
            self.settings.group_id,
            self.settings.runs_topic,
            self.settings.schema_registry_type,
            self._registry_address,  # never with credentials (registries.py)
            self.health.port,
        )
        try:
            if self._check_topics():
                self._topics_ready.set()
                self._start_triggers()
                self.runner.run()
        finally:
            # Only now, with every run step done or handed back: the clients close.
            self._stopping.set()
            for thread in self._trigger_threads:
                thread.join(5)
            if self.completions is not None:
                self.completions.join(10)
            self.health.stop()
            self.registry.close()
            # The run history's last writes, but only when no run step is left: a step still
            # running must meet a closed DataHub client, not claim a run after its partition
            # moved on (it would end "stopped before starting it").
            self.history.close(timeout=5.0 if self.driver.busy() == 0 else 0.0)
            self.status_writer.close()
            self.datahub.close()

    def _start_triggers(self) -> None:
        """The lineage watcher, the `operation` reader and the decider (trigger_decider.py),
        once the mapping names a triggered dataset (at start, or on a later reload)."""
        with self._trigger_lock:
            if self._trigger_threads or self.runner.stopping.is_set():
                return
            if not self.mappings.current().triggers():
                return
            self._start_trigger_threads()

    def _start_trigger_threads(self) -> None:
        stopping = self.runner.stopping
        self.lineage_watcher = LineageWatcher(
            self._kafka,
            self.settings.topic,
            self.registry,
            self.datahub,
            self.lineage,
            lambda: set(self.mappings.current().triggers()),
            stopping,
        )
        self.operations = OperationReader(
            {**self._group, "group.id": f"{self.settings.group_id}-triggers"},
            self.settings.timeseries_topic,
            self.registry,
            self.lineage,
            self.intents,
            stopping,
            dead_letters=self.dead_letters,
            decode_failures=self.metrics.decode_failures,
        )
        self.decider = TriggerDecider(
            self.view,
            self.trigger_book,
            self.ledger,
            self.datahub,
            self.mappings,
            self._executor_id,
            self.trigger_metrics,
            self.settings.triggers_per_minute,
            stopping,
        )
        self._trigger_threads = [self.lineage_watcher, self.operations, self.decider]
        for part in self._trigger_threads:
            part.start()
        # Liveness: a trigger thread that died would leave triggers silently stale.
        self._threads["lineage"] = self.lineage_watcher.thread
        self._threads["trigger-operations"] = self.operations.thread
        self._threads["trigger-decider"] = self.decider.thread

    def _check_topics(self) -> bool:
        """Refuse to start (TopicSetupError) without the MCL topic; create ours if missing.
        While Kafka does not answer, wait and say so (readiness names it) rather than exit."""
        while not self.runner.stopping.is_set():
            try:
                self.ledger.partitions = ensure_topics(
                    for_client(self._kafka, "admin"), self._topics
                )
                return True
            except KafkaUnreachable as exc:
                # The dependency monitor logs the one "Kafka unreachable" line (and its
                # recovery) and fails readiness; the reason is the socket's own word.
                # A refused login or TLS failure, seen by librdkafka's error callback, says
                # more than the socket (which connects fine): keep its reason and hint.
                failure = self.kafka_logging.security_failure
                if failure is not None:
                    self.dependencies.down("kafka", failure.reason, hint=failure.hint)
                else:
                    self.dependencies.down(
                        "kafka", _connect_error(self.settings.bootstrap_servers, exc)
                    )
                self.runner.stopping.wait(5.0)
        return False

    def stop(self) -> None:
        self.runner.stop()
