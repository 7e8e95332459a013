"""Wiring: settings -> mapping, DataHub client, registry, invoker, metrics -> Runner."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from lambda_trigger.datahub import DataHubClient
from lambda_trigger.mapping_source import MappingInfoCollector, MappingSource
from lambda_trigger.settings import ConsumerSettings, DataHubSettings, MappingSettings
from lambda_trigger_consumer.aws_client import endpoint_of  # operability
from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.decode import SchemaRegistry
from lambda_trigger_consumer.dependencies import DependencyMonitor, register_defaults
from lambda_trigger_consumer.handler import Handler, HandlerConfig
from lambda_trigger_consumer.health import HealthServer, liveness, readiness
from lambda_trigger_consumer.invoke import Invoker
from lambda_trigger_consumer.kafka_logs import KafkaLogging
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.runner import Runner

log = logging.getLogger(__name__)


class ConsumerApp:
    """Everything the consumer process runs; tests build it the same way `main` does."""

    def __init__(
        self,
        consumer: ConsumerSettings | None = None,
        datahub: DataHubSettings | None = None,
        mapping: MappingSettings | None = None,
        *,
        registry: CollectorRegistry = REGISTRY,
        handler_config: HandlerConfig | None = None,
    ) -> None:
        self.settings = consumer or ConsumerSettings()
        datahub_settings = datahub or DataHubSettings()
        mapping_settings = mapping or MappingSettings()
        self.metrics = ConsumerMetrics(registry, executor_id=datahub_settings.executor_id)
        # A bad mapping raises MappingError here: the service does not start.
        self.mappings = MappingSource(
            mapping_settings,
            reload_seconds=self.settings.mapping_reload_seconds,
            on_reload=self._on_mapping_reload,
        )
        self.metrics.known_targets(self.mappings.current().labels())
        registry.register(MappingInfoCollector("lambda_trigger_consumer", self.mappings))
        # operability: who is reachable (logs the "X unreachable at ... since ..." lines)
        self.dependencies = DependencyMonitor(self.metrics.dependency_up)
        register_defaults(
            self.dependencies,
            kafka=self.settings.bootstrap_servers,
            gms_url=datahub_settings.gms_url,
            schema_registry_url=self.settings.schema_registry_url,
            aws_endpoint=endpoint_of("lambda", mapping_settings.resolved_region()),
        )
        self.kafka_logging = KafkaLogging(self.dependencies)
        self._threads: dict[str, threading.Thread | None] = {
            "mapping-reload": None,
            "dependency-probe": None,
        }
        self.datahub = DataHubClient(datahub_settings)
        self.registry = SchemaRegistry(self.settings.schema_registry_url)
        invoker = Invoker(
            mapping_settings.resolved_region(), excerpt_bytes=self.settings.report_payload_bytes
        )
        kafka: dict[str, Any] = {
            "bootstrap.servers": self.settings.bootstrap_servers,
            **self.kafka_logging.config(),  # librdkafka logs/errors: de-duplicated, one line
        }
        if self.settings.kafka_config_json:
            kafka.update(json.loads(self.settings.kafka_config_json))
        dead_letters = DeadLetters(kafka, self.settings.dead_letter_topic, self.metrics)
        config = handler_config or HandlerConfig(
            job_arn_property_urn=mapping_settings.job_arn_property_urn,
            max_request_age_seconds=self.settings.max_request_age_seconds,
        )

        def handler_factory(stopping: threading.Event, fallback: Any) -> Handler:
            return Handler(
                self.datahub, self.mappings, invoker, self.metrics, config, stopping, fallback
            )

        self.runner = Runner(
            {
                **kafka,
                "group.id": self.settings.group_id,
                "auto.offset.reset": self.settings.auto_offset_reset,
                "client.id": f"datahub-lambda-trigger-{datahub_settings.executor_id}",
            },
            self.settings.topic,
            datahub_settings.executor_id,
            self.registry,
            handler_factory,
            dead_letters,
            self.metrics,
            max_inflight=self.settings.max_inflight,
            commit_interval_seconds=self.settings.commit_interval_seconds,
            shutdown_grace_seconds=self.settings.shutdown_grace_seconds,
        )
        self.health = HealthServer(
            self.settings.http_host, self.settings.http_port, registry, self._live, self._ready
        )

    def _on_mapping_reload(self, ok: bool) -> None:
        self.metrics.mapping_reloads.labels(result="success" if ok else "error").inc()
        if ok:
            self.metrics.known_targets(self.mappings.current().labels())

    def _live(self) -> tuple[bool, dict[str, object]]:
        # The process only: dependencies never restart the pod (docs/operations.md).
        return liveness(self.runner.last_loop, threads=self._threads)

    def _ready(self) -> tuple[bool, dict[str, object]]:
        partitions = len(self.runner.assignment)
        deps = self.dependencies.status()
        return readiness(
            (partitions > 0, {"assignedPartitions": partitions}),
            (not deps["failing"], deps),
            (True, self.mappings.status()),
        )

    def _watch_mapping(self) -> None:
        """Check the mapping file on a clock, not only when a request arrives: a broken edit
        must show (log, metric, alert) before the next click, and a new target's series must
        exist before its first invocation."""
        while not self.runner.stopping.wait(self.settings.mapping_reload_seconds):
            self.mappings.reload_if_changed()

    def run(self) -> None:
        self.health.start()
        watcher = threading.Thread(target=self._watch_mapping, name="mapping-reload", daemon=True)
        watcher.start()
        self._threads["mapping-reload"] = watcher
        self._threads["dependency-probe"] = self.dependencies.start_probes(self.runner.stopping)
        log.info(
            "consuming %s as group %s; metrics on :%d",
            self.settings.topic,
            self.settings.group_id,
            self.health.port,
        )
        try:
            self.runner.run()
        finally:
            self.health.stop()
            self.registry.close()
            self.datahub.close()

    def stop(self) -> None:
        self.runner.stop()
