"""Fault trials: consumer processes killed with SIGKILL at random points, and hostile records.

Two consumer processes (the real entry point, `python -m lambda_trigger_consumer`) share one
consumer group, with static membership so that a restarted process gets its partitions back at
once. Each trial writes one run per target kind (synchronous Lambda, Event Lambda with a
destination to the completion queue, Step Functions), waits a random moment and SIGKILLs one
of the two consumers, then restarts it. At the end, once every deadline has passed, the test
asserts on what DataHub and the AWS double recorded: no run invoked twice, no run RUNNING.

LAMBDA_TRIGGER_FAULT_TRIALS sets the number of trials (default 20) and LAMBDA_TRIGGER_FAULT_SEED
the random seed; the figures are printed and written to test-artifacts/faults.json.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from devstack.kafka import create_topics
from devstack.ports import free_port
from tests.integration.conftest import POLY, SIP, Env

pytestmark = pytest.mark.integration
HIVE = "urn:li:dataset:(urn:li:dataPlatform:hive,SampleHiveDataset,PROD)"
TRIALS = int(os.environ.get("LAMBDA_TRIGGER_FAULT_TRIALS", "20"))
SEED = int(os.environ.get("LAMBDA_TRIGGER_FAULT_SEED", str(int(time.time()))))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class ConsumerProcess:
    def __init__(self, env: dict[str, str], instance: str, log_dir: Path) -> None:
        self.env = {**env, "LAMBDA_TRIGGER_GROUP_INSTANCE_ID": instance}
        self.instance = instance
        self.log_dir = log_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        log = (self.log_dir / f"{self.instance}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lambda_trigger_consumer"],
            env={**self.env, "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT": str(self.port)},
            stdout=log,
            stderr=log,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "consumer exited"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.instance} never became ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _consumer_env(env: Env, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": env.stack.kafka_bootstrap,
        "SCHEMA_REGISTRY_URL": env.gms.schema_registry_url,
        "DATAHUB_GMS_URL": env.gms.url,
        "DATAHUB_GMS_TOKEN": env.gms.admin_token,
        "DATAHUB_TIMEOUT_SECONDS": "5",
        "LAMBDA_TRIGGER_EXECUTOR_ID": env.executor_id,
        "LAMBDA_TRIGGER_CONSUMER_GROUP": env.group_id,
        "LAMBDA_TRIGGER_RUNS_TOPIC": f"runs-{env.executor_id}",
        "LAMBDA_TRIGGER_DEAD_LETTER_TOPIC": f"dlq-{env.executor_id}",
        "DATAHUB_INGESTION_LAMBDA_MAPPING": json.dumps(env.mapping),
        "LAMBDA_TRIGGER_CONSUMER_HTTP_HOST": "127.0.0.1",
        "LAMBDA_TRIGGER_SESSION_TIMEOUT_MS": "6000",
        "LAMBDA_TRIGGER_COMMIT_INTERVAL_SECONDS": "0.2",
        "LAMBDA_TRIGGER_SHUTDOWN_GRACE_SECONDS": "10",
        **env.moto.env(),
        **extra,
    }


def test_sigkill_trials_leave_no_run_running_and_invoke_none_twice(
    env: Env, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    sync_fn, event_fn = env.functions["sip"], env.functions["poly"]
    env.moto.lambda_client().update_function_configuration(FunctionName=sync_fn, Timeout=4)
    queue_url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    env.moto.set_destinations(event_fn, queue_arn)
    machine = f"sm-{uuid.uuid4().hex[:8]}"
    machine_arn = env.moto.create_state_machine(machine)
    env.mapping = {
        "targets": {
            "sync": {"function": sync_fn, "label": "Sync loader"},
            "event": {
                "function": event_fn,
                "invocationType": "Event",
                "label": "Async loader",
                "maxDurationSeconds": 12,
            },
            "sfn": {
                "type": "stepfunctions",
                "stateMachineArn": machine_arn,
                "label": "Pipeline",
                "maxDurationSeconds": 12,
            },
        },
        "rules": [
            {"dataset": SIP, "target": "sync"},
            {"dataset": POLY, "target": "event"},
            {"dataset": HIVE, "target": "sfn"},
        ],
    }
    child_env = _consumer_env(
        env,
        LAMBDA_TRIGGER_COMPLETION_QUEUE_URL=queue_url,
        LAMBDA_TRIGGER_ONE_ACTIVE_RUN="false",  # many runs per dataset in flight at once
        LAMBDA_TRIGGER_SYNC_MARGIN_SECONDS="3",
    )
    consumers = [ConsumerProcess(child_env, f"c{i}", tmp_path) for i in range(2)]
    runs: dict[str, str] = {}  # runId -> kind
    kills: Counter[str] = Counter()
    try:
        for c in consumers:
            c.start()
        # The MCL topic of the test stack has one partition: one consumer holds it, the other
        # stands by (ready only once it owns an MCL partition) with its share of the ledger.
        consumers[0].wait_ready()
        time.sleep(3)
        for _trial in range(TRIALS):
            for kind, dataset in (("sync", SIP), ("event", POLY), ("sfn", HIVE)):
                delay = rng.uniform(0.2, 2.0)
                if kind == "sync":
                    env.moto.queue_result(sync_fn, payload={"ok": True}, delay_seconds=delay)
                elif kind == "event":
                    env.moto.queue_result(event_fn, payload={"ok": True}, delay_seconds=delay)
                else:
                    env.moto.queue_execution_result(machine, "SUCCEEDED", delay_seconds=delay)
                runs[env.request(dataset).run_id] = kind
            time.sleep(rng.uniform(0.0, 1.5))
            victim = rng.choice(consumers)
            victim.kill()
            kills[victim.instance] += 1
            victim.start()
        # Every deadline (12 s at most here, plus the sync margin) passes in this window.
        deadline = time.monotonic() + 120
        client = env.datahub()
        pending = dict(runs)
        while pending and time.monotonic() < deadline:
            for run_id in list(pending):
                result = client.read_result(run_id)
                if result is not None and result.status != "RUNNING":
                    pending.pop(run_id)
            time.sleep(0.5)
        statuses = Counter()
        by_kind: dict[str, Counter[str]] = {kind: Counter() for kind in set(runs.values())}
        for run_id, kind in runs.items():
            result = client.read_result(run_id)
            status = result.status if result else "NONE"
            statuses[status] += 1
            # The report's first line says why (e.g. "outcome unknown"), without its run id.
            why = ((result.report or "") if result else "").splitlines()[:1]
            by_kind[kind][f"{status}: {why[0][:80] if why else ''}"] += 1
        client.close()
    finally:
        for c in consumers:
            c.stop()

    invoked: Counter[str] = Counter()
    for fn in (sync_fn, event_fn):
        for inv in env.moto.invocations(fn):
            if inv.outcome != "invoke_error" and isinstance(inv.payload, dict):
                invoked[inv.payload["runId"]] += 1
    for execution in env.moto.executions(machine_arn):
        invoked[execution["name"]] += 1
    twice = {r: n for r, n in invoked.items() if n > 1}
    figures = {
        "trials": TRIALS,
        "seed": SEED,
        "runs": len(runs),
        "kills": dict(kills),
        "finalStatuses": dict(statuses),
        "byKind": {kind: dict(c) for kind, c in sorted(by_kind.items())},
        "invokedOnce": sum(1 for n in invoked.values() if n == 1),
        "neverInvoked": sum(1 for r in runs if invoked[r] == 0),
        "invokedTwice": len(twice),
        "stillRunning": statuses.get("RUNNING", 0) + statuses.get("NONE", 0),
    }
    print("fault trials:", json.dumps(figures))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults.json").write_text(json.dumps(figures, indent=2))
    assert twice == {}, f"invoked more than once: {twice} (seed {SEED})"
    assert figures["stillRunning"] == 0, f"{figures} (seed {SEED})"


def test_oversized_and_malformed_records_are_dead_lettered_and_passed(
    env: Env, tmp_path: Path
) -> None:
    """A 5 MB undecodable record (larger than the dead-letter producer may send) and garbage:
    the consumer stays up, dead-letters a reference to each, and its commits move past them."""
    topic = f"mcl-{env.executor_id}"
    create_topics(
        env.stack.kafka_bootstrap, [topic], 1, config={"max.message.bytes": str(8 * 1024 * 1024)}
    )
    producer = Producer(
        {"bootstrap.servers": env.stack.kafka_bootstrap, "message.max.bytes": 8 * 1024 * 1024}
    )
    key = b"urn:li:dataHubExecutionRequest:lt-oversized"
    producer.produce(topic, key=key, value=b"\x00\x00\x00\x00\x13" + b"x" * (5 * 1024 * 1024))
    producer.produce(topic, key=key, value=b"not avro at all")
    producer.produce(topic, key=b"urn:li:dataset:(x)", value=b"unrelated")
    assert producer.flush(30) == 0
    proc = ConsumerProcess(
        _consumer_env(env, METADATA_CHANGE_LOG_VERSIONED_TOPIC_NAME=topic), "c0", tmp_path
    )
    proc.start()
    try:
        proc.wait_ready()
        probe = Consumer({"bootstrap.servers": env.stack.kafka_bootstrap, "group.id": env.group_id})
        deadline = time.monotonic() + 60
        committed = -1
        while time.monotonic() < deadline:
            committed = probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
            if committed >= 3:
                break
            time.sleep(0.5)
        probe.close()
        assert committed == 3
        assert proc.proc is not None and proc.proc.poll() is None  # still up
    finally:
        proc.stop()
    dlq = Consumer(
        {
            "bootstrap.servers": env.stack.kafka_bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    dlq.subscribe([f"dlq-{env.executor_id}"])
    letters: list[Any] = []
    deadline = time.monotonic() + 30
    while len(letters) < 2 and time.monotonic() < deadline:
        msg = dlq.poll(1.0)
        if msg is not None and msg.error() is None:
            letters.append(msg)
    dlq.close()
    assert len(letters) == 2
    headers = [dict(m.headers() or []) for m in letters]
    omitted = [h for h in headers if "lambda-trigger.value-omitted" in h]
    assert (
        len(omitted) == 1
        and omitted[0]["lambda-trigger.value-bytes"] == str(5 * 1024 * 1024 + 5).encode()
    )
