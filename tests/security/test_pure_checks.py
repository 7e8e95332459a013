"""The trust boundary's pure parts, without the stack: redaction, character checks, limits,
the job ARN allow-list, the requester rule and the IAM policy."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from lambda_trigger.contract import RunRequest
from lambda_trigger.iam_policy import PolicyError, build_policy
from lambda_trigger.mapping import MappingError, parse_mapping
from lambda_trigger.sanitize import aws_error, hostile_char, printable, redact
from lambda_trigger.urns import InvalidUrnError, parse_dataset_urn
from lambda_trigger_api.limits import RateLimiter, RequestLimits, json_depth
from lambda_trigger_consumer.request import with_trusted_requester

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def test_redact_removes_arns_accounts_and_urls() -> None:
    text = (
        "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized on "
        "arn:aws:lambda:us-east-1:123456789012:function:f:live (account 210987654321) "
        "via https://lambda.us-east-1.amazonaws.com/2015-03-31/functions and gms:8080 or 10.0.0.7:9092"
    )
    out = redact(text)
    for secret in (
        "arn:aws",
        "123456789012",
        "210987654321",
        "https://",
        "amazonaws",
        "gms:8080",
        "10.0.0.7",
    ):
        assert secret not in out, out
    assert out.startswith("User: <arn> is not authorized on <arn> (account <account>)")
    assert redact("rows: 42, took 1.5 s") == "rows: 42, took 1.5 s"


def test_aws_errors_become_stable_sentences() -> None:
    assert aws_error("AccessDeniedException") == "AWS refused the call (AccessDeniedException)"
    assert aws_error("SomethingNew") == "AWS error (SomethingNew)"
    assert aws_error("bad code: arn:aws:x") == "AWS could not be reached"


@pytest.mark.parametrize(
    "ch", ["\x00", "\x1b", "\n", "\x85", "\u2028", "\u2029", "\u202e", "\u2066", "\ufeff", "\ud800"]
)
def test_hostile_characters_are_found_and_urns_refuse_them(ch: str) -> None:
    assert hostile_char(f"a{ch}b") == ch
    with pytest.raises(InvalidUrnError) as err:
        parse_dataset_urn(f"urn:li:dataset:(urn:li:dataPlatform:hive,a{ch}b,PROD)")
    assert ch not in str(err.value)  # named (U+....), never echoed
    assert ch not in printable(f"x{ch}y")


def test_plain_text_passes() -> None:
    assert hostile_char("Résumé - 東京 <b>") is None
    assert parse_dataset_urn(SIP).platform == "athena"


def test_json_depth() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[["}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(b"[" * 100) == 100


def _call(
    app_limits: RequestLimits, body: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, Any], bytes]:
    sent: list[dict[str, Any]] = []
    seen: list[bytes] = []
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body) - 1}
        for i, chunk in enumerate(body)
    ]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Any, rcv: Any, snd: Any) -> None:
        message = await rcv()
        seen.append(message["body"])
        await snd({"type": "http.response.start", "status": 204, "headers": []})
        await snd({"type": "http.response.body", "body": b""})

    app_limits.app = app
    scope = {"type": "http", "headers": headers}
    asyncio.run(app_limits(scope, receive, send))
    status = sent[0]["status"]
    body_sent = sent[1]["body"] if len(sent) > 1 else b""
    return status, json.loads(body_sent) if body_sent else {}, b"".join(seen)


def test_request_limits() -> None:
    limits = RequestLimits(lambda *a: None, max_body_bytes=100, max_credential_bytes=50)  # type: ignore[arg-type, return-value]
    assert _call(limits, [b"x" * 60, b"y" * 40], [])[0] == 204  # exactly the limit, streamed
    status, shape, seen = _call(limits, [b"x" * 60, b"y" * 41], [])
    assert status == 413 and shape["error"] == "body_too_large" and seen == b""
    assert _call(limits, [b"{}"], [(b"content-length", b"101")])[0] == 413
    assert _call(limits, [b""], [(b"authorization", b"Bearer " + b"t" * 50)])[0] == 431
    assert _call(limits, [b"[" * 40], [])[1]["error"] == "invalid_request"
    assert _call(limits, [b'{"a": 1}'], [])[2] == b'{"a": 1}'  # replayed to the app


def test_rate_limiter_counts_only_recorded_starts() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    assert limiter.check("alice") is None
    limiter.record("alice")
    limiter.record("alice")
    assert limiter.check("alice") == 60
    assert limiter.check("bob") is None
    now[0] += 59.5
    assert limiter.check("alice") == 1
    now[0] += 1
    assert limiter.check("alice") is None
    assert RateLimiter(0, 60).check("x") is None


def _mapping(job_targets: dict[str, Any]) -> Any:
    return parse_mapping({"jobTargets": job_targets}, "test")


def test_job_arn_allow_list() -> None:
    mapping = _mapping(
        {
            "etl": {
                "arns": ["arn:aws:states:us-east-1:123456789012:stateMachine:etl-*"],
                "label": "ETL",
            },
            "fn": {"arns": ["arn:aws:lambda:eu-west-1:123456789012:function:loader"]},
        }
    )
    sfn = mapping.job_target("arn:aws:states:us-east-1:123456789012:stateMachine:etl-daily")
    assert sfn is not None and sfn.label == "ETL" and sfn.target.region == "us-east-1"
    fn = mapping.job_target("arn:aws:lambda:eu-west-1:123456789012:function:loader")
    assert fn is not None and fn.target.region == "eu-west-1"
    for refused in (
        "arn:aws:states:us-east-1:999999999999:stateMachine:etl-daily",  # other account
        "arn:aws:states:us-west-2:123456789012:stateMachine:etl-daily",  # other region
        "arn:aws:lambda:eu-west-1:123456789012:function:loader2",
        "arn:aws:lambda:eu-west-1:123456789012:function:other",
        "not an arn",
    ):
        assert mapping.job_target(refused) is None, refused
    assert (
        parse_mapping({}, "empty").job_target(
            "arn:aws:lambda:eu-west-1:123456789012:function:loader"
        )
        is None
    )  # default deny


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:lambda:us-east-1:*:function:x",  # any account
        "arn:aws:lambda:*:123456789012:function:x",  # any region
        "*",
        "arn:aws:s3:::bucket",
    ],
)
def test_job_arn_patterns_cannot_be_wide_open(pattern: str) -> None:
    with pytest.raises(MappingError):
        _mapping({"g": {"arns": [pattern]}})


def _request(actor: str | None, writer: str | None) -> RunRequest:
    return RunRequest("r", SIP, "e", "SDK", 1, actor_urn=actor, writer_urn=writer)


def test_the_writer_is_the_requester_unless_it_is_the_service() -> None:
    svc = "urn:li:corpuser:svc"
    assert with_trusted_requester(_request("urn:li:corpuser:alice", svc), svc).actor_urn == (
        "urn:li:corpuser:alice"
    )
    assert with_trusted_requester(_request(None, svc), svc).actor_urn == svc
    forged = with_trusted_requester(_request("urn:li:corpuser:alice", "urn:li:corpuser:m"), svc)
    assert forged.actor_urn == "urn:li:corpuser:m"
    assert with_trusted_requester(_request("urn:li:corpuser:alice", None), svc).actor_urn is None


def test_iam_policy_names_exactly_the_mapped_resources() -> None:
    mapping = parse_mapping(
        {
            "targets": {
                "a": {"function": "loader", "qualifier": "live"},
                "b": {
                    "type": "stepfunctions",
                    "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:nightly",
                },
            },
            "rules": [
                {"dataset": SIP, "target": "a"},
                {
                    "tag": "urn:li:tag:x",
                    "target": {"function": "arn:aws:lambda:eu-west-1:210987654321:function:other"},
                },
            ],
            "jobTargets": {
                "g": {"arns": ["arn:aws:states:us-east-1:123456789012:stateMachine:etl-*"]}
            },
        },
        "test",
    )
    policy = build_policy(
        mapping,
        region="us-east-1",
        account="123456789012",
        completion_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/lt-done",
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["InvokeMappedFunctions"]["Resource"] == [
        "arn:aws:lambda:eu-west-1:210987654321:function:other",
        "arn:aws:lambda:us-east-1:123456789012:function:loader",
        "arn:aws:lambda:us-east-1:123456789012:function:loader:live",
    ]
    assert set(by_sid["InvokeMappedFunctions"]["Action"]) == {
        "lambda:InvokeFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunctionEventInvokeConfig",
    }
    assert by_sid["StartMappedStateMachines"]["Resource"] == [
        "arn:aws:states:us-east-1:123456789012:stateMachine:etl-*",
        "arn:aws:states:us-east-1:123456789012:stateMachine:nightly",
    ]
    assert by_sid["TrackMappedExecutions"]["Resource"] == [
        "arn:aws:states:us-east-1:123456789012:execution:etl-*:*",
        "arn:aws:states:us-east-1:123456789012:execution:nightly:*",
    ]
    assert by_sid["ReadCompletionQueue"]["Resource"] == [
        "arn:aws:sqs:us-east-1:123456789012:lt-done"
    ]
    assert "*" not in json.dumps([s["Resource"] for s in policy["Statement"]]).replace(
        "etl-*", ""
    ).replace(':*"', '"')
    with pytest.raises(PolicyError):
        build_policy(mapping, region="us-east-1")  # a bare function name needs the account


def test_iam_policy_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lambda_trigger import cli

    monkeypatch.setenv(
        "DATAHUB_INGESTION_LAMBDA_MAPPING",
        json.dumps({SIP: "arn:aws:lambda:us-east-1:123456789012:function:earnings"}),
    )
    monkeypatch.delenv("DATAHUB_INGESTION_LAMBDA_MAPPING_FILE", raising=False)
    monkeypatch.delenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_URL", raising=False)
    monkeypatch.delenv("SCHEMA_REGISTRY_TYPE", raising=False)
    assert cli.main(["iam-policy"]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert [s["Resource"] for s in policy["Statement"]] == [
        ["arn:aws:lambda:us-east-1:123456789012:function:earnings"]
    ]
    monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_MAPPING", json.dumps({SIP: "bare-name"}))
    assert cli.main(["iam-policy", "--region", "us-east-1"]) == 2
    assert "--account-id" in capsys.readouterr().err
