"""End to end on the local stack: request -> MCL on a real broker -> consumer -> moto Lambda -> status."""

from __future__ import annotations

import io
import json
import struct
import time
from pathlib import Path
from typing import Any

import datahub
import fastavro
import pytest
from confluent_kafka import Consumer, Producer
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import (
    ExecutionRequestInputClass,
    ExecutionRequestSourceClass,
)
from fastapi.testclient import TestClient

from lambda_trigger.contract import DataHubStatus, RunResult, now_ms
from lambda_trigger.runid import new_run_id
from lambda_trigger.source_urns import source_urn
from lambda_trigger_consumer.driver import DriverConfig

from .conftest import POLY, SIP, UNMAPPED, Env, bearer

pytestmark = pytest.mark.integration
TOPIC = "MetadataChangeLog_Versioned_v1"


def _invocations_by_run(env: Env, function: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for inv in env.moto.invocations(function):
        run_id = (inv.payload or {}).get("runId")
        counts[run_id] = counts.get(run_id, 0) + 1
    return counts


def test_button_path_post_invokes_once_and_reaches_success(
    env: Env, api: TestClient, start_consumer: Any
) -> None:
    start_consumer()
    env.moto.queue_result(env.functions["sip"], payload={"rows": 42})
    response = api.post(
        "/api/ingestion/run",
        json={"datasetUrn": SIP, "reason": "late"},
        headers=bearer(env.users["alice"]),
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]

    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    invocations = env.moto.invocations(env.functions["sip"])
    assert len(invocations) == 1
    inv = invocations[0]
    assert inv.invocation_type == "RequestResponse"
    payload = inv.payload
    assert payload["runId"] == run_id
    assert payload["datasetUrn"] == SIP
    assert payload["jobUrn"] is None
    assert payload["reason"] == "late"
    assert payload["requestedBy"] == "urn:li:corpuser:alice"
    assert payload["executionRequestUrn"] == f"urn:li:dataHubExecutionRequest:{run_id}"
    assert isinstance(payload["requestedAt"], int)
    assert payload["layer"] == "bronze"  # the mapping's static field

    assert result.durationMs is not None and result.startTimeMs is not None
    assert '"rows": 42' in (result.report or "")
    report = json.loads(result.structuredReport.serializedValue)
    assert report["requestId"] == inv.request_id and report["statusCode"] == 200
    assert (
        env.functions["sip"] not in (result.report or "") + result.structuredReport.serializedValue
    )

    status = api.get(f"/api/ingestion/runs/{run_id}", headers=bearer(env.users["alice"])).json()
    assert status["state"] == "succeeded" and status["datahubStatus"] == "SUCCESS"
    assert status["durationMs"] == result.durationMs
    assert "Earnings loader succeeded" in status["message"]

    # RUNNING was written before SUCCESS (DataHub's UI shows the run as running meanwhile).
    statuses = [
        (m.aspect or {}).get("status")
        for m in env.gms.mcl_log()
        if m.key.endswith(run_id) and m.aspect_name == "dataHubExecutionRequestResult"
    ]
    assert statuses == ["RUNNING", "SUCCESS"]


def test_function_error_ends_as_failure_with_the_error(env: Env, start_consumer: Any) -> None:
    start_consumer()
    env.moto.queue_result(
        env.functions["poly"], function_error="upstream bucket missing", error_type="KeyError"
    )
    request = env.request(POLY)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "FAILURE"
    assert "the function raised an error (Unhandled" in (result.report or "")
    assert "upstream bucket missing" in (result.report or "")
    details = json.loads(result.structuredReport.serializedValue)
    assert details["functionError"] == "Unhandled" and details["outcome"] == "function_error"


def test_programmatic_trigger_with_the_sdk(
    env: Env, start_consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No api and none of our code on the writing side: the SDK's emitter and classes only."""
    # The writer (alice's token, as an Airflow connection would hold) must be allowed to start
    # runs: the consumer checks writers, not the aspect (lambda_trigger_consumer.authorize).
    monkeypatch.setenv("LAMBDA_TRIGGER_ALLOWED_ACTORS", "urn:li:corpuser:alice")
    start_consumer()
    run_id = f"sdk-{new_run_id()}"
    emitter = DatahubRestEmitter(env.gms.url, token=env.users["alice"])
    emitter.emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=f"urn:li:dataHubExecutionRequest:{run_id}",
            aspect=ExecutionRequestInputClass(
                task="LAMBDA_TRIGGER_RUN",
                args={"datasetUrn": SIP},
                executorId=env.executor_id,
                source=ExecutionRequestSourceClass(
                    type="AIRFLOW", ingestionSource=source_urn(env.executor_id, SIP)
                ),
                requestedAt=now_ms(),
            ),
        )
    )
    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    (inv,) = env.moto.invocations(env.functions["sip"])
    # No actorUrn given: the writer GMS authenticated is the requester.
    assert inv.payload["requestedBy"] == "urn:li:corpuser:alice"


