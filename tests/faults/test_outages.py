"""Fault trials on the shared pieces: a redelivered request, a Kafka broker restart while runs
are being claimed and finished. Each ends with every run final, each run invoked once, and
nothing dead-lettered."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from lambda_trigger.settings import ConsumerSettings
from tests.integration.conftest import POLY, SIP, Env

pytestmark = pytest.mark.integration
MCL_TOPIC: str = ConsumerSettings.model_fields["topic"].default


def _records_with_key(bootstrap: str, topic: str, key: bytes) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([topic])
    found: list[Any] = []
    # Until the record is found (one key: one partition) and a moment more for its repeats.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for msg in consumer.consume(500, 1.0):
            if msg.error() is None and msg.key() == key:
                found.append(msg)
                deadline = min(deadline, time.monotonic() + 3)
    consumer.close()
    return found


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end: records from here on are this test's."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex[:8]}"}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def _dead_letters(bootstrap: str, topic: str, since: dict[int, int]) -> int:
    """Dead letters of records written after `since` (the MCL topic is shared by the test
    session: a consumer replaying it also dead-letters earlier tests' hostile records)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    count = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for msg in consumer.consume(100, 0.5):
            if msg.error() is not None:
                continue
            headers = dict(msg.headers() or [])
            partition = headers.get("lambda-trigger.source.partition")
            offset = headers.get("lambda-trigger.source.offset")
            if partition is None or offset is None:
                count += 1  # not from an MCL record: this test's
            elif int(offset) >= since.get(int(partition), 0):
                count += 1
    consumer.close()
    return count


def test_a_redelivered_request_is_not_run_again(env: Env, start_consumer: Any) -> None:
    consumer = start_consumer()
    request = env.request(POLY)
    env.wait_status(request.run_id, {"SUCCESS"})
    topic = consumer.app.settings.topic
    (original, *_rest) = _records_with_key(env.stack.kafka_bootstrap, topic, request.urn.encode())
    # The baseline is read before the repeats are produced: the consumer may count the first of
    # them before flush() returns.
    accepted = consumer.metric("lambda_trigger_consumer_accepted_requests_total")
    producer = Producer({"bootstrap.servers": env.stack.kafka_bootstrap})
    for _ in range(3):  # the same request record, delivered again and again
        producer.produce(topic, key=original.key(), value=original.value())
    assert producer.flush(10) == 0
    deadline = time.monotonic() + 30
    while consumer.metric("lambda_trigger_consumer_accepted_requests_total") < accepted + 3:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    consumer.wait_idle()
    assert len(env.moto.invocations(env.functions["poly"])) == 1
    assert env.datahub().read_result(request.run_id).status == "SUCCESS"


def test_broker_restart_while_runs_are_claimed_and_finished(
    env: Env, start_consumer: Any, kafka_broker: Any
) -> None:
    if not hasattr(kafka_broker, "restart"):
        pytest.skip("only the local jar broker can be restarted by the tests")
    since = _end_offsets(env.stack.kafka_bootstrap, MCL_TOPIC)
    runs = []
    for i in range(6):
        dataset, fn = (SIP, env.functions["sip"]) if i % 2 == 0 else (POLY, env.functions["poly"])
        env.moto.queue_result(fn, payload={"i": i}, delay_seconds=1.5)
        runs.append(env.request(dataset))
    consumer = start_consumer(one_active_run=False, sync_margin_seconds=5.0)
    env.wait_status(runs[0].run_id, {"RUNNING", "SUCCESS"}, timeout=60)
    # Down for 8 s while runs are claimed (GMS cannot produce their MCL) and finish.
    kafka_broker.restart(down_seconds=8)
    for run in runs:
        env.wait_status(run.run_id, {"SUCCESS"}, timeout=120)
    invoked = [
        inv.payload["runId"]
        for fn in env.functions.values()
        for inv in env.moto.invocations(fn)
        if isinstance(inv.payload, dict)
    ]
    assert sorted(invoked) == sorted(r.run_id for r in runs)  # each exactly once
    consumer.wait_idle()
    assert _dead_letters(env.stack.kafka_bootstrap, f"dlq-{env.executor_id}", since) == 0
