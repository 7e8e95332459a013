"""A run longer than a NAT-like idle timeout still ends SUCCESS: the whole consumer (Kafka,
the GMS double, moto) with its AWS traffic through devstack.idle_proxy."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from devstack.idle_proxy import IdleProxy
from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import ConsumerSettings, DataHubSettings, MappingSettings
from lambda_trigger.source_urns import source_urn
from lambda_trigger_consumer.app import ConsumerApp

pytestmark = pytest.mark.integration

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
IDLE_TIMEOUT = 3.0
FUNCTION_SECONDS = 5.0


@pytest.fixture
def proxy(stack: Any) -> Iterator[IdleProxy]:
    with IdleProxy(stack.moto.host, stack.moto.port, idle_timeout=IDLE_TIMEOUT) as p:
        yield p


def test_a_run_longer_than_the_idle_timeout_ends_success(
    stack: Any, proxy: IdleProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in stack.moto.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # the consumer reaches AWS via the "NAT"
    suffix = uuid.uuid4().hex[:8]
    function, executor = f"long-{suffix}", f"lt-long-{suffix}"
    stack.moto.create_lambda(function, timeout=10)
    stack.moto.queue_result(function, payload={"rows": 7}, delay_seconds=FUNCTION_SECONDS)
    datahub = DataHubSettings(
        gms_url=stack.gms.url,
        gms_token=stack.gms.admin_token,
        executor_id=executor,
        timeout_seconds=5.0,
    )
    app = ConsumerApp(
        ConsumerSettings(
            bootstrap_servers=stack.kafka_bootstrap,
            schema_registry_url=stack.gms.schema_registry_url,
            group_id=executor,
            dead_letter_topic=f"dlq-{executor}",
            http_host="127.0.0.1",
            http_port=0,
            aws_keepalive_seconds=1,
        ),
        datahub,
        MappingSettings(
            mapping_inline=json.dumps(
                {"rules": [{"dataset": SIP, "target": {"function": function}}]}
            ),
            region="us-east-1",
        ),
        registry=CollectorRegistry(),
    )
    thread = threading.Thread(target=app.run, name="consumer-under-test", daemon=True)
    thread.start()
    client = DataHubClient(datahub)
    try:
        request = RunRequest(
            run_id=new_run_id(),
            dataset_urn=SIP,
            executor_id=executor,
            source_type=SourceType.SDK.value,
            requested_at_ms=now_ms(),
            actor_urn="urn:li:corpuser:sdk-user",
            ingestion_source=source_urn(executor, SIP),
        )
        client.write_request(request)
        deadline = time.monotonic() + 90
        while True:
            result = client.read_result(request.run_id)
            if result is not None and result.status in ("SUCCESS", "FAILURE"):
                break
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.2)
        assert result.status == "SUCCESS", result.report
        assert proxy.connections >= 1 and proxy.cut == 0
    finally:
        client.close()
        app.stop()
        thread.join(60)