def test_unmapped_and_invalid_requests_fail_with_the_reason(env: Env, start_consumer: Any) -> None:
    start_consumer()
    unmapped = env.request(UNMAPPED)
    missing = env.request("urn:li:dataset:(urn:li:dataPlatform:athena,no.such_table,PROD)")
    result = env.wait_status(unmapped.run_id, {"FAILURE"})
    assert "no ingestion job is mapped" in (result.report or "")
    result = env.wait_status(missing.run_id, {"FAILURE"})
    assert "does not exist in DataHub" in (result.report or "")
    # A request whose datasetUrn is not a dataset at all (only possible outside the api).
    bad_id = new_run_id()
    DatahubRestEmitter(env.gms.url, token=env.gms.admin_token).emit_mcp(
        MetadataChangeProposalWrapper(
            entityUrn=f"urn:li:dataHubExecutionRequest:{bad_id}",
            aspect=ExecutionRequestInputClass(
                task="LAMBDA_TRIGGER_RUN",
                args={"datasetUrn": "urn:li:corpuser:mallory"},
                executorId=env.executor_id,
                source=ExecutionRequestSourceClass(
                    type="SDK", ingestionSource=source_urn(env.executor_id, SIP)
                ),
                requestedAt=now_ms(),
            ),
        )
    )
    result = env.wait_status(bad_id, {"FAILURE"})
    assert "must be a dataset URN" in (result.report or "")
    assert env.moto.invocations(env.functions["sip"]) == []


def test_expired_request_is_not_started(env: Env, start_consumer: Any) -> None:
    start_consumer(driver_config=DriverConfig(max_request_age_seconds=60))
    request = env.request(SIP, requested_at_ms=now_ms() - 3_600_000)
    result = env.wait_status(request.run_id, {"FAILURE"})
    assert "request expired" in (result.report or "")
    assert env.moto.invocations(env.functions["sip"]) == []


def test_request_that_already_has_a_result_is_not_invoked(env: Env, start_consumer: Any) -> None:
    client = env.datahub()
    run_id = new_run_id()
    client.write_result(run_id, RunResult(DataHubStatus.SUCCESS, now_ms(), "done elsewhere", 1))
    client.close()
    consumer = start_consumer()
    from lambda_trigger.contract import RunRequest, SourceType

    request = RunRequest(
        run_id,
        SIP,
        env.executor_id,
        SourceType.SDK.value,
        now_ms(),
        ingestion_source=source_urn(env.executor_id, SIP),
    )
    client = env.datahub()
    client.write_request(request)
    client.close()
    # A second, normal request after it proves the consumer has passed the first one.
    later = env.request(POLY)
    env.wait_status(later.run_id, {"SUCCESS"})
    assert env.moto.invocations(env.functions["sip"]) == []
    assert consumer.metric("lambda_trigger_consumer_accepted_requests_total") >= 2


def test_event_target_without_destination_ends_at_once_honestly(
    env: Env, start_consumer: Any
) -> None:
    """An Event Lambda with no destination to the completion queue: nobody will ever report
    how it went, so the run ends at once, saying exactly that (never RUNNING forever)."""
    env.mapping["targets"]["earnings"]["invocationType"] = "Event"
    start_consumer()
    request = env.request(SIP)
    invs = env.moto.wait_for_invocations(env.functions["sip"], count=1, timeout=30)
    assert invs[0].invocation_type == "Event"
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    details = json.loads(result.structuredReport.serializedValue)
    assert result.status == "SUCCESS"
    assert details["completionTracked"] is False
    assert details["requestId"] == invs[0].request_id
    assert "completion not tracked" in (result.report or "")


