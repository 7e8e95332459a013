"""Issue 24: AWS calls under load. Throttling is retried with jittered backoff and then
handed back as transient (never a failed run); Step Functions polls follow the expected
duration and a rate bound; every call is counted by API.

Clients are real botocore clients answered by botocore's own Stubber (no network)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.stub import Stubber
from prometheus_client import CollectorRegistry

from lambda_trigger_consumer import invoke as invoke_module
from lambda_trigger_consumer.aws_calls import AwsTransient, CallCounter, backoff, jittered
from lambda_trigger_consumer.invoke import Invoker
from lambda_trigger_consumer.ledger import Target
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.poll_plan import PollPlan

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:flow"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:flow:run-1"


def test_backoff_is_full_jitter_under_an_exponential_bound() -> None:
    rng = random.Random(7)
    for attempt in range(1, 10):
        bound = min(5.0, 0.2 * 2**attempt)
        waits = [backoff(attempt, rng=rng) for _ in range(200)]
        assert all(0.0 <= w <= bound for w in waits)
        assert max(waits) > bound / 2 and min(waits) < bound / 2  # spread, not one value
    assert all(8.0 <= jittered(10.0, rng=rng) <= 12.0 for _ in range(100))


def test_polls_follow_the_expected_duration_and_stay_under_the_rate() -> None:
    plan = PollPlan(max_rate=1000.0, rng=random.Random(1))
    # Unknown target: 1 s, 2 s, 4 s ... (each +-10 %).
    assert 0.9 <= plan.next_delay("a", "flow", 1.0) <= 1.1
    assert 1.8 <= plan.next_delay("a", "flow", 2.0) <= 2.2
    plan.finished("a", "flow", 120.0)
    assert plan.expected("flow") == 120.0
    # A new run of a target known to take 2 minutes: first asked about near its end.
    first = plan.next_delay("b", "flow", 1.0)
    assert 0.9 * (0.95 * 120 - 1) <= first <= 1.1 * (0.95 * 120 - 1)
    plan.finished("b", "flow", 60.0)
    assert plan.expected("flow") == pytest.approx(0.7 * 120 + 0.3 * 60)

    slow = PollPlan(max_rate=2.0, rng=random.Random(2))
    for n in range(100):
        slow.next_delay(f"run-{n}", "other", 1.0)
    # 100 executions at 2 calls a second: none is asked about more than every 50 s.
    assert slow.next_delay("run-0", "other", 5.0) >= 0.9 * 100 / 2.0
    assert slow.tracked() == 100
    slow.forget("run-0")
    assert slow.tracked() == 99


def test_forgotten_runs_stop_counting_towards_the_rate() -> None:
    now = [0.0]
    plan = PollPlan(max_rate=1.0, rng=random.Random(3), clock=lambda: now[0])
    for n in range(10):
        plan.next_delay(f"gone-{n}", "t", 1.0)  # their partition moved elsewhere
    now[0] = 10_000.0
    assert plan.next_delay("live", "t", 1.0) <= 1.1
    assert plan.tracked() == 1


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invoke_module, "backoff", lambda attempt: 0.0)


def _sfn(invoker: Invoker) -> Any:
    return invoker._client("stepfunctions", "us-east-1")


def _throttled(stub: Stubber) -> None:
    stub.add_client_error(
        "describe_execution",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
    )


def test_a_throttled_describe_is_retried_then_handed_back_as_transient(
    no_sleep: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    metrics = ConsumerMetrics(CollectorRegistry())
    invoker = Invoker(
        "us-east-1", throttle_retries=2, calls=CallCounter(metrics.aws_calls, metrics.aws_throttles)
    )
    target = Target(
        kind="stepfunctions", key="flow", label="Flow", matched_by="test", state_machine_arn=ARN
    )
    with Stubber(_sfn(invoker)) as stub:
        _throttled(stub)
        stub.add_response(
            "describe_execution",
            {
                "executionArn": EXECUTION,
                "stateMachineArn": ARN,
                "status": "RUNNING",
                "startDate": "2026-01-01T00:00:00Z",
            },
        )
        assert invoker.describe_execution(target, EXECUTION).status == "RUNNING"
        for _ in range(3):  # the first try and 2 retries, all throttled
            _throttled(stub)
        with pytest.raises(AwsTransient):
            invoker.describe_execution(target, EXECUTION)
    registry = metrics.registry
    assert (
        registry.get_sample_value(
            "lambda_trigger_consumer_aws_calls_total", {"api": "DescribeExecution"}
        )
        == 5
    )
    assert (
        registry.get_sample_value(
            "lambda_trigger_consumer_aws_throttles_total", {"api": "DescribeExecution"}
        )
        == 4
    )


def test_the_clients_pool_has_a_connection_for_every_thread_that_may_call() -> None:
    # botocore's default of 10 would open and drop a connection per call beyond 10.
    invoker = Invoker("us-east-1", max_pool_connections=24)
    assert invoker._client("lambda", None).meta.config.max_pool_connections == 24
    assert invoker._client("stepfunctions", None).meta.config.max_pool_connections == 24
