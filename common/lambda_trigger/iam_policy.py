"""`datahub-lambda-trigger iam-policy`: the least IAM policy the consumer needs for a mapping.

Exactly the mapped functions and state machines (and the `jobTargets` ARN patterns, which IAM
matches with the same `*` / `?` globs), plus the completion queue when
`LAMBDA_TRIGGER_COMPLETION_QUEUE_URL` is set. Nothing else: no `*` account, no `lambda:*`.

- Lambda targets: `lambda:InvokeFunction`, and `lambda:GetFunctionConfiguration` /
  `lambda:GetFunctionEventInvokeConfig` (what the consumer reads about a target), on the
  function ARN and, with a `qualifier`, on the qualified ARN too (IAM treats them apart);
- Step Functions targets: `states:StartExecution` on the state machine,
  `states:DescribeExecution` / `states:StopExecution` on its executions
  (`arn:...:execution:<stateMachineName>:*`);
- the completion queue: `sqs:ReceiveMessage`, `sqs:DeleteMessage`, `sqs:GetQueueAttributes`, and
  `sqs:ChangeMessageVisibility` (a consumer shutting down hands back what it has not handled);
  with LAMBDA_TRIGGER_COMPLETION_QUEUE_KMS_KEY_ARN (an SSE-KMS queue), `kms:Decrypt` on that key;
- with LAMBDA_TRIGGER_KAFKA_AUTH=msk-iam, the MSK cluster (LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN or
  `--msk-cluster-arn`): `kafka-cluster:Connect` and `WriteDataIdempotently` (both producers are
  idempotent) on the cluster, `DescribeTopic` + `ReadData` on the MCL topic and the run ledger,
  `DescribeTopic` + `WriteData` on the run ledger and the dead-letter topic, `CreateTopic` on
  those two unless LAMBDA_TRIGGER_CREATE_TOPICS=false, and `DescribeGroup` + `AlterGroup` on the
  consumer group (kafka_policy.py).
- `SCHEMA_REGISTRY_TYPE=AWS_GLUE`: `glue:GetSchemaVersion` (the writer's schema of each MCL).
  Its one `"Resource": "*"`: the consumer asks by schema version id, which IAM cannot scope to
  a registry; AWS's own deserializer example (Glue docs, "IAM examples for deserializers") is
  the same. It grants reading schema definitions, nothing else.

With `--sfn-events-rule` it prints instead what sends Step Functions status events to the
completion queue (sfn_events_rule.py): the EventBridge rule, its target and the queue policy.

A target given by bare function name needs the account (`--account-id`) and a region
(the target's, `--region`, or DATAHUB_INGESTION_LAMBDA_REGION / AWS_REGION).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any
from urllib.parse import urlsplit

from lambda_trigger.kafka_policy import ArnError, MskAccess, kms_statement, msk_statements
from lambda_trigger.mapping import LambdaTarget, Mapping, MappingError, StepFunctionsTarget
from lambda_trigger.settings import ConsumerSettings, IamPolicySettings, MappingSettings
from lambda_trigger.sfn_events_rule import DEFAULT_RULE_NAME
from lambda_trigger.sfn_events_rule import setup as sfn_events_setup

COMPLETION_QUEUE_ENV = "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL"
SCHEMA_REGISTRY_TYPE_ENV = "SCHEMA_REGISTRY_TYPE"
_FUNCTION_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"function:(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)
_PARTIAL = re.compile(
    r"^(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)
_SQS_HOST = re.compile(r"^sqs\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class PolicyError(ValueError):
    pass


def _all_targets(mapping: Mapping) -> list[LambdaTarget | StepFunctionsTarget]:
    doc = mapping.document
    targets: list[LambdaTarget | StepFunctionsTarget] = list(doc.targets.values())
    targets += [r.target for r in doc.rules if not isinstance(r.target, str)]
    if doc.default is not None and not isinstance(doc.default, str):
        targets.append(doc.default)
    return targets


def _function_arns(
    target: LambdaTarget, region: str | None, account: str | None, partition: str
) -> list[str]:
    full = _FUNCTION_ARN.match(target.function)
    if full:
        base = f"arn:{full['partition']}:lambda:{full['region']}:{full['account']}:function:{full['name']}"
        qualifier = full["qualifier"] or target.qualifier
    else:
        partial = _PARTIAL.match(target.function)
        if partial is None:  # the mapping validated it; kept for the type checker
            raise PolicyError(f"not a function name or ARN: {target.function!r}")
        acct = partial["account"] or account
        where = target.region or region
        if not acct or not where:
            raise PolicyError(
                f"function {target.function!r} is named without "
                f"{'an account (--account-id)' if not acct else 'a region (--region)'}"
            )
        base = f"arn:{partition}:lambda:{where}:{acct}:function:{partial['name']}"
        qualifier = partial["qualifier"] or target.qualifier
    return [base, f"{base}:{qualifier}"] if qualifier else [base]


def _queue_arn(url: str, region: str | None, partition: str) -> str:
    parts = urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    if len(path) != 2 or not re.fullmatch(r"\d{12}", path[0]):
        raise PolicyError(f"{COMPLETION_QUEUE_ENV} is not an SQS queue URL: {url!r}")
    host = _SQS_HOST.match(parts.hostname or "")
    where = host["region"] if host else region
    if not where:
        raise PolicyError(f"cannot tell the region of {url!r}: give --region")
    return f"arn:{partition}:sqs:{where}:{path[0]}:{path[1]}"


def build_policy(
    mapping: Mapping,
    *,
    region: str | None = None,
    account: str | None = None,
    partition: str = "aws",
    completion_queue_url: str | None = None,
    schema_registry_type: str | None = None,
    completion_queue_kms_key_arn: str | None = None,
    msk: MskAccess | None = None,
) -> dict[str, Any]:
    functions: list[str] = []
    machines: list[str] = []
    for target in _all_targets(mapping):
        if isinstance(target, LambdaTarget):
            functions += _function_arns(target, region, account, partition)
        else:
            machines.append(target.state_machine_arn)
    for group in mapping.document.job_targets.values():
        for pattern in group.arns:
            (machines if ":states:" in pattern else functions).append(pattern)
    functions = sorted(set(functions))
    machines = sorted(set(machines))
    statements: list[dict[str, Any]] = []
    if functions:
        statements.append(
            {
                "Sid": "InvokeMappedFunctions",
                "Effect": "Allow",
                "Action": [
                    "lambda:InvokeFunction",
                    "lambda:GetFunctionConfiguration",
                    "lambda:GetFunctionEventInvokeConfig",
                ],
                "Resource": functions,
            }
        )
    if machines:
        statements.append(
            {
                "Sid": "StartMappedStateMachines",
                "Effect": "Allow",
                "Action": ["states:StartExecution"],
                "Resource": machines,
            }
        )
        executions = sorted(
            {arn.replace(":stateMachine:", ":execution:", 1) + ":*" for arn in machines}
        )
        statements.append(
            {
                "Sid": "TrackMappedExecutions",
                "Effect": "Allow",
                "Action": ["states:DescribeExecution", "states:StopExecution"],
                "Resource": executions,
            }
        )
    if completion_queue_url:
        statements.append(
            {
                "Sid": "ReadCompletionQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                "Resource": [_queue_arn(completion_queue_url, region, partition)],
            }
        )
    if (schema_registry_type or "").strip().upper() == "AWS_GLUE":
        statements.append(
            {
                "Sid": "ReadGlueSchemaVersions",
                "Effect": "Allow",
                "Action": ["glue:GetSchemaVersion"],
                "Resource": ["*"],
            }
        )
    if completion_queue_kms_key_arn:
        if not completion_queue_url:
            raise PolicyError(
                "LAMBDA_TRIGGER_COMPLETION_QUEUE_KMS_KEY_ARN is set without "
                f"{COMPLETION_QUEUE_ENV}: the key is only needed to read that queue"
            )
        statements.append(kms_statement(completion_queue_kms_key_arn))
    if msk is not None:
        statements += msk_statements(msk)
    return {"Version": "2012-10-17", "Statement": statements}


def build_sfn_events_setup(
    mapping: Mapping,
    completion_queue_url: str | None,
    *,
    region: str | None = None,
    partition: str = "aws",
    rule_name: str = DEFAULT_RULE_NAME,
) -> dict[str, Any]:
    """The EventBridge rule, target and queue policy for the mapping's state machines."""
    if not completion_queue_url:
        raise PolicyError(f"--sfn-events-rule needs {COMPLETION_QUEUE_ENV}: the events go there")
    machines = [
        t.state_machine_arn for t in _all_targets(mapping) if not isinstance(t, LambdaTarget)
    ]
    for group in mapping.document.job_targets.values():
        machines += [arn for arn in group.arns if ":states:" in arn]
    if not machines:
        raise PolicyError("the mapping names no state machines")
    return sfn_events_setup(
        machines, _queue_arn(completion_queue_url, region, partition), rule_name=rule_name
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account-id", help="account of targets named without one")
    parser.add_argument("--region", help="region of targets named without one")
    parser.add_argument("--partition", default="aws", help="aws (default), aws-cn, aws-us-gov")
    parser.add_argument(
        "--msk-cluster-arn",
        help="with LAMBDA_TRIGGER_KAFKA_AUTH=msk-iam: the MSK cluster's ARN "
        "(default: LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN)",
    )
    parser.add_argument(
        "--sfn-events-rule",
        action="store_true",
        help="print the EventBridge rule, target and completion-queue policy that send the "
        "mapped state machines' status events to the completion queue, not the IAM policy",
    )
    parser.add_argument(
        "--rule-name", default=DEFAULT_RULE_NAME, help="with --sfn-events-rule: the rule's name"
    )


def run(args: argparse.Namespace) -> int:
    """Reads the mapping the consumer would (same environment variables) and prints JSON."""
    settings = MappingSettings()
    extra = IamPolicySettings()
    if getattr(args, "sfn_events_rule", False):
        try:
            snippet = build_sfn_events_setup(
                settings.load(),
                os.environ.get(COMPLETION_QUEUE_ENV) or None,
                region=args.region or settings.resolved_region(),
                partition=args.partition,
                rule_name=getattr(args, "rule_name", None) or DEFAULT_RULE_NAME,
            )
        except (MappingError, PolicyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(snippet, indent=2))
        return 0
    try:
        msk: MskAccess | None = None
        if extra.kafka_auth == "msk-iam":
            cluster = getattr(args, "msk_cluster_arn", None) or extra.msk_cluster_arn
            if not cluster:
                raise PolicyError(
                    "LAMBDA_TRIGGER_KAFKA_AUTH is msk-iam: give the MSK cluster's ARN "
                    "(--msk-cluster-arn or LAMBDA_TRIGGER_KAFKA_MSK_CLUSTER_ARN)"
                )
            # The topics and the group the consumer would use, from the same environment.
            consumer = ConsumerSettings()
            msk = MskAccess.for_cluster(
                cluster,
                mcl_topic=consumer.topic,
                ledger_topic=consumer.runs_topic,
                dead_letter_topic=consumer.dead_letter_topic,
                group_id=consumer.group_id,
                create_topics=consumer.create_topics,
                timeseries_topic=consumer.timeseries_topic if settings.load().triggers() else None,
            )
        policy = build_policy(
            settings.load(),
            region=args.region or settings.resolved_region(),
            account=args.account_id,
            partition=args.partition,
            completion_queue_url=os.environ.get(COMPLETION_QUEUE_ENV) or None,
            schema_registry_type=os.environ.get(SCHEMA_REGISTRY_TYPE_ENV) or None,
            completion_queue_kms_key_arn=extra.completion_queue_kms_key_arn,
            msk=msk,
        )
    except (MappingError, PolicyError, ArnError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not policy["Statement"]:
        print("error: the mapping names no targets", file=sys.stderr)
        return 2
    print(json.dumps(policy, indent=2))
    return 0
