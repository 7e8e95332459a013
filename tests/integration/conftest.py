"""Helpers for the end-to-end tests: a consumer and an api wired to the local stack.

Isolation: every test gets its own executorId, consumer group and Lambda function names, so
requests left over by one test are never picked up by another test's consumer (the MCL
topic is shared for the whole session, as in a real DataHub).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ApiSettings, ConsumerSettings, DataHubSettings, MappingSettings
from lambda_trigger.source_urns import source_urn
from lambda_trigger_api.app import create_app
from lambda_trigger_consumer.app import ConsumerApp
from lambda_trigger_consumer.driver import DriverConfig

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLY = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
UNMAPPED = "urn:li:dataset:(urn:li:dataPlatform:hive,SampleHiveDataset,PROD)"  # seeded by the GMS double, in no mapping


@pytest.fixture(scope="session", autouse=True)
def _aws_env(moto_server: Any) -> Iterator[None]:
    """The consumer's boto3 finds moto through the standard variables, like in production."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            mp.setenv(key, value)
        yield


@dataclass
class Env:
    """One test's slice of the stack."""

    stack: Any
    executor_id: str
    group_id: str
    functions: dict[str, str]
    mapping: dict[str, Any]
    users: dict[str, str] = field(default_factory=dict)

    @property
    def gms(self) -> Any:
        return self.stack.gms

    @property
    def moto(self) -> Any:
        return self.stack.moto

    def datahub_settings(self, token: str | None = None) -> DataHubSettings:
        return DataHubSettings(
            gms_url=self.gms.url,
            gms_token=token or self.gms.admin_token,
            frontend_url=self.gms.frontend_url,
            executor_id=self.executor_id,
            timeout_seconds=5.0,
        )

    def mapping_settings(self) -> MappingSettings:
        return MappingSettings(mapping_inline=json.dumps(self.mapping), region="us-east-1")

    def datahub(self) -> DataHubClient:
        return DataHubClient(self.datahub_settings())

    def request(self, dataset: str = SIP, **kw: Any) -> RunRequest:
        """Write a run request the way any SDK caller would (no api involved)."""
        request = RunRequest(
            run_id=new_run_id(),
            dataset_urn=dataset,
            executor_id=self.executor_id,
            source_type=SourceType.SDK.value,
            requested_at_ms=kw.pop("requested_at_ms", now_ms()),
            actor_urn="urn:li:corpuser:sdk-user",
            # The documented SDK path names the dataset's ingestion source, which strict
            # DataHub releases require (docs/datahub-privileges.md).
            ingestion_source=kw.pop("ingestion_source", source_urn(self.executor_id, dataset)),
            **kw,
        )
        client = self.datahub()
        try:
            client.write_request(request)
        finally:
            client.close()
        return request

    def wait_status(self, run_id: str, statuses: set[str], timeout: float = 30.0) -> Any:
        client = self.datahub()
        deadline = time.monotonic() + timeout
        try:
            while True:
                result = client.read_result(run_id)
                if result is not None and result.status in statuses:
                    return result
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"run {run_id}: status {result.status if result else None}, wanted {statuses}"
                    )
                time.sleep(0.1)
        finally:
            client.close()


@pytest.fixture
def env(stack: Any) -> Env:
    suffix = uuid.uuid4().hex[:8]
    functions = {"sip": f"earnings-{suffix}", "poly": f"polygon-{suffix}"}
    for name in functions.values():
        stack.moto.create_lambda(name)
    mapping = {
        "targets": {
            "earnings": {
                "function": functions["sip"],
                "label": "Earnings loader",
                "payload": {"layer": "bronze"},
            },
            "polygon": {"function": functions["poly"], "label": "Polygon loader"},
        },
        "rules": [{"dataset": SIP, "target": "earnings"}, {"dataset": POLY, "target": "polygon"}],
    }
    users = {
        "alice": f"alice-{suffix}",  # may run ingestion
        "bob": f"bob-{suffix}",  # signed in, no privilege
    }
    stack.gms.add_token(users["alice"], "urn:li:corpuser:alice", "alice", manage_ingestion=True)
    stack.gms.add_token(users["bob"], "urn:li:corpuser:bob", "bob", manage_ingestion=False)
    return Env(stack, f"lt-test-{suffix}", f"lt-test-{suffix}", functions, mapping, users)


