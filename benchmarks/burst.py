"""Many runs at once (issue 24): a burst of run requests on the local stack, one consumer and
then several in one group.

    python -m benchmarks.burst [--requests 2000] [--datasets 200] [--seconds 5]
                               [--consumers 1,3] [--time-scale 1.0] [--singles 20]
                               [--sfn-events] [--burst-source sdk] [--log-dir DIR]

`--requests` run requests are written within `--seconds` across `--datasets` datasets (4 writer
threads in a process of their own, benchmarks/burst_writers.py; the service token; source type `LAMBDA_TRIGGER_SDK` as a backfill script or a schedule
writes them, or with `--burst-source api` as the api writes clicks). Each dataset maps to one
of three targets on the moto server, in turn: a synchronous Lambda that answers after 1-5 s, an
Event Lambda whose destination (the completion queue) reports after 10-60 s, and a Step
Functions state machine whose executions end after 10-120 s; each duration is drawn at random
and multiplied by `--time-scale` (0.05 makes a 2-minute execution 6 s: a scaled-down burst for
a busy machine). The consumers run with the shipped defaults except
LAMBDA_TRIGGER_ONE_ACTIVE_RUN=false (ten requests of one dataset are ten runs, not one run and
nine DUPLICATEs) and the completion queue. During the burst `--singles` lone runs of a dataset
of their own (a synchronous Lambda that answers at once) are requested, spread over the burst,
written as the api writes a click: what a user's click meets. With `--sfn-events` an
EventBridge rule sends the executions' status events to the completion queue (the local stack's
Step Functions send them as AWS does) and the consumers run with
LAMBDA_TRIGGER_SFN_STATUS_EVENTS=true.

Per phase (number of consumers) it prints, and the last line repeats the first phase's:

    burst_invoked_s=  first request written -> last run invoked (moto's records)
    single_p99_ms=    request -> invoke of the lone runs (p99; with 20 of them: the slowest)
    aws_calls_per_run= every AWS call of the consumers (lambda_trigger_consumer_aws_calls_total:
                      Invoke, StartExecution, DescribeExecution, SQS receives, warm-up) / runs
    rss_mib_per_1k_inflight= the consumers' RSS growth over their idle RSS at the peak of runs in
                      flight (open_runs), per 1,000 of them
    lost=             runs without a final status in DataHub at the end
    double=           runs invoked (Lambda) or started (Step Functions) more than once
    all_final_s=      first request written -> every run final in DataHub
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from benchmarks.pickup_latency import MCL_TOPIC, percentile
from devstack.ports import free_port
from lambda_trigger.contract import SourceType
from lambda_trigger.sfn_events_rule import setup as sfn_events_setup
from lambda_trigger.urns import execution_request_urn

DURATIONS = {"sync": (1.0, 5.0), "event": (10.0, 60.0), "sfn": (10.0, 120.0)}
KINDS = ("sync", "event", "sfn")


def burst_dataset(i: int) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:hive,burst.table_{i},PROD)"


SINGLE_DATASET = "urn:li:dataset:(urn:li:dataPlatform:hive,burst.single,PROD)"


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# One client for every /metrics and /readyz look: `httpx.get` builds a client, and with it an
# SSL context loading the CA bundle (tens of ms of CPU holding the GIL), per call: twice a
# second, in the process that also hosts the GMS double the burst writes to.
_LOCAL = httpx.Client(timeout=5)


def _metric_sum(port: int, name: str) -> float:
    """The sum of every sample of `name` on a consumer's /metrics."""
    try:
        text = _LOCAL.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _create_datasets(stack: Any, count: int) -> None:
    from datahub.emitter.mcp import MetadataChangeProposalWrapper
    from datahub.emitter.rest_emitter import DatahubRestEmitter
    from datahub.metadata.schema_classes import StatusClass

    emitter = DatahubRestEmitter(stack.gms.url, token=stack.gms.admin_token)
    for urn in [burst_dataset(i) for i in range(count)] + [SINGLE_DATASET]:
        emitter.emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=StatusClass(False)))
    emitter.close()


