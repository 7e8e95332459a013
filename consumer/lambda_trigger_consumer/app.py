"""Wiring: settings -> mapping, DataHub client, registry, invoker, metrics -> Runner."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from lambda_trigger.datahub import DataHubClient
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.settings import ConsumerSettings, DataHubSettings, MappingSettings
from lambda_trigger_consumer.authorize import Authorizer
from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.decode import SchemaRegistry
from lambda_trigger_consumer.handler import Handler, HandlerConfig
from lambda_trigger_consumer.health import HealthServer
from lambda_trigger_consumer.invoke import Invoker
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
        self.datahub = DataHubClient(datahub_settings)
        self.registry = SchemaRegistry(self.settings.schema_registry_url)
        invoker = Invoker(
            mapping_settings.resolved_region(), excerpt_bytes=self.settings.report_payload_bytes
        )
        kafka: dict[str, Any] = {"bootstrap.servers": self.settings.bootstrap_servers}
        if self.settings.kafka_config_json:
            kafka.update(json.loads(self.settings.kafka_config_json))
        dead_letters = DeadLetters(kafka, self.settings.dead_letter_topic, self.metrics)
        config = handler_config or HandlerConfig(
            job_arn_property_urn=mapping_settings.job_arn_property_urn,
            max_request_age_seconds=self.settings.max_request_age_seconds,
        )

        # trust boundary: who may start runs by writing the request aspect (authorize.py).
        authorizer = Authorizer(self.datahub, datahub_settings, registry=registry)

        def handler_factory(stopping: threading.Event, fallback: Any) -> Handler:
            return Handler(
                self.datahub,
                self.mappings,
                invoker,
                self.metrics,
                config,
                stopping,
                fallback,
                authorizer=authorizer,
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
        self._registry_ok = (0.0, False)
        self.health = HealthServer(
            self.settings.http_host, self.settings.http_port, registry, self._live, self._ready
        )

    def _on_mapping_reload(self, ok: bool) -> None:
        self.metrics.mapping_reloads.labels(result="success" if ok else "error").inc()
        if ok:
            self.metrics.known_targets(self.mappings.current().labels())

    def _live(self) -> tuple[bool, dict[str, object]]:
        age = time.monotonic() - self.runner.last_loop
        return age < 60, {"loopAgeSeconds": round(age, 1)}

    def _ready(self) -> tuple[bool, dict[str, object]]:
        checked, ok = self._registry_ok
        if time.monotonic() - checked > 5:
            ok = self.registry.reachable()
            self._registry_ok = (time.monotonic(), ok)
        partitions = len(self.runner.assignment)
        return partitions > 0 and ok, {"assignedPartitions": partitions, "schemaRegistry": ok}

    def _watch_mapping(self) -> None:
        """Check the mapping file on a clock, not only when a request arrives: a broken edit
        must show (log, metric, alert) before the next click, and a new target's series must
        exist before its first invocation."""
        while not self.runner.stopping.wait(self.settings.mapping_reload_seconds):
            self.mappings.reload_if_changed()

    def run(self) -> None:
        self.health.start()
        threading.Thread(target=self._watch_mapping, name="mapping-reload", daemon=True).start()
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
