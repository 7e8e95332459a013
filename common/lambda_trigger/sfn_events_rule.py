"""The AWS set-up that sends Step Functions status events to the completion queue (issue 24).

`datahub-lambda-trigger iam-policy --sfn-events-rule` prints it for the mapping: the EventBridge
rule's event pattern (source aws.states, detail-type "Step Functions Execution Status Change",
the mapped state machines, the final statuses), its target (the completion queue), and the
queue policy statement that lets EventBridge, for this rule only, send to the queue. The
consumer reads such events on the queue (consumer/.../sfn_events.py); the constants here are
the ones it checks.
"""

from __future__ import annotations

from typing import Any

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
# The statuses that end an execution (and the run): the rule sends only these.
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
DEFAULT_RULE_NAME = "datahub-lambda-trigger-sfn-status"


def _machine_matcher(arn: str) -> str | dict[str, str]:
    """An event pattern value for a mapped state machine ARN, or a jobTargets glob of them."""
    if "?" in arn:  # EventBridge's wildcard knows `*` only: match the fixed prefix
        return {"prefix": arn.split("?", 1)[0].split("*", 1)[0]}
    if "*" in arn:
        return {"wildcard": arn}
    # Events name the state machine, never a version or alias of it.
    return ":".join(arn.split(":")[:7])


def event_pattern(state_machine_arns: list[str]) -> dict[str, Any]:
    matchers: list[Any] = []
    for arn in sorted(set(state_machine_arns)):
        matcher = _machine_matcher(arn)
        if matcher not in matchers:
            matchers.append(matcher)
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"stateMachineArn": matchers, "status": list(FINAL_STATUSES)},
    }


def rule_arn(partition: str, region: str, account: str, rule_name: str) -> str:
    return f"arn:{partition}:events:{region}:{account}:rule/{rule_name}"


def queue_policy_statement(queue_arn: str, source_rule_arn: str) -> dict[str, Any]:
    """Lets EventBridge send this rule's events to the queue, and no other rule's (the
    confused-deputy condition AWS recommends for service principals)."""
    return {
        "Sid": "StepFunctionsStatusEvents",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_rule_arn}},
    }


def setup(
    state_machine_arns: list[str], queue_arn: str, *, rule_name: str = DEFAULT_RULE_NAME
) -> dict[str, Any]:
    """Everything to create, for state machines in the queue's account and region (a rule
    delivers events of its own region's default bus)."""
    parts = queue_arn.split(":")
    partition, region, account = parts[1], parts[3], parts[4]
    source = rule_arn(partition, region, account, rule_name)
    return {
        "rule": {
            "Name": rule_name,
            "EventBusName": "default",
            "EventPattern": event_pattern(state_machine_arns),
            "State": "ENABLED",
        },
        "target": {"Id": "completion-queue", "Arn": queue_arn},
        "queuePolicy": {
            "Version": "2012-10-17",
            "Statement": [queue_policy_statement(queue_arn, source)],
        },
        "consumerSettings": {"LAMBDA_TRIGGER_SFN_STATUS_EVENTS": "true"},
    }