def run_phase(stack: Any, args: argparse.Namespace, consumers: int, work: Path) -> dict[str, Any]:
    env = stack.env()
    moto = stack.moto
    suffix = uuid.uuid4().hex[:8]
    executor = f"burst-{suffix}"
    rng = random.Random(suffix)
    burst_source = SourceType.SDK if args.burst_source == "sdk" else SourceType.API
    sync_fn, event_fn, single_fn = (f"burst-{k}-{suffix}" for k in ("sync", "event", "single"))
    for fn in (sync_fn, event_fn, single_fn):
        moto.create_lambda(fn, timeout=max(3, math.ceil(DURATIONS["sync"][1] * args.time_scale)))
    machine = moto.create_state_machine(f"burst-sfn-{suffix}")
    queue_url, queue_arn = moto.create_queue(f"burst-done-{suffix}")
    moto.set_destinations(event_fn, queue_arn)
    if args.sfn_events:  # the EventBridge rule `iam-policy --sfn-events-rule` prints
        rule = sfn_events_setup([machine], queue_arn, rule_name=f"burst-sfn-{suffix}")
        events = moto.client("events")
        events.put_rule(
            Name=rule["rule"]["Name"], EventPattern=json.dumps(rule["rule"]["EventPattern"])
        )
        events.put_targets(Rule=rule["rule"]["Name"], Targets=[rule["target"]])
    mapping = {
        "targets": {
            "sync": {"function": sync_fn},
            "event": {"function": event_fn, "invocationType": "Event"},
            "sfn": {"type": "stepfunctions", "stateMachineArn": machine},
            "single": {"function": single_fn, "label": "single"},
        },
        "rules": [
            {"dataset": burst_dataset(i), "target": KINDS[i % 3]} for i in range(args.datasets)
        ]
        + [{"dataset": SINGLE_DATASET, "target": "single"}],
    }
    # The durations, queued first-in first-out per function (moto's devstack results).
    kinds = [KINDS[(n % args.datasets) % 3] for n in range(args.requests)]
    for kind in kinds:
        low, high = DURATIONS[kind]
        delay = rng.uniform(low, high) * args.time_scale
        if kind == "sync":
            moto.queue_result(sync_fn, payload={"ok": True}, delay_seconds=delay)
        elif kind == "event":
            moto.queue_result(event_fn, payload={"ok": True}, delay_seconds=delay)
        else:
            moto.queue_execution_result(machine, "SUCCEEDED", output={}, delay_seconds=delay)

    child_env = {
        **os.environ,
        **env,
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TRIGGER_ONE_ACTIVE_RUN": "false",
        "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL": queue_url,
        "LAMBDA_TRIGGER_SFN_STATUS_EVENTS": "true" if args.sfn_events else "false",
        # INFO, as the consumer logs in production: each run's steps, which the lone runs'
        # stages are read from.
        "BENCH_LOG_LEVEL": "INFO",
    }
    ports = [free_port() for _ in range(consumers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.drain",
                "serve",
                "--bootstrap",
                env["KAFKA_BOOTSTRAP_SERVERS"],
                "--topic",
                MCL_TOPIC,
                "--registry",
                env["SCHEMA_REGISTRY_URL"],
                "--gms-url",
                env["DATAHUB_GMS_URL"],
                "--gms-token",
                env["DATAHUB_GMS_TOKEN"],
                "--executor-id",
                executor,
                "--group",
                f"burst-group-{suffix}",
                "--runs-topic",
                f"burst-runs-{suffix}",
                "--mapping",
                json.dumps(mapping),
                "--http-port",
                str(port),
            ],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=(work / f"burst-{consumers}-{n}.log").open("wb"),
        )
        for n, port in enumerate(ports)
    ]
    written: dict[str, tuple[float, str]] = {}  # run id -> (write time, kind)
    samples: list[tuple[float, float, float]] = []  # (time, open runs, RSS growth MiB)
    try:
        deadline = time.monotonic() + 180
        while not all(_ready(p) for p in ports):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                states = [_readyz(p) for p in ports]
                raise RuntimeError(f"consumers did not get ready: {states}")
            time.sleep(0.2)
        # Every member assigned (the group settles after the last one joined).
        time.sleep(2.0)
        idle = [_rss_mib(p.pid) for p in procs]
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.is_set():
                open_runs = sum(_metric_sum(p, "lambda_trigger_consumer_open_runs") for p in ports)
                growth = sum(_rss_mib(p.pid) - i for p, i in zip(procs, idle, strict=True))
                samples.append((time.time(), open_runs, growth))
                stop_sampling.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # The writers run in a process of their own (benchmarks/burst_writers.py), warm
        # before the burst starts.
        writers = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.burst_writers"],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(work / f"burst-writers-{consumers}.log").open("wb"),
            text=True,
        )
        assert writers.stdin is not None and writers.stdout is not None
        job = {
            "gms_url": env["DATAHUB_GMS_URL"],
            "gms_token": env["DATAHUB_GMS_TOKEN"],
            "executor": executor,
            "datasets": [burst_dataset(n % args.datasets) for n in range(args.requests)],
            "kinds": kinds,
            "source": burst_source.value,
            "seconds": args.seconds,
            "singles": args.singles,
            "single_dataset": SINGLE_DATASET,
        }
        writers.stdin.write(json.dumps(job) + "\n")
        writers.stdin.flush()
        if writers.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the writers did not start; see {work}/burst-writers-*.log")
        start = time.time() + 0.2
        writers.stdin.write(f"{start}\n")
        writers.stdin.flush()
        out, _ = writers.communicate(timeout=args.final_timeout)
        single_writes_ms: list[float] = []  # how long GMS took to accept each lone request
        for w in json.loads(out.strip().splitlines()[-1]):
            written[str(w["run_id"])] = (float(w["at"]), str(w["kind"]))
            if w["kind"] == "single":
                single_writes_ms.append(float(w["took"]) * 1000)
        write_s = time.time() - start
        total = len(written)
        longest = max(DURATIONS["sfn"][1], DURATIONS["event"][1]) * args.time_scale
        final_by = time.monotonic() + args.final_timeout + longest
        finished = 0.0
        while time.monotonic() < final_by:
            finished = sum(
                _metric_sum(p, "lambda_trigger_consumer_runs_finished_total") for p in ports
            )
            if finished >= total:
                break
            time.sleep(0.5)
        all_final_s = time.time() - start if finished >= total else float("nan")
        stop_sampling.set()
        sampler.join(5)
        calls = sum(_metric_sum(p, "lambda_trigger_consumer_aws_calls_total") for p in ports)
        throttles = sum(
            _metric_sum(p, "lambda_trigger_consumer_aws_throttles_total") for p in ports
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()

    # What AWS saw: every Lambda invoke (payload runId) and every execution (named runId).
    invoked: dict[str, list[float]] = {}
    for fn in (sync_fn, event_fn, single_fn):
        for call in moto.invocations(fn):
            run_id = str((call.payload or {}).get("runId"))
            invoked.setdefault(run_id, []).append(call.timestamp)
    for execution in moto.executions(machine):
        invoked.setdefault(str(execution["name"]), []).append(execution["startDate"].timestamp())
    double = sum(1 for r in written if len(invoked.get(r, [])) > 1)
    statuses: Counter[str] = Counter()
    lost_kinds: Counter[str] = Counter()
    for run_id, (_t, kind) in written.items():
        result = stack.gms.get_aspect(
            execution_request_urn(run_id), "dataHubExecutionRequestResult"
        )
        status = str((result or {}).get("status"))
        statuses[status] += 1
        if status in ("None", "RUNNING"):
            lost_kinds[kind] += 1
            print(
                f"  not final: {run_id} ({kind}, {status}, invoked {len(invoked.get(run_id, []))}x)"
            )
    lost = sum(n for s, n in statuses.items() if s in ("None", "RUNNING"))
    burst_runs = [r for r, (_t, kind) in written.items() if kind != "single"]
    last_invoke = max((min(invoked[r]) for r in burst_runs if r in invoked), default=float("nan"))
    singles_ms = [
        (min(invoked[r]) - t) * 1000
        for r, (t, kind) in written.items()
        if kind == "single" and r in invoked
    ]
    stages, slowest_stages = _single_stages(
        [work / f"burst-{consumers}-{n}.log" for n in range(consumers)],
        {
            r: (t, min(invoked[r]))
            for r, (t, kind) in written.items()
            if kind == "single" and r in invoked
        },
    )
    peak = max(samples, key=lambda s: s[1], default=(0.0, 0.0, 0.0))
    peak_growth = max((s[2] for s in samples), default=0.0)
    return {
        "consumers": consumers,
        "runs": total,
        "write_s": write_s,
        "burst_invoked_s": last_invoke - start,
        "single_p99_ms": percentile(singles_ms, 99) if singles_ms else float("nan"),
        "single_p50_ms": percentile(singles_ms, 50) if singles_ms else float("nan"),
        # Of which GMS's answer to the request's write (the double's, here, in a burst).
        "single_write_p50_ms": percentile(single_writes_ms, 50) if single_writes_ms else 0.0,
        "single_stages_p50_ms": stages,
        "single_slowest_stages_ms": slowest_stages,
        "aws_calls_per_run": calls / max(1, total),
        "aws_throttles": throttles,
        "peak_inflight": peak[1],
        "rss_mib_per_1k_inflight": peak_growth / peak[1] * 1000 if peak[1] else float("nan"),
        "lost": lost,
        "double": double,
        "all_final_s": all_final_s,
        "statuses": dict(statuses),
        "lost_kinds": dict(lost_kinds),
        "kinds": dict(Counter(k for _t, k in written.values())),
    }


def _log_time(line: str) -> float:
    """A consumer log line's time (benchmarks.drain logs asctime: local time, milliseconds)."""
    stamp = line[:23]
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:23]) / 1000