def test_slow_lambda_does_not_block_others(env: Env, start_consumer: Any) -> None:
    start_consumer(max_inflight=4)
    env.moto.queue_result(env.functions["sip"], payload="slow", delay_seconds=8)
    slow = env.request(SIP)
    # The two runs sit on different ledger partitions: only once the slow one is claimed (its
    # Lambda call follows at once) does the fast one show anything about blocking.
    env.wait_status(slow.run_id, {"RUNNING"}, timeout=30)
    fast = env.request(POLY)
    env.wait_status(fast.run_id, {"SUCCESS"}, timeout=30)
    slow_result = env.datahub().read_result(slow.run_id)
    assert slow_result is not None and slow_result.status == "RUNNING"  # still in its Lambda
    env.wait_status(slow.run_id, {"SUCCESS"}, timeout=30)


def test_restart_mid_stream_loses_nothing_and_invokes_nothing_twice(
    env: Env, start_consumer: Any
) -> None:
    """Stop the consumer while runs are in flight, without waiting for them (grace 0), and
    restart it: every request ends SUCCESS and every Lambda ran exactly once."""
    runs = []
    for i in range(12):
        dataset, fn = (SIP, env.functions["sip"]) if i % 2 == 0 else (POLY, env.functions["poly"])
        env.moto.queue_result(fn, payload={"i": i}, delay_seconds=0.7)
        runs.append(env.request(dataset))
    first = start_consumer(max_inflight=3, shutdown_grace_seconds=0, one_active_run=False)
    deadline = time.monotonic() + 30
    while first.metric("lambda_trigger_consumer_status_writes_total", {"status": "SUCCESS"}) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.stop()
    assert first.metric("lambda_trigger_consumer_status_writes_total", {"status": "SUCCESS"}) < 12
    second = start_consumer(max_inflight=3, one_active_run=False)
    for run in runs:
        env.wait_status(run.run_id, {"SUCCESS"}, timeout=60)
    counts = {
        **_invocations_by_run(env, env.functions["sip"]),
        **_invocations_by_run(env, env.functions["poly"]),
    }
    assert counts == {run.run_id: 1 for run in runs}
    # The second consumer took the unfinished runs over from the run ledger (the first had
    # recorded every request there before it stopped, so no MCL record came back to it).
    # The last run leaves the ledger view when its tombstone is written, just after its final
    # status is visible in DataHub.
    deadline = time.monotonic() + 10
    while second.metric("lambda_trigger_consumer_open_runs") != 0:
        assert time.monotonic() < deadline, second.metric("lambda_trigger_consumer_open_runs")
        time.sleep(0.05)


