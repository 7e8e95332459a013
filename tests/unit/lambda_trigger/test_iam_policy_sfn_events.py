"""`iam-policy --sfn-events-rule`: the EventBridge rule, its target and the completion queue's
policy that send the mapped state machines' status events to the queue (issue 24)."""

from __future__ import annotations

import json

import pytest

from lambda_trigger import cli

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLY = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon,PROD)"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:earnings"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/lambda-trigger-completions"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:lambda-trigger-completions"


@pytest.fixture
def mapping_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    mapping = {
        "targets": {
            "earnings": {"type": "stepfunctions", "stateMachineArn": MACHINE},
            "loader": {"function": "arn:aws:lambda:eu-west-1:123456789012:function:loader"},
        },
        "rules": [{"dataset": SIP, "target": "earnings"}, {"dataset": POLY, "target": "loader"}],
        "jobTargets": {
            "flows": {"arns": ["arn:aws:states:eu-west-1:123456789012:stateMachine:etl-*"]}
        },
    }
    monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_MAPPING", json.dumps(mapping))
    monkeypatch.setenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_URL", QUEUE)
    return monkeypatch


def test_the_rule_matches_the_mapped_machines_final_statuses_and_only_it_may_send(
    mapping_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["iam-policy", "--sfn-events-rule", "--rule-name", "lt-sfn"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rule"]["Name"] == "lt-sfn"
    assert printed["rule"]["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            # jobTargets globs become EventBridge wildcards
            "stateMachineArn": [
                MACHINE,
                {"wildcard": "arn:aws:states:eu-west-1:123456789012:stateMachine:etl-*"},
            ],
            "status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"],
        },
    }
    assert printed["target"] == {"Id": "completion-queue", "Arn": QUEUE_ARN}
    assert printed["queuePolicy"]["Statement"] == [
        {
            "Sid": "StepFunctionsStatusEvents",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE_ARN,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": "arn:aws:events:eu-west-1:123456789012:rule/lt-sfn"}
            },
        }
    ]


def test_without_a_completion_queue_or_a_state_machine_it_says_why(
    mapping_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping_env.delenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_URL")
    assert cli.main(["iam-policy", "--sfn-events-rule"]) == 2
    assert "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL" in capsys.readouterr().err
    mapping_env.setenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_URL", QUEUE)
    only_lambda = {SIP: "arn:aws:lambda:eu-west-1:123456789012:function:loader"}
    mapping_env.setenv("DATAHUB_INGESTION_LAMBDA_MAPPING", json.dumps(only_lambda))
    assert cli.main(["iam-policy", "--sfn-events-rule"]) == 2
    assert "no state machines" in capsys.readouterr().err
