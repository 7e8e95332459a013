"""The first run after a start makes no first call of its kind (issue 25, the first click):
after the consumer's warm-up, botocore has already done its first-call work for the run's own
operation (Invoke, StartExecution) without anything reaching AWS (aws_rehearsal.py), and the
threads a run passes through exist (RunDriver.warm, FairExecutor.prestart)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from devstack.aws import MotoServer
from lambda_trigger.contract import SourceType
from lambda_trigger_consumer.aws_calls import CallCounter
from lambda_trigger_consumer.invoke import WARMUP_NAME, Invoker, execution_arn
from lambda_trigger_consumer.ledger import Target
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.step_queue import FairExecutor, priority_of

pytestmark = pytest.mark.integration


def _target(kind: str, **kw: Any) -> Target:
    return Target(kind=kind, key=kind, label=kind, matched_by="test", **kw)


def _first_call_work(client: Any, operation: str) -> list[str]:
    """What botocore still has to build on the first call of `operation` on `client`: its
    operation model (ServiceModel.operation_model is cached per instance) and the handler
    lists of the operation's events (HierarchicalEmitter caches each event name's lookup)."""
    missing = []
    if ("operation_model", (operation,)) not in client.meta.service_model._instance_cache:
        missing.append("operation model")
    service = client.meta.service_model.service_id.hyphenize()
    lookups = client.meta.events._emitter._lookup_cache
    for event in ("before-parameter-build", "before-call", "before-send", "needs-retry"):
        if f"{event}.{service}.{operation}" not in lookups:
            missing.append(event)
    return missing


def test_after_warm_the_runs_call_is_no_first_call_and_nothing_reached_aws(
    moto: MotoServer,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    moto.create_lambda(f"sync-{suffix}", timeout=45)
    moto.create_lambda(f"event-{suffix}")
    machine = moto.create_state_machine(f"flow-{suffix}")
    sync = _target("lambda", function=f"sync-{suffix}")
    event = _target("lambda-event", function=f"event-{suffix}")
    flow = _target("stepfunctions", state_machine_arn=machine)
    metrics = ConsumerMetrics(CollectorRegistry())
    invoker = Invoker("us-east-1", calls=CallCounter(metrics.aws_calls, metrics.aws_throttles))

    invoker.warm([sync, event, flow])

    for target, service, operation in (
        (sync, "lambda", "Invoke"),
        (event, "lambda", "Invoke"),
        (flow, "stepfunctions", "StartExecution"),
    ):
        client = invoker._client(service, None, invoker.invoke_read_timeout(target))
        assert _first_call_work(client, operation) == [], (target.kind, operation)
    # Rehearsed, not sent: moto saw no Invoke and no execution; no call was counted.
    assert moto.invocations(f"sync-{suffix}") == []
    assert moto.invocations(f"event-{suffix}") == []
    assert invoker.describe_execution(flow, execution_arn(flow, WARMUP_NAME)).exists is False
    counted = {
        sample.labels["api"]
        for sample in metrics.aws_calls.collect()[0].samples
        if sample.name.endswith("_total") and sample.value > 0
    }
    assert "Invoke" not in counted and "StartExecution" not in counted
    assert "GetFunctionConfiguration" in counted  # the warm-up's real calls still count

    # The runs' own calls work as ever through the rehearsed clients, and count.
    assert invoker.invoke(sync, {"runId": "r1"}, "r1").outcome == "success"
    assert invoker.invoke(event, {"runId": "r2"}, "r2").outcome == "started"
    assert invoker.invoke(flow, {"runId": "r3"}, f"r3-{suffix}").outcome == "started"
    assert [i.invocation_type for i in moto.invocations(f"sync-{suffix}")] == ["RequestResponse"]
    assert metrics.aws_calls.labels(api="Invoke")._value.get() == 2


def test_a_prestarted_kept_thread_takes_the_first_task_and_outlives_idleness() -> None:
    pool = FairExecutor(4, name=f"warm-{uuid.uuid4().hex[:6]}", idle_seconds=0.05, keep_threads=1)
    pool.prestart()
    assert pool.threads() == 1  # made before any task
    before = {t.ident for t in threading.enumerate()}
    ran_on: list[str] = []
    pool.submit(
        lambda: ran_on.append(threading.current_thread().name),
        priority=priority_of(SourceType.API.value),
        dataset="d",
    ).result(5)
    assert ran_on and ran_on[0].startswith("warm-")
    assert {t.ident for t in threading.enumerate()} <= before | {None}  # no thread made for it
    time.sleep(0.3)  # idle far longer than idle_seconds
    assert pool.threads() == 1
    pool.shutdown()
