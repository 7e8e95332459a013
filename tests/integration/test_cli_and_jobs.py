"""The CLI trigger, the job-ARN (Step Functions) target, and the consumer process's signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import DataJobInputOutputClass

from devstack.ports import free_port
from lambda_trigger import cli
from lambda_trigger_consumer.driver import DriverConfig

from .conftest import POLY, SIP, Env

pytestmark = pytest.mark.integration
JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,example_flow,PROD),example_job)"
JOB_ARN_PROPERTY = "urn:li:structuredProperty:io.datahub.ingestion.stepFunctionArn"


def _cli_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAHUB_GMS_URL", env.gms.url)
    monkeypatch.setenv("DATAHUB_GMS_TOKEN", env.users["alice"])
    monkeypatch.setenv("LAMBDA_TRIGGER_EXECUTOR_ID", env.executor_id)
    # Alice writes the request with her own token: the consumer runs it only for writers it
    # is told may start runs (lambda_trigger_consumer.authorize).
    monkeypatch.setenv("LAMBDA_TRIGGER_ALLOWED_ACTORS", "urn:li:corpuser:alice")


def test_cli_request_wait_and_status(
    env: Env,
    start_consumer: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _cli_env(env, monkeypatch)
    start_consumer()
    assert cli.main(["request", POLY, "--reason", "from the cli", "--wait", "--timeout", "60"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    run_id = lines[0]["runId"]
    assert lines[-1]["state"] == "succeeded"
    (inv,) = env.moto.invocations(env.functions["poly"])
    assert inv.payload["runId"] == run_id and inv.payload["reason"] == "from the cli"
    stored = env.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{run_id}", "dataHubExecutionRequestInput"
    )
    assert stored is not None and stored["source"]["type"] == "LAMBDA_TRIGGER_CLI"

    assert cli.main(["status", run_id]) == 0
    assert json.loads(capsys.readouterr().out)["datahubStatus"] == "SUCCESS"
    assert cli.main(["status", "lt-20260101T000000000Z-aaaaaaaaaa"]) == 1
    assert cli.main(["request", "urn:li:corpuser:x"]) == 2
    assert "must be a dataset URN" in capsys.readouterr().err


def test_job_arn_property_starts_the_step_functions_execution(
    env: Env, start_consumer: Any
) -> None:
    """The seeded DataJob carries a state machine ARN in a structured property; a run naming
    that job starts an execution named after the runId instead of the dataset's Lambda."""
    sfn = env.moto.sfn_client()
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:example-ingest"
    existing = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
    if arn not in existing:
        assert env.moto.create_state_machine("example-ingest") == arn
    # A job's ARN runs only if the mapping allow-lists it and the job outputs the dataset.
    env.mapping["jobTargets"] = {"examples": {"arns": [arn]}}
    client = env.datahub()
    try:
        client.graph.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=JOB,
                aspect=DataJobInputOutputClass(inputDatasets=[], outputDatasets=[SIP]),
            )
        )
    finally:
        client.close()
    start_consumer(driver_config=DriverConfig(job_arn_property_urn=JOB_ARN_PROPERTY))
    request = env.request(SIP, job_urn=JOB)
    result = env.wait_status(request.run_id, {"RUNNING"})
    deadline = time.monotonic() + 20
    while True:
        executions = {e["name"]: e for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
        if request.run_id in executions:
            break
        assert time.monotonic() < deadline, "no execution started"
        time.sleep(0.1)
    described = sfn.describe_execution(executionArn=executions[request.run_id]["executionArn"])
    payload = json.loads(described["input"])
    assert payload["runId"] == request.run_id and payload["jobUrn"] == JOB
    assert env.moto.invocations(env.functions["sip"]) == []  # the mapping's Lambda was not used
    result = env.wait_status(request.run_id, {"RUNNING"})
    assert arn not in (result.report or "") and "123456789012" not in (result.report or "")


def test_consumer_process_stops_cleanly_on_sigterm(env: Env, tmp_path: Any) -> None:
    """The real entry point: SIGTERM while a slow run is in flight -> the run still finishes
    (SUCCESS written), the process exits 0."""
    port = free_port()
    child_env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": env.stack.kafka_bootstrap,
        "SCHEMA_REGISTRY_URL": env.gms.schema_registry_url,
        "DATAHUB_GMS_URL": env.gms.url,
        "DATAHUB_GMS_TOKEN": env.gms.admin_token,
        "LAMBDA_TRIGGER_EXECUTOR_ID": env.executor_id,
        "LAMBDA_TRIGGER_CONSUMER_GROUP": env.group_id,
        "LAMBDA_TRIGGER_RUNS_TOPIC": f"runs-{env.executor_id}",
        "LAMBDA_TRIGGER_DEAD_LETTER_TOPIC": f"dlq-{env.executor_id}",
        "DATAHUB_INGESTION_LAMBDA_MAPPING": json.dumps(env.mapping),
        "LAMBDA_TRIGGER_CONSUMER_HTTP_HOST": "127.0.0.1",
        "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT": str(port),
        **env.moto.env(),
    }
    log = (tmp_path / "consumer.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambda_trigger_consumer"], env=child_env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "consumer.log"
            ).read_text()
            time.sleep(0.2)
        env.moto.queue_result(env.functions["sip"], payload="slow", delay_seconds=3)
        request = env.request(SIP)
        env.moto.wait_for_invocations(env.functions["sip"], count=1, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    result = env.datahub().read_result(request.run_id)
    assert result is not None and result.status == "SUCCESS"
    assert "signal 15: stopping" in (tmp_path / "consumer.log").read_text()


def test_bad_mapping_stops_the_consumer_at_start(env: Env) -> None:
    child_env = {
        **os.environ,
        "DATAHUB_INGESTION_LAMBDA_MAPPING": json.dumps(
            {"rules": [{"dataset": SIP, "target": {"function": "bad name"}}]}
        ),
    }
    for module in ("lambda_trigger_consumer", "lambda_trigger_api"):
        done = subprocess.run(
            [sys.executable, "-m", module],
            env=child_env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert "DATAHUB_INGESTION_LAMBDA_MAPPING: rule #1" in done.stderr.decode()
