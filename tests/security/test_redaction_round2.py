"""Issue 19, items 6 and 7: one redaction for everything that leaves the services, log lines
that writer-supplied text cannot split, credentials in URLs never printed, and `jobTargets`
patterns that do not match qualified ARNs unless they name a qualifier."""

from __future__ import annotations

import io
import json
import logging
import uuid
from typing import Any

import pytest

from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.logsafe import configure_logging
from lambda_trigger.mapping import JobTargetGroup, parse_mapping
from lambda_trigger.redact import for_log, redact, strip_credentials
from lambda_trigger.runid import new_run_id
from lambda_trigger_consumer.dependencies import DependencyMonitor, register_defaults

from .conftest import POLY, Env, bearer, make_api

ACCOUNT = "123456789012"
# One of each class that must never leave a service, as a function might answer them.
LEAKS: dict[str, str] = {
    "url with credentials": "https://svc-user:hunter2pass@registry.corp.example:8081/subjects",
    "hostname with port": "kafka-broker-3.corp.internal:29092",
    "private ip": "10.20.30.40",
    "public ip with port": "52.94.236.248:443",
    "ipv6": "fd00:1234:5678::42",
    "arn": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:etl-secret",
    "account id": "987654321098",
    "aws access key": "AKIAIOSFODNN7EXAMPLE",
    "aws secret key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "password": "hunter2-password-value",
}
MUST_NOT_APPEAR = [
    *LEAKS.values(),
    "hunter2pass",
    "registry.corp.example",
    "kafka-broker-3",
    "10.20.30.40",
    "52.94.236.248",
    "fd00:1234",
    ACCOUNT,
    "AKIAIOSFODNN7",
    "hunter2-password-value",
]


def _leaky_text() -> str:
    parts = [f"{name}: {value}" for name, value in LEAKS.items() if name != "password"]
    parts.append(f"password={LEAKS['password']}")
    return "; ".join(parts)


def _assert_clean(text: str) -> None:
    for secret in MUST_NOT_APPEAR:
        assert secret not in text, f"{secret!r} leaked: {text[:800]}"


def test_redact_removes_every_leak_class_and_keeps_ordinary_text() -> None:
    out = redact(_leaky_text())
    _assert_clean(out)
    for kept in ("url with credentials", "private ip", "jwt", "password="):
        assert kept in out
    ordinary = (
        "loaded 42 rows in 1.5 s at 2026-12-07T12:03:30Z, request id "
        "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7f9a0b3e, run lt-20261207T120330000Z-abcdefghij, "
        "moto request id Xk2mQ9vL0pR7sT4uW1yZ3aB6cD8eF5gH2iJ0kL9mN4oP7qR1sT3u"
    )
    assert redact(ordinary) == ordinary


@pytest.mark.integration
def test_a_consumer_report_redacts_every_leak_class(env: Env, start_consumer: Any) -> None:
    """The function answers with internals of every class; the report written to DataHub (shown
    by DataHub's UI to anyone who can see Run History) and the api's answer carry none."""
    start_consumer()
    env.moto.queue_result(env.functions["poly"], payload={"detail": _leaky_text(), **LEAKS})
    request = env.request(POLY)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    stored = env.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{request.run_id}", "dataHubExecutionRequestResult"
    )
    assert stored is not None
    _assert_clean(json.dumps(stored))
    assert "Response:" in stored["report"]  # the response is there, redacted, not dropped
    with make_api(env) as api:
        answer = api.get(
            f"/api/ingestion/runs/{request.run_id}", headers=bearer(env.users["alice"])
        )
    assert answer.status_code == 200, answer.text
    _assert_clean(answer.text)


# --- logs ---------------------------------------------------------------------------------------


def test_writer_text_cannot_start_a_log_line() -> None:
    """The consumer's refusal line carries the writer's claimed actorUrn; a forged
    "\\nrun lt-1: success" stays on the refusal's line, escaped."""
    stream = io.StringIO()
    handler = configure_logging("%(levelname)s %(name)s %(message)s", stream=stream)
    try:
        logging.getLogger("lambda_trigger_consumer.authorize").warning(
            "run %s refused: written by %s (claims actorUrn %s), who may not start runs",
            "lt-x",
            "urn:li:corpuser:mallory",
            "urn:li:corpuser:a\nrun lt-1: success\r\x1b[2K\u2028run lt-2: success",
        )
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "\\nrun lt-1: success" in lines[0] and "\\x1b" in lines[0] and "\\u2028" in lines[0]
    assert for_log("a\nb") == "a\\nb"