def _unrelated_mcl(schema_id: int, urn: str) -> bytes:
    schema_path = Path(datahub.__file__).parent / "metadata" / "schemas" / "MetadataChangeLog.avsc"
    schema = fastavro.parse_schema(json.loads(schema_path.read_text()))
    record = {
        "entityType": "dataset",
        "entityUrn": urn,
        "changeType": "UPSERT",
        "aspectName": "status",
        "aspect": {"value": b'{"removed": false}', "contentType": "application/json"},
        "created": {"time": now_ms(), "actor": "urn:li:corpuser:datahub"},
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return struct.pack(">bI", 0, schema_id) + buf.getvalue()


def _mcl_schema_id(env: Env) -> int:
    """The id GMS frames MCLs with, read off a real record on the topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": env.stack.kafka_bootstrap,
            "group.id": f"peek-{env.executor_id}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([TOPIC])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.value():
                return int(struct.unpack(">bI", msg.value()[:5])[1])
    finally:
        consumer.close()
    raise AssertionError("no MCL on the topic")


def test_unrelated_records_are_discarded_without_decoding(env: Env, start_consumer: Any) -> None:
    env.request(POLY)  # make sure the topic has at least one record to read the schema id from
    schema_id = _mcl_schema_id(env)
    consumer = start_consumer()
    consumer.wait_idle()
    discarded = consumer.metric(
        "lambda_trigger_consumer_key_discarded_messages_total", {"topic": TOPIC}
    )
    decoded = consumer.metric("lambda_trigger_consumer_decoded_messages_total", {"topic": TOPIC})
    producer = Producer({"bootstrap.servers": env.stack.kafka_bootstrap})
    value = _unrelated_mcl(schema_id, "urn:li:dataset:(urn:li:dataPlatform:hive,noise,PROD)")
    for i in range(500):
        producer.produce(
            TOPIC, key=f"urn:li:dataset:(urn:li:dataPlatform:hive,noise_{i},PROD)", value=value
        )
    producer.flush()
    request = env.request(SIP)
    for i in range(500):
        producer.produce(
            TOPIC, key=f"urn:li:dataset:(urn:li:dataPlatform:hive,noise_b{i},PROD)", value=value
        )
    producer.flush()
    env.wait_status(request.run_id, {"SUCCESS"})
    consumer.wait_idle()
    discarded_delta = (
        consumer.metric("lambda_trigger_consumer_key_discarded_messages_total", {"topic": TOPIC})
        - discarded
    )
    decoded_delta = (
        consumer.metric("lambda_trigger_consumer_decoded_messages_total", {"topic": TOPIC})
        - decoded
    )
    assert discarded_delta >= 1000
    # Decoded: only this request's own records. GMS writes the new entity's key aspect with
    # the first write (DefaultAspectsUtil), so: key, input, RUNNING, SUCCESS.
    assert decoded_delta == 4


def test_malformed_record_is_dead_lettered_and_skipped(env: Env, start_consumer: Any) -> None:
    consumer = start_consumer()
    producer = Producer({"bootstrap.servers": env.stack.kafka_bootstrap})
    key = f"urn:li:dataHubExecutionRequest:{new_run_id()}"
    producer.produce(TOPIC, key=key, value=b"\x07not avro at all")
    producer.flush()
    request = env.request(SIP)
    env.wait_status(request.run_id, {"SUCCESS"})
    assert (
        consumer.metric("lambda_trigger_consumer_decode_failures_total", {"reason": "framing"}) >= 1
    )
    assert (
        consumer.metric("lambda_trigger_consumer_dead_letters_total", {"reason": "decode_framing"})
        >= 1
    )
    dlq = Consumer(
        {
            "bootstrap.servers": env.stack.kafka_bootstrap,
            "group.id": f"dlq-reader-{env.executor_id}",
            "auto.offset.reset": "earliest",
        }
    )
    dlq.subscribe([f"dlq-{env.executor_id}"])
    try:
        deadline = time.monotonic() + 20
        found = None
        while found is None and time.monotonic() < deadline:
            msg = dlq.poll(0.5)
            if msg is not None and not msg.error() and msg.key() == key.encode():
                found = msg
    finally:
        dlq.close()
    assert found is not None, "no dead-letter record"
    assert found.value() == b"\x07not avro at all"
    headers = dict(found.headers() or [])
    assert headers["lambda-trigger.reason"] == b"decode_framing"
    assert headers["lambda-trigger.source.topic"] == TOPIC.encode()


def test_datahub_outage_delays_but_does_not_lose_a_run(env: Env, start_consumer: Any) -> None:
    consumer = start_consumer()
    request = env.request(SIP)
    env.gms.set_down(True)
    time.sleep(2)
    env.gms.set_down(False)
    result = env.wait_status(request.run_id, {"SUCCESS"}, timeout=60)
    assert result.status == "SUCCESS"
    assert len(env.moto.invocations(env.functions["sip"])) == 1
    assert (
        consumer.metric(
            "lambda_trigger_consumer_invocations_total",
            {"target": "Earnings loader", "outcome": "success"},
        )
        == 1
    )


def test_consumer_health_endpoints(env: Env, start_consumer: Any) -> None:
    import httpx

    consumer = start_consumer()
    port = consumer.app.health.port
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    assert ready.status_code == 200 and ready.json()["assignedPartitions"] >= 1
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert f'lambda_trigger_consumer_info{{executor_id="{env.executor_id}"' in metrics
