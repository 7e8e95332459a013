"""Issue 24: a Step Functions run ends when its "Execution Status Change" event reaches the
completion queue through an EventBridge rule, with no DescribeExecution; a forged event for
another execution does not end it. Real Kafka, GMS double, moto server (its EventBridge delivers
to its SQS; its Step Functions emit no events, so the test puts the event AWS would emit)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from lambda_trigger.sfn_events_rule import setup as sfn_events_setup

from .conftest import SIP, Env

pytestmark = pytest.mark.integration
DESCRIBES = ("lambda_trigger_consumer_aws_calls_total", {"api": "DescribeExecution"})


def _state_machine(env: Env) -> str:
    arn = str(env.moto.create_state_machine(f"sm-{uuid.uuid4().hex[:8]}"))
    env.mapping["targets"]["earnings"] = {
        "type": "stepfunctions",
        "stateMachineArn": arn,
        "label": "Earnings pipeline",
    }
    return arn


def _rule_to(env: Env, machine: str, queue_arn: str) -> None:
    """The rule `iam-policy --sfn-events-rule` prints, created in moto's EventBridge."""
    snippet = sfn_events_setup([machine], queue_arn, rule_name=f"lt-{uuid.uuid4().hex[:8]}")
    events = env.moto.client("events")
    rule = snippet["rule"]
    events.put_rule(
        Name=rule["Name"], EventPattern=json.dumps(rule["EventPattern"]), State=rule["State"]
    )
    events.put_targets(Rule=rule["Name"], Targets=[snippet["target"]])
    sqs = env.moto.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": json.dumps(snippet["queuePolicy"])}
    )


def _execution(env: Env, machine: str, run_id: str) -> dict[str, Any]:
    """The run's execution, as the test (not the consumer) sees it in moto."""
    deadline = time.monotonic() + 30
    while True:
        for execution in env.moto.executions(machine):
            if execution["name"] == run_id:
                described = env.moto.sfn_client().describe_execution(
                    executionArn=execution["executionArn"]
                )
                return dict(described)
        assert time.monotonic() < deadline, "the consumer never started the execution"
        time.sleep(0.1)


def _detail(execution: dict[str, Any], status: str, **changes: Any) -> dict[str, Any]:
    """The event's detail as Step Functions writes it (docs: "Step Functions EventBridge
    events"): dates in epoch milliseconds, input and output as JSON strings."""
    start_ms = round(execution["startDate"].timestamp() * 1000)
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": status,
        "startDate": start_ms,
        "stopDate": start_ms + 4200,
        "input": execution["input"],
        "inputDetails": {"included": True},
        "output": json.dumps({"rows": 42}),
        "outputDetails": {"included": True},
    }
    detail.update(changes)
    return detail