class RunningConsumer:
    def __init__(self, app: ConsumerApp) -> None:
        self.app = app
        self.registry = app.metrics.registry
        self.thread = threading.Thread(target=app.run, name="consumer-under-test", daemon=True)
        self.thread.start()

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return value or 0.0

    def wait_assigned(self, timeout: float = 30.0) -> None:
        """Until it holds MCL partitions and fetches every partition it holds (as /readyz
        requires: runner.fetching)."""
        deadline = time.monotonic() + timeout
        while not (self.app.runner.assignment and self.app.runner.fetching):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consumer got no partitions, or does not fetch them all: "
                    f"{self.app.runner.assignment}, {self.app.runner.unfetched} not fetched yet"
                )
            time.sleep(0.05)

    def wait_warm(self, timeout: float = 30.0) -> None:
        """Until its warm-up is done (warm.py), as /readyz requires in production."""
        if not self.app.warmup.wait(timeout):
            raise AssertionError(f"consumer not warm: {self.app.warmup.status()[1]}")

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until it has caught up with the topic (replaying earlier tests' records) and no run is in flight."""
        deadline = time.monotonic() + timeout
        last = -1.0
        while True:
            received = self.metric(
                "lambda_trigger_consumer_received_messages_total",
                {"topic": self.app.settings.topic},
            )
            lag = sum(
                s.value
                for m in self.registry.collect()
                if m.name == "lambda_trigger_consumer_lag_messages"
                for s in m.samples
            )
            if (
                received == last
                and lag == 0
                and not self.app.driver.busy()
                and not self.app.view.size()
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consumer did not become idle: received {received} (was {last}), "
                    f"lag {lag}, busy {self.app.driver.busy()}, open {self.app.view.size()}"
                )
            last = received
            time.sleep(5.5)  # the lag gauge is refreshed every 5 s

    def stop(self, timeout: float = 60.0) -> None:
        self.app.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "consumer did not stop"


@pytest.fixture
def start_consumer(env: Env) -> Iterator[Callable[..., RunningConsumer]]:
    started: list[RunningConsumer] = []

    def start(
        *,
        max_inflight: int = 4,
        shutdown_grace_seconds: float = 30.0,
        driver_config: DriverConfig | None = None,
        wait: bool = True,
        **settings_overrides: Any,
    ) -> RunningConsumer:
        settings = ConsumerSettings(
            bootstrap_servers=env.stack.kafka_bootstrap,
            schema_registry_url=env.gms.schema_registry_url,
            group_id=env.group_id,
            dead_letter_topic=f"dlq-{env.executor_id}",
            runs_topic=f"runs-{env.executor_id}",
            max_inflight=max_inflight,
            http_host="127.0.0.1",
            http_port=0,
            commit_interval_seconds=0.2,
            shutdown_grace_seconds=shutdown_grace_seconds,
            auto_offset_reset="earliest",
            **settings_overrides,
        )
        app = ConsumerApp(
            settings,
            env.datahub_settings(),
            env.mapping_settings(),
            registry=CollectorRegistry(),
            driver_config=driver_config,
        )
        running = RunningConsumer(app)
        started.append(running)
        if wait:
            running.wait_assigned()
            running.wait_warm()
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


@pytest.fixture
def api(env: Env) -> Iterator[TestClient]:
    app = create_app(
        ApiSettings(),
        env.datahub_settings(),
        env.mapping_settings(),
        registry=CollectorRegistry(),
    )
    with TestClient(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
