"""Write latency of the GMS double as its store fills: flat, because a write touches only its own
rows in the SQLite state file (devstack/gms_double/persist.py) instead of rewriting the state.

    python -m benchmarks.gms_double_writes [--writes 10000] [--buckets 10]
    python -m benchmarks.gms_double_writes --threads 4 [--writes 2000]

Starts a real Kafka broker (Kafka from jars) and a GMS double with a state file, then sends
`--writes` Rest.li ingestProposal requests one after the other over one kept-alive connection,
each a new execution request (so every write adds two rows: its key aspect and the request) and
measures each round trip, MCL production to the broker included. Prints p50/p99 per bucket of
writes and, last, the ratio of the last bucket's p50 to the first one's (1.0 = flat).

With `--threads N` (issue 24: a burst of run requests) N threads write the `--writes` requests
at once, each through its own DataHubClient.write_request (the SDK's OpenAPI path with
`If-Version-Match: -1`, as the api and benchmarks/burst.py write them), and it prints the
writes a second, every write's MCL delivered to the broker before its answer. The writers run
in the double's process, as benchmarks/burst.py's do, so the SDK's CPU and the double's share
one GIL; with `--writer-process` they run in a child process instead (as the api and GMS run
apart): the double's own capacity. It also prints the CPU the process(es) spent per write.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from devstack.gms_double import GmsDouble
from devstack.kafka import KafkaBroker


def _proposal(i: int) -> dict[str, object]:
    value = {
        "task": "LAMBDA_TRIGGER_RUN",
        "args": {"datasetUrn": f"urn:li:dataset:(urn:li:dataPlatform:athena,bench.t{i},PROD)"},
        "executorId": "lambda-trigger",
        "source": {"type": "BENCHMARK"},
        "requestedAt": 1764100000000 + i,
    }
    return {
        "proposal": {
            "entityType": "dataHubExecutionRequest",
            "entityUrn": f"urn:li:dataHubExecutionRequest:bench-{uuid.uuid4()}",
            "changeType": "UPSERT",
            "aspectName": "dataHubExecutionRequestInput",
            "aspect": {"contentType": "application/json", "value": json.dumps(value)},
        },
        "async": "false",
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _concurrent(gms: GmsDouble, writes: int, threads: int) -> tuple[float, list[float]]:
    """`writes` run requests from `threads` writers at once: (seconds, latencies in ms)."""
    return _write_concurrently(gms.url, gms.admin_token, writes, threads)


def _child_writer(url: str, token: str, writes: int, threads: int, out: Any) -> None:
    before = _cpu_seconds()
    elapsed, latencies = _write_concurrently(url, token, writes, threads)
    out.send((elapsed, latencies, _cpu_seconds() - before))


def _write_concurrently(
    url: str, token: str, writes: int, threads: int
) -> tuple[float, list[float]]:
    from lambda_trigger.contract import RunRequest, SourceType, now_ms
    from lambda_trigger.datahub import DataHubClient
    from lambda_trigger.runid import new_run_id
    from lambda_trigger.settings import DataHubSettings

    settings = DataHubSettings(gms_url=url, gms_token=token, executor_id="bench")
    clients = [DataHubClient(settings) for _ in range(threads)]
    for client in clients:
        client.warm()
    latencies: list[float] = []
    lock = threading.Lock()
    go = threading.Barrier(threads + 1)

    def writer(client: DataHubClient, count: int) -> None:
        go.wait()
        for i in range(count):
            request = RunRequest(
                run_id=new_run_id(),
                dataset_urn=f"urn:li:dataset:(urn:li:dataPlatform:athena,bench.t{i % 200},PROD)",
                executor_id="bench",
                source_type=SourceType.API.value,
                requested_at_ms=now_ms(),
                actor_urn="urn:li:corpuser:alice",
            )
            began = time.perf_counter()
            client.write_request(request)
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)

    shares = [writes // threads + (1 if t < writes % threads else 0) for t in range(threads)]
    pool = [
        threading.Thread(target=writer, args=(c, n)) for c, n in zip(clients, shares, strict=True)
    ]
    for t in pool:
        t.start()
    go.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    for client in clients:
        client.close()
    return elapsed, latencies


def _in_child(gms: GmsDouble, writes: int, threads: int) -> tuple[float, list[float], float]:
    """The writers in a fresh process (spawned: no copy of this one's Kafka threads); returns
    (seconds, latencies in ms, the child's CPU seconds while it wrote)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(
        target=_child_writer, args=(gms.url, gms.admin_token, writes, threads, theirs)
    )
    child.start()
    try:
        elapsed, latencies, cpu = ours.recv()
    finally:
        child.join(30)
    return elapsed, latencies, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--buckets", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="concurrent writers (0: one)")
    parser.add_argument(
        "--writer-process",
        action="store_true",
        help="with --threads: the writers in a child process, not the double's",
    )
    args = parser.parse_args()
    if args.threads:
        with tempfile.TemporaryDirectory() as tmp, KafkaBroker() as broker:
            state = Path(tmp) / "gms-state.sqlite3"
            with GmsDouble(broker.bootstrap_servers, state_file=state) as gms:
                cpu_before = _cpu_seconds()
                writer_cpu = 0.0
                if args.writer_process:
                    elapsed, took, writer_cpu = _in_child(gms, args.writes, args.threads)
                else:
                    elapsed, took = _concurrent(gms, args.writes, args.threads)
                cpu = _cpu_seconds() - cpu_before
                mcls = gms.mcl_count()
        where = "a child process" if args.writer_process else "the double's process"
        print(
            f"{args.writes} writes from {args.threads} threads in {where} in {elapsed:.2f} s: "
            f"{args.writes / elapsed:.0f} writes/s, p50 {statistics.median(took):.1f} ms, "
            f"p99 {_quantile(took, 0.99):.1f} ms, {mcls} MCLs produced; CPU per write: "
            + (
                f"double's process {cpu / args.writes * 1000:.2f} ms, "
                f"writers' process {writer_cpu / args.writes * 1000:.2f} ms"
                if args.writer_process
                else f"{cpu / args.writes * 1000:.2f} ms (double, SDK writers, librdkafka)"
            )
        )
        return

    with tempfile.TemporaryDirectory() as tmp, KafkaBroker() as broker:
        state = Path(tmp) / "gms-state.sqlite3"
        with GmsDouble(broker.bootstrap_servers, state_file=state) as gms:
            headers = {
                "Authorization": f"Bearer {gms.admin_token}",
                "X-RestLi-Protocol-Version": "2.0.0",
            }
            latencies: list[float] = []
            with httpx.Client(base_url=gms.url, headers=headers, timeout=30) as client:
                for i in range(20):  # warm up the connection and the producer
                    client.post("/aspects?action=ingestProposal", json=_proposal(-i - 1))
                for i in range(args.writes):
                    body = _proposal(i)
                    began = time.perf_counter()
                    answer = client.post("/aspects?action=ingestProposal", json=body)
                    latencies.append((time.perf_counter() - began) * 1000)
                    answer.raise_for_status()
            stored = len(gms.store)
        size = state.stat().st_size + sum(
            p.stat().st_size for p in Path(tmp).glob("gms-state.sqlite3-*")
        )

    per_bucket = max(1, len(latencies) // args.buckets)
    medians = []
    print(f"{args.writes} writes, {stored} aspects stored at the end, state {size / 1e6:.1f} MB")
    print("writes            p50 ms   p99 ms")
    for b in range(args.buckets):
        chunk = latencies[b * per_bucket : (b + 1) * per_bucket]
        if not chunk:
            continue
        medians.append(statistics.median(chunk))
        print(
            f"{b * per_bucket + 1:>6}-{(b + 1) * per_bucket:<6}  "
            f"{medians[-1]:>7.2f}  {_quantile(chunk, 0.99):>7.2f}"
        )
    print(f"last_over_first_p50={medians[-1] / medians[0]:.2f}")


if __name__ == "__main__":
    main()
