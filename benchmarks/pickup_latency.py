"""How long a run takes from the request write to Lambda, on a consumer that is also reading
unrelated traffic:

    python -m benchmarks.pickup_latency [--requests 150] [--interval 0.2] [--background 1000]

On the local stack (Kafka from jars, GMS double, moto), the project's consumer runs as its own
process (`python -m benchmarks.drain serve`, shipped defaults) on the real MCL topic while
another process writes `--background` unrelated MCL records a second to it. Every `--interval`
seconds a run request is written the way the api writes one (the service token, through GMS);
each of the benchmark's datasets maps to one Lambda function. The first request goes out right
after the consumer's /readyz says ready and is measured like the others (issue 25: there is no
unmeasured warm-up); its own figures are printed beside the percentiles. Then, per run:

- write: the wall clock just before the write starts;
- mcl: GMS produced the request's MCL (its CreateTime: the GMS double's share ends here);
- pickup: the consumer has the record (its `request` record in the run ledger: the ledger
  record's CreateTime, stamped by the consumer's producer when it forwards the request);
- claimed / invoking: the driver's `claimed` and `invoking` ledger snapshots;
- invoked: moto's record of the Invoke call (its own clock);
- SUCCESS: GMS stored the final status (the CreateTime of its MCL).

All clocks are this machine's wall clock. Prints p50/p95/p99/max of each span in ms, and the
first request's.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from benchmarks.records import DATASETS, Pair, dataset_urn, real_records
from devstack.gms_double.mcl import MclCodec
from devstack.ports import free_port
from lambda_trigger.contract import RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import DataHubSettings
from lambda_trigger.urns import EXECUTION_REQUEST_PREFIX

MCL_TOPIC = "MetadataChangeLog_Versioned_v1"
EXECUTOR = "bench-latency"


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


@dataclass
class Timeline:
    write: float  # ms since the epoch
    mcl: float | None = None
    pickup: float | None = None
    claimed: float | None = None
    invoking: float | None = None
    invoked: float | None = None
    success: float | None = None


def _read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic` (all partitions, from the beginning) up to its end now."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    left = set(partitions)
    out: list[Any] = []
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=1.0):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    left.discard(msg.partition())
                continue
            out.append(msg)
    consumer.close()
    return out


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the consumer exited while starting")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the consumer did not get ready")


def _write(client: DataHubClient, dataset: str) -> tuple[str, float]:
    request = RunRequest(
        run_id=new_run_id(),
        dataset_urn=dataset,
        executor_id=EXECUTOR,
        source_type=SourceType.API.value,
        requested_at_ms=now_ms(),
        actor_urn="urn:li:corpuser:alice",
    )
    started = time.time() * 1000
    client.write_request(request)
    return request.run_id, started


def _wait_final(client: DataHubClient, run_ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        for run_id in run_ids:
            if run_id in statuses:
                continue
            result = client.read_result(run_id)
            if result is not None and result.status not in ("RUNNING",):
                statuses[run_id] = str(result.status)
        if len(statuses) == len(run_ids):
            break
        time.sleep(0.2)
    return statuses


SPANS = {
    "write_to_pickup": ("write", "pickup"),
    "write_to_invoked": ("write", "invoked"),
    "write_to_success": ("write", "success"),
    "write_to_mcl": ("write", "mcl"),
    "mcl_to_pickup": ("mcl", "pickup"),
    "pickup_to_claimed": ("pickup", "claimed"),
    "claimed_to_invoking": ("claimed", "invoking"),
    "invoking_to_invoked": ("invoking", "invoked"),
}


def run_latency(
    stack: Any,
    unrelated: list[Pair],
    *,
    requests: int = 150,
    interval: float = 0.2,
    background: float = 1000.0,
    workdir: Path,
) -> dict[str, Any]:
    env = stack.env()
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    suffix = uuid.uuid4().hex[:8]
    functions = [f"bench-{suffix}-{i}" for i in range(DATASETS)]
    for name in functions:
        stack.moto.create_lambda(name)
    mapping = {
        "targets": {f"t{i}": {"function": fn} for i, fn in enumerate(functions)},
        "rules": [{"dataset": dataset_urn(i), "target": f"t{i}"} for i in range(DATASETS)],
    }
    runs_topic = f"bench-runs-{suffix}"
    port = free_port()
    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    values_file = workdir / f"traffic-{suffix}.json"
    values_file.write_text(json.dumps([(k.hex(), v.hex()) for k, v in unrelated]))
    # The background traffic flows before the consumer starts, as DataHub's MCLs do: the
    # consumer starts into it, and the first request does not share the CPU with the traffic
    # process's own start-up (a second Python process importing confluent-kafka on a 2-core
    # machine), which is not what a user's first click after a deploy meets.
    traffic = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.drain",
            "traffic",
            "--bootstrap",
            bootstrap,
            "--topic",
            MCL_TOPIC,
            "--rate",
            str(background),
            "--seconds",
            str(requests * interval + 240),
            "--values",
            str(values_file),
        ],
        env=child_env,
        stdout=subprocess.DEVNULL,
    )
    time.sleep(2.0)  # its start-up is over; it produces at its rate
    consumer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.drain",
            "serve",
            "--bootstrap",
            bootstrap,
            "--topic",
            MCL_TOPIC,
            "--registry",
            env["SCHEMA_REGISTRY_URL"],
            "--gms-url",
            env["DATAHUB_GMS_URL"],
            "--gms-token",
            env["DATAHUB_GMS_TOKEN"],
            "--executor-id",
            EXECUTOR,
            "--mapping",
            json.dumps(mapping),
            "--runs-topic",
            runs_topic,
            "--http-port",
            str(port),
        ],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=(workdir / f"latency-consumer-{suffix}.log").open("wb"),
    )
    client = DataHubClient(
        DataHubSettings(
            gms_url=env["DATAHUB_GMS_URL"], gms_token=env["DATAHUB_GMS_TOKEN"], executor_id=EXECUTOR
        )
    )
    try:
        _wait_ready(port, consumer)
        # No warm-up run (issue 25): the first request is measured like every other, right
        # after the consumer said ready, as the first user after a start meets it. Only this
        # process's own writer is warmed: it stands in for the api, which is warm when ready.
        client.warm()
        timelines: dict[str, Timeline] = {}
        start = time.monotonic()
        for n in range(requests):
            # Paced on the clock; the datasets take turns, so no run is a duplicate of one
            # still active (one active run per dataset and target).
            wait = start + n * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            run_id, written = _write(client, dataset_urn(n % DATASETS))
            timelines[run_id] = Timeline(written)
        statuses = _wait_final(client, list(timelines), 120)
    finally:
        client.close()
        traffic.terminate()  # started before the consumer: always there
        traffic.wait(30)
        consumer.terminate()
        out, _ = consumer.communicate(timeout=60)
    lines = out.decode().strip().splitlines()
    consumer_rss = json.loads(lines[-1])["rss_mib"] if lines else float("nan")

    for msg in _read_topic(bootstrap, runs_topic):
        key = (msg.key() or b"").decode()
        line = timelines.get(key)
        if line is None or msg.value() is None:
            continue
        stamp = float(msg.timestamp()[1])
        data = json.loads(msg.value())
        if data.get("kind") == "request" and line.pickup is None:
            line.pickup = stamp
        elif data.get("kind") == "state":
            if data.get("phase") == "claimed" and line.claimed is None:
                line.claimed = stamp
            elif data.get("phase") == "invoking" and line.invoking is None:
                line.invoking = stamp
    for fn in functions:
        for call in stack.moto.invocations(fn):
            line = timelines.get(str((call.payload or {}).get("runId")))
            if line is not None and line.invoked is None:
                line.invoked = call.timestamp * 1000
    codec = MclCodec()
    for msg in _read_topic(bootstrap, MCL_TOPIC):
        key = (msg.key() or b"").decode()
        if not key.startswith(EXECUTION_REQUEST_PREFIX):
            continue
        line = timelines.get(key[len(EXECUTION_REQUEST_PREFIX) :])
        if line is None or line.success is not None:
            continue
        value = codec.decode(msg.value())
        if value.get("aspectName") == "dataHubExecutionRequestInput" and line.mcl is None:
            line.mcl = float(msg.timestamp()[1])
        if value.get("aspectName") != "dataHubExecutionRequestResult":
            continue
        aspect = json.loads(value["aspect"]["value"])
        if aspect.get("status") == "SUCCESS":
            line.success = float(msg.timestamp()[1])

    complete = [t for t in timelines.values() if None not in vars(t).values()]
    lost = len(timelines) - len(complete)
    first = next(iter(timelines.values()), None)  # dicts keep the order of the writes

    def span(a: str, b: str) -> list[float]:
        return [getattr(t, b) - getattr(t, a) for t in complete]

    def first_span(a: str, b: str) -> float | None:
        if first is None or getattr(first, a) is None or getattr(first, b) is None:
            return None
        return float(getattr(first, b) - getattr(first, a))

    return {
        "requests": len(timelines),
        "incomplete": lost,
        "statuses": {s: list(statuses.values()).count(s) for s in set(statuses.values())},
        "consumer_rss_mib": consumer_rss,
        "write_to_pickup": summary(span("write", "pickup")) if complete else {},
        "write_to_invoked": summary(span("write", "invoked")) if complete else {},
        "write_to_success": summary(span("write", "success")) if complete else {},
        "write_to_mcl": summary(span("write", "mcl")) if complete else {},
        "mcl_to_pickup": summary(span("mcl", "pickup")) if complete else {},
        "pickup_to_claimed": summary(span("pickup", "claimed")) if complete else {},
        "claimed_to_invoking": summary(span("claimed", "invoking")) if complete else {},
        "invoking_to_invoked": summary(span("invoking", "invoked")) if complete else {},
        # The first request after the consumer got ready, on its own.
        "first": {name: first_span(a, b) for name, (a, b) in SPANS.items()},
    }


def print_latency(result: dict[str, Any]) -> None:
    print(
        f"latency: {result['requests']} requests (the first right after the consumer was "
        f"ready, none unmeasured), statuses {result['statuses']}, {result['incomplete']} "
        f"without a full timeline; consumer peak RSS {result['consumer_rss_mib']:.0f} MiB"
    )
    print(f"  {'span (ms)':<22} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'first':>8}")
    first = result.get("first", {})
    for name in SPANS:
        s = result[name]
        own = first.get(name)
        if s:
            print(
                f"  {name:<22} {s['p50']:8.1f} {s['p95']:8.1f} {s['p99']:8.1f} {s['max']:8.1f} "
                + (f"{own:8.1f}" if own is not None else f"{'-':>8}")
            )
    invoked = first.get("write_to_invoked")
    p50 = (result["write_to_invoked"] or {}).get("p50")
    if invoked is not None and p50 is not None:
        print(
            f"first request: write -> Lambda invoked {invoked:.1f} ms "
            f"(p50 {p50:.1f} ms, {invoked - p50:+.1f} ms)"
        )
    else:
        print("first request: no full timeline")


def main() -> None:
    from devstack.stack import Stack

    parser = argparse.ArgumentParser(prog="python -m benchmarks.pickup_latency")
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--background", type=float, default=1000.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, Stack(Path(state)) as stack:
        unrelated, _foreign = real_records(stack.gms)
        gc.freeze()  # as in side_by_side: the in-process GMS double's startup objects
        result = run_latency(
            stack,
            unrelated,
            requests=args.requests,
            interval=args.interval,
            background=args.background,
            workdir=Path(state),
        )
        print_latency(result)


if __name__ == "__main__":
    main()
