"""Lineage triggers against hostile records (issue 21 with issue 19's rule: anything another
party can write is hostile until checked), on the real broker, GMS double and moto server:

- a forged trigger intent in the run ledger (unsigned) starts nothing;
- undecodable or ill-typed `operation` records on DataHub's timeseries MCL topic are skipped
  (log, count, dead letter) and do not stop the reader: later operations still trigger;
- an `operation` dated in the far future does not silence its upstream's later operations;
- an `upstreamLineage` of a shape GMS would never write does not stop the lineage watcher.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from integration.test_triggers import (
    create,
    dataset,
    functions,
    lineage,
    operation,
    triggers_ready,
)

from devstack.gms_double.mcl import MclCodec
from lambda_trigger.contract import now_ms
from lambda_trigger_consumer.ledger import partition_for, trigger_record

from .conftest import Env, RunningConsumer
from .test_kafka_trust import PARTITIONS, REJECTED, _dead_letters, _headers, _wait_metric

pytestmark = pytest.mark.integration

TIMESERIES = "MetadataChangeLog_Timeseries_v1"
VERSIONED = "MetadataChangeLog_Versioned_v1"
DECODE_FAILURES = "lambda_trigger_consumer_decode_failures_total"


def _triggered_pair(env: Env) -> tuple[str, str, str]:
    """An upstream and a downstream whose run is triggered by the upstream's operations."""
    up, down = dataset(f"up_{env.executor_id}"), dataset(f"down_{env.executor_id}")
    fn = functions(env, "down")["down"]
    create(env, up)
    lineage(env, down, up)
    env.mapping = {
        "targets": {"down": {"function": fn}},
        "rules": [
            {
                "dataset": down,
                "target": "down",
                "trigger": {
                    "onUpstream": ["operation"],
                    "debounceSeconds": 1,
                    "cooldownSeconds": 0,
                },
            }
        ],
    }
    return up, down, fn


def _produce(env: Env, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
    producer = Producer({"bootstrap.servers": env.stack.kafka_bootstrap})
    errors: list[Any] = []
    kwargs: dict[str, Any] = {"partition": partition} if partition is not None else {}
    producer.produce(
        topic, key=key, value=value, on_delivery=lambda e, _m: errors.append(e), **kwargs
    )
    producer.flush(30)
    assert errors == [None], errors


def _operation_mcl(urn: str, aspect: Any, name: str = "operation") -> bytes:
    """A timeseries MCL as GMS frames it (the GMS double's codec), carrying `aspect` as is
    (a str is taken as the aspect's JSON text)."""
    text = aspect if isinstance(aspect, str) else json.dumps(aspect)
    return MclCodec().encode(
        {
            "auditHeader": None,
            "entityType": "dataset",
            "entityUrn": urn,
            "entityKeyAspect": None,
            "changeType": "UPSERT",
            "aspectName": name,
            "aspect": {"value": text.encode(), "contentType": "application/json"},
            "systemMetadata": None,
            "headers": None,
            "previousAspectValue": None,
            "previousSystemMetadata": None,
            "created": {"time": now_ms(), "actor": "urn:li:corpuser:mallory"},
        }
    )


def _runs_of(env: Env, fn: str) -> list[Any]:
    return env.moto.invocations(fn)


def test_a_forged_trigger_intent_starts_nothing(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    up, down, fn = _triggered_pair(env)
    consumer = start_consumer()
    triggers_ready(consumer)
    key = f"trigger-intent:{down}|operation|{up}|{now_ms()}"
    intent = {
        "dataset": down,
        "upstream": up,
        "event": "operation",
        "event_ms": now_ms(),
        "chain": [],
        "upstream_run": None,
    }
    value = trigger_record("trigger_intent", key, down, intent=intent)
    _produce(
        env, f"runs-{env.executor_id}", key.encode(), value, partition_for(down, key, PARTITIONS)
    )

    _wait_metric(consumer, REJECTED, {"reason": "unsigned"}, 1)
    time.sleep(4)  # debounce (1 s) and the decider's look would have fired it by now
    assert _runs_of(env, fn) == []

    operation(env, up, now_ms())  # a real one still triggers
    env.moto.wait_for_invocations(fn, count=1, timeout=60)


def test_hostile_operation_records_are_skipped_and_a_future_date_silences_nothing(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    up, down, fn = _triggered_pair(env)
    consumer = start_consumer()
    triggers_ready(consumer)
    app: Any = consumer.app
    bad_lineage = _operation_mcl(down, {"upstreams": [1, "x", None]}, "upstreamLineage")
    _produce(env, VERSIONED, down.encode(), bad_lineage)
    key = up.encode()
    _produce(env, TIMESERIES, key, b"\x00\x00\x00\x00\x01not avro at all")
    _produce(env, TIMESERIES, key, _operation_mcl(up, {"timestampMillis": "yesterday"}))
    _produce(env, TIMESERIES, key, _operation_mcl(up, {"timestampMillis": {"$gt": 1}}))
    nested = '{"timestampMillis": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}"
    _produce(env, TIMESERIES, key, _operation_mcl(up, nested))
    # Dated 9999-12-31: before the fix, every later operation of `up` counted as already seen.
    _produce(env, TIMESERIES, key, _operation_mcl(up, {"timestampMillis": 253_402_300_799_000}))

    env.moto.wait_for_invocations(fn, count=1, timeout=60)  # the future-dated one, as of now
    (first,) = _runs_of(env, fn)
    env.wait_status(first.payload["runId"], {"SUCCESS"})
    assert app.operations.thread.is_alive()
    assert app.lineage_watcher.thread.is_alive()
    failures = sum(
        consumer.metric(DECODE_FAILURES, {"reason": r})
        for r in ("framing", "schema", "avro", "aspect", "unhandled")
    )
    assert failures >= 3
    letters = _dead_letters(
        env, 3, where=lambda m: _headers(m).get("lambda-trigger.source.topic") == TIMESERIES
    )
    assert len(letters) >= 3

    time.sleep(1.5)  # a real operation, written after the forged one was read
    operation(env, up, now_ms())
    env.moto.wait_for_invocations(fn, count=2, timeout=60)
    assert len(_runs_of(env, fn)) == 2