def _single_stages(
    logs: list[Path], singles: dict[str, tuple[float, float]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Where a lone run's wait goes (p50s, and the slowest run's own, ms), from the consumers'
    logs: written -> accepted
    (GMS's write, its MCL, the poll loop), accepted -> "invoking" (the ledger records, the
    checks, the claim), "invoking" -> AWS's record of the call."""
    accepted: dict[str, float] = {}
    invoking: dict[str, float] = {}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            for marker, found in ((" accepted run ", accepted), (": invoking ", invoking)):
                if marker not in line:
                    continue
                words = line.split()
                run_id = words[words.index("run") + 1].rstrip(":") if "run" in words else ""
                if run_id in singles:
                    found.setdefault(run_id, _log_time(line))
    spans: dict[str, list[float]] = {"to_accepted": [], "to_invoking": [], "to_aws": []}
    slowest: tuple[float, dict[str, float]] = (0.0, {})
    for run_id, (written_at, aws_at) in singles.items():
        if run_id in accepted and run_id in invoking:
            its = {
                "to_accepted": (accepted[run_id] - written_at) * 1000,
                "to_invoking": (invoking[run_id] - accepted[run_id]) * 1000,
                "to_aws": (aws_at - invoking[run_id]) * 1000,
            }
            for k, v in its.items():
                spans[k].append(v)
            if (aws_at - written_at) * 1000 > slowest[0]:
                slowest = ((aws_at - written_at) * 1000, its)
    p50s = {k: percentile(v, 50) if v else float("nan") for k, v in spans.items()}
    # The slowest one's own stages: where the p99's time went.
    return p50s, slowest[1]


def _readyz(port: int) -> dict[str, Any]:
    try:
        body: dict[str, Any] = _LOCAL.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
        return body
    except (httpx.HTTPError, ValueError):
        return {}


def _ready(port: int) -> bool:
    """Warm, with partitions of either topic. In a group of more consumers than the MCL topic
    has partitions, a member may own only run-ledger partitions: it drives runs, yet its
    /readyz (which counts MCL partitions) says 503."""
    body = _readyz(port)
    if body.get("status") == "ok":
        return True
    owns = int(body.get("assignedPartitions") or 0) + int(body.get("ledgerPartitions") or 0)
    return bool(body.get("warm")) and owns > 0 and not body.get("failing")


def _line(r: dict[str, Any]) -> str:
    return (
        f"burst_invoked_s={r['burst_invoked_s']:.1f} single_p99_ms={r['single_p99_ms']:.0f} "
        f"aws_calls_per_run={r['aws_calls_per_run']:.2f} "
        f"rss_mib_per_1k_inflight={r['rss_mib_per_1k_inflight']:.1f} lost={r['lost']} "
        f"double={r['double']} all_final_s={r['all_final_s']:.1f}"
    )


def main() -> None:
    from devstack.stack import Stack

    parser = argparse.ArgumentParser(prog="python -m benchmarks.burst")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="the burst's length")
    parser.add_argument("--consumers", default="1,3", help="consumer counts, one phase each")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies durations")
    parser.add_argument("--singles", type=int, default=20, help="lone runs during the burst")
    parser.add_argument(
        "--sfn-events",
        action="store_true",
        help="Step Functions runs end by their status events (LAMBDA_TRIGGER_SFN_STATUS_EVENTS)",
    )
    parser.add_argument(
        "--final-timeout", type=float, default=600.0, help="s to wait for final statuses"
    )
    parser.add_argument(
        "--burst-source",
        choices=["sdk", "api"],
        default="sdk",
        help="the burst's source type: sdk (a script, a schedule: what bursts are) or api "
        "(every request a click); the lone runs are always api",
    )
    parser.add_argument(
        "--log-dir", default=None, help="keep the consumers' logs here (default: thrown away)"
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as state, Stack(Path(state)) as stack:
        _create_datasets(stack, args.datasets)
        gc.freeze()  # as in side_by_side: the in-process GMS double's start-up objects
        for consumers in [int(c) for c in args.consumers.split(",") if c.strip()]:
            logs = Path(args.log_dir) if args.log_dir else Path(state)
            logs.mkdir(parents=True, exist_ok=True)
            r = run_phase(stack, args, consumers, logs)
            results.append(r)
            print(
                f"{consumers} consumer(s): {r['runs']} runs ({r['kinds']}) written in "
                f"{r['write_s']:.1f} s; statuses {r['statuses']}; peak {r['peak_inflight']:.0f} "
                f"in flight; {r['aws_throttles']:.0f} throttled AWS calls; lone runs "
                f"p50 {r['single_p50_ms']:.0f} ms (of which GMS's answer to the write: "
                f"p50 {r['single_write_p50_ms']:.0f} ms); their p50 stages, ms: "
                + ", ".join(f"{k} {v:.0f}" for k, v in r["single_stages_p50_ms"].items())
                + "; the slowest one's: "
                + ", ".join(f"{k} {v:.0f}" for k, v in r["single_slowest_stages_ms"].items()),
                flush=True,
            )
            print(f"  consumers={consumers} {_line(r)}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(_line(results[0]), flush=True)


if __name__ == "__main__":
    main()