@pytest.mark.integration
def test_a_forged_line_in_a_refused_request_stays_on_the_refusal_line(
    env: Env, start_consumer: Any
) -> None:
    """Mallory (no run right) writes a request whose actorUrn carries "\nrun lt-1: success":
    the consumer's refusal line, through the handler its __main__ installs, stays one line."""
    stream = io.StringIO()
    handler = configure_logging("%(levelname)s %(name)s %(message)s", stream=stream)
    try:
        start_consumer()
        mallory = f"urn:li:corpuser:mallory-{uuid.uuid4().hex[:6]}"
        token = f"token-{mallory}"
        env.gms.add_token(token, mallory, "mallory", manage_ingestion=False)
        request = RunRequest(
            run_id=new_run_id(),
            dataset_urn=POLY,
            executor_id=env.executor_id,
            source_type=SourceType.SDK.value,
            requested_at_ms=now_ms(),
            actor_urn="urn:li:corpuser:x\nrun lt-1: success\u2028run lt-2: success",
        )
        client = DataHubClient(env.datahub_settings(token=token))
        try:
            client.write_request(request)
        finally:
            client.close()
        env.wait_status(request.run_id, {"FAILURE"})
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    refusals = [line for line in text.splitlines() if f"run {request.run_id} refused" in line]
    assert len(refusals) == 1, text[-3000:]
    # The writer's line breaks are neutralised on the refusal line itself: escaped by the log
    # filter (logsafe.py), or replaced before that by authorize.py's printable().
    assert "run lt-1: success" in refusals[0] and "run lt-2: success" in refusals[0]
    assert not any(c in refusals[0] for c in "\n\r\u2028\u2029"), refusals[0]
    assert not any(line.startswith(("run lt-1", "run lt-2")) for line in text.splitlines())


def test_url_credentials_never_reach_the_log_or_readyz(caplog: pytest.LogCaptureFixture) -> None:
    registry_url = "https://svc-user:s3cr3t-pw@registry.corp.example:8081/"
    monitor = DependencyMonitor()
    register_defaults(
        monitor,
        kafka="broker:29092",
        gms_url="http://datahub:s3cr3t-gms@gms:8080",
        schema_registry_url=registry_url,
        aws_endpoint=None,
    )
    with caplog.at_level(logging.INFO):
        monitor.down("schema_registry", f"GET {registry_url}subjects: connection refused")
    status = json.dumps(monitor.status())
    for text in (status, caplog.text):
        assert "s3cr3t" not in text and "svc-user" not in text, text
    assert "registry.corp.example" in status  # operators still see where it points
    assert strip_credentials(registry_url) == "https://***@registry.corp.example:8081/"


# --- jobTargets ---------------------------------------------------------------------------------

FN = "arn:aws:lambda:us-east-1:123456789012:function"
SM = "arn:aws:states:us-east-1:123456789012:stateMachine"


@pytest.mark.parametrize(
    ("pattern", "arn", "allowed"),
    [
        (f"{FN}:etl-*", f"{FN}:etl-loader", True),
        (f"{FN}:etl-*", f"{FN}:etl-loader:1", False),
        (f"{FN}:etl-*", f"{FN}:etl-loader:$LATEST", False),
        (f"{FN}:etl-*", f"{FN}:etl-loader:live", False),
        (f"{FN}:etl-*:live", f"{FN}:etl-loader:live", True),
        (f"{FN}:etl-*:live", f"{FN}:etl-loader:1", False),
        (f"{FN}:etl-*:live", f"{FN}:etl-loader", False),
        (f"{FN}:etl-*:*", f"{FN}:etl-loader:7", True),
        (f"{FN}:etl-loader:$LATEST", f"{FN}:etl-loader:$LATEST", True),
        (f"{FN}:*", f"{FN}:anything", True),
        (f"{FN}:*", f"{FN}:anything:1", False),
        (f"{SM}:load-*", f"{SM}:load-x", True),
        (f"{SM}:load-*", f"{SM}:load-x:2", False),
    ],
)
def test_job_target_patterns_match_unqualified_arns_unless_they_name_a_qualifier(
    pattern: str, arn: str, allowed: bool
) -> None:
    group = JobTargetGroup.model_validate({"arns": [pattern]})
    assert group.allows(arn) is allowed
    mapping = parse_mapping({"jobTargets": {"etl": {"arns": [pattern]}}}, "test")
    assert (mapping.job_target(arn) is not None) is allowed