def _put_event(env: Env, detail: dict[str, Any]) -> None:
    """Through moto's EventBridge: the rule matches it and sends it to the queue."""
    answer = env.moto.client("events").put_events(
        Entries=[
            {
                "Source": "aws.states",
                "DetailType": "Step Functions Execution Status Change",
                "Resources": [detail["executionArn"]],
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def _wait_metric(consumer: Any, name: str, labels: dict[str, str], value: float) -> None:
    deadline = time.monotonic() + 30
    while consumer.metric(name, labels) < value:
        assert time.monotonic() < deadline, f"{name}{labels} stayed below {value}"
        time.sleep(0.1)


def test_a_step_functions_run_ends_on_its_status_event_without_polling(
    env: Env, start_consumer: Any
) -> None:
    machine = _state_machine(env)  # no canned outcome: moto keeps the execution RUNNING
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    _rule_to(env, machine, queue_arn)
    # keep_warm off: its periodic warm-up asks Step Functions about a never-started execution.
    consumer = start_consumer(completion_queue_url=url, sfn_status_events=True, keep_warm_seconds=0)
    described = consumer.metric(*DESCRIBES)  # the warm-up's own call, if any
    request = env.request(SIP)
    env.wait_status(request.run_id, {"RUNNING"})
    execution = _execution(env, machine, request.run_id)
    # RUNNING first (the rule does not match it: never delivered), then the final one, twice.
    _put_event(env, _detail(execution, "RUNNING", stopDate=None, output=None))
    _put_event(env, _detail(execution, "SUCCEEDED"))
    _put_event(env, _detail(execution, "SUCCEEDED"))
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE", "TIMEOUT"}, timeout=60)
    assert result.status == "SUCCESS"
    details = json.loads(result.structuredReport.serializedValue)
    assert details["outcome"] == "SUCCEEDED" and '"rows": 42' in details["output"]
    # Ended by the event: StartExecution, and no DescribeExecution at all.
    assert consumer.metric(*DESCRIBES) == described
    assert (
        consumer.metric("lambda_trigger_consumer_aws_calls_total", {"api": "StartExecution"}) == 1
    )
    # The duplicate is read and dropped; nothing reopens the run.
    _wait_metric(
        consumer, "lambda_trigger_consumer_completion_records_total", {"result": "matched"}, 2
    )
    consumer.wait_idle()
    assert env.wait_status(request.run_id, {"SUCCESS"}).status == "SUCCESS"


def test_a_forged_event_for_another_execution_does_not_end_the_run(
    env: Env, start_consumer: Any
) -> None:
    machine = _state_machine(env)
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    _rule_to(env, machine, queue_arn)
    consumer = start_consumer(completion_queue_url=url, sfn_status_events=True)
    request = env.request(SIP)
    env.wait_status(request.run_id, {"RUNNING"})
    execution = _execution(env, machine, request.run_id)
    # Whoever may send to the queue (a mapped Lambda's role does, for its destinations) names
    # our run in an execution of its own state machine.
    other = execution["stateMachineArn"].rsplit(":", 1)[0] + ":not-ours"
    forged = _detail(
        execution,
        "SUCCEEDED",
        stateMachineArn=other,
        executionArn=f"{other.replace(':stateMachine:', ':execution:')}:{request.run_id}",
    )
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-07T15:00:00Z",
        "region": "us-east-1",
        "resources": [forged["executionArn"]],
        "detail": forged,
    }
    env.moto.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(envelope))
    _wait_metric(
        consumer, "lambda_trigger_consumer_completion_records_total", {"result": "unbound"}, 1
    )
    # And one with the right ARN but a guessed start: the run's own start date is unknown to it.
    _put_event(env, _detail(execution, "SUCCEEDED", startDate=1_000_000_000_000))
    _wait_metric(
        consumer, "lambda_trigger_consumer_completion_records_total", {"result": "unbound"}, 2
    )
    client = env.datahub()
    try:
        stored = client.read_result(request.run_id)
    finally:
        client.close()
    assert stored is not None and stored.status == "RUNNING"
    # The genuine event still ends it (the forged ones did not hide it).
    _put_event(env, _detail(execution, "FAILED", output=None, error="States.TaskFailed"))
    result = env.wait_status(request.run_id, {"FAILURE", "SUCCESS"}, timeout=60)
    assert result.status == "FAILURE"


def test_the_devstack_sends_the_event_when_an_execution_ends_as_aws_does(
    env: Env, start_consumer: Any
) -> None:
    """The local stack's Step Functions (a canned outcome) send the status event themselves,
    so the benchmarks can measure runs that end by their events."""
    machine = _state_machine(env)
    env.moto.queue_execution_result(
        machine, "FAILED", error="States.TaskFailed", cause="no rows", delay_seconds=1
    )
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    _rule_to(env, machine, queue_arn)
    consumer = start_consumer(completion_queue_url=url, sfn_status_events=True, keep_warm_seconds=0)
    described = consumer.metric(*DESCRIBES)
    request = env.request(SIP)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE", "TIMEOUT"}, timeout=60)
    assert result.status == "FAILURE"
    details = json.loads(result.structuredReport.serializedValue)
    assert details["error"] == "States.TaskFailed" and details["cause"] == "no rows"
    assert consumer.metric(*DESCRIBES) == described
