"""Invoker.warm against moto in server mode (issue 25): after it, a run's AWS calls are the
run's own (Invoke, StartExecution), through clients that already exist."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from devstack.aws import MotoServer
from lambda_trigger_consumer.invoke import Invoker
from lambda_trigger_consumer.ledger import Target

pytestmark = pytest.mark.integration


def _target(kind: str, **kw: Any) -> Target:
    return Target(kind=kind, key=kind, label=kind, matched_by="test", **kw)


def _observe(invoker: Invoker) -> list[str]:
    """The API calls every existing client makes from now on (botocore's own event hook)."""
    calls: list[str] = []
    for client in invoker._clients.values():
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    return calls


def test_after_warm_a_run_makes_only_its_own_calls(moto: MotoServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    moto.create_lambda(f"sync-{suffix}", timeout=45)
    moto.create_lambda(f"event-{suffix}")
    machine = moto.create_state_machine(f"flow-{suffix}")
    sync = _target("lambda", function=f"sync-{suffix}")
    event = _target("lambda-event", function=f"event-{suffix}")
    flow = _target("stepfunctions", state_machine_arn=machine)
    missing = _target("lambda", function=f"missing-{suffix}")  # refused: still warm

    invoker = Invoker("us-east-1")
    invoker.warm([sync, event, flow, missing])
    assert invoker.function_timeout(sync) == 45
    # lambda for reads and Event invokes (60 s), lambda for sync-* (45 + 30), lambda for a
    # function whose timeout is unknown (900 + 30), stepfunctions
    keys = set(invoker._clients)
    assert keys == {
        ("lambda", "us-east-1", 60),
        ("lambda", "us-east-1", 75),
        ("lambda", "us-east-1", 930),
        ("stepfunctions", "us-east-1", 60),
    }

    calls = _observe(invoker)
    assert invoker.invoke(sync, {"runId": "r1"}, "r1").outcome == "success"
    assert invoker.invoke(event, {"runId": "r2"}, "r2").outcome == "started"
    assert invoker.invoke(flow, {"runId": "r3"}, f"r3-{suffix}").outcome == "started"
    assert calls == ["Invoke", "Invoke", "StartExecution"]
    assert set(invoker._clients) == keys  # no client built on a run's path


def test_a_refresh_reads_only_timeouts_that_are_old(moto: MotoServer) -> None:
    name = f"sync-{uuid.uuid4().hex[:8]}"
    moto.create_lambda(name, timeout=20)
    target = _target("lambda", function=name)
    invoker = Invoker("us-east-1")
    invoker.warm([target])
    calls = _observe(invoker)
    invoker.warm([target])  # keep-warm pass: timeout fresh, one call to keep the connection
    assert calls == ["GetFunctionConfiguration"]
    invoker.warm([target], refresh_after=0.0)  # timeout due: read again, then the touch
    assert calls == ["GetFunctionConfiguration"] * 3
