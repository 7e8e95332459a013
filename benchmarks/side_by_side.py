"""The consumer side by side with the ceiling and with datahub-actions, plus pickup latency
and memory, in one run on the local stack (`make bench`):

    python -m benchmarks.side_by_side [--records 1000000] [--actions-records 200000]
                                      [--requests 150] [--repeat 3] [--trigger-datasets 100]

1. Two record sets (benchmarks/records.py), each written through the GMS double and replayed
   into a new 3-partition topic of `--records` records, one in 1,000 a foreign execution
   request: "small" (status, properties, tags, browse paths: ~450 B) and "real-shaped" (what a
   warehouse ingestion writes: 40-64 column schemas, ownership, properties, tags, glossary
   terms, lineage: ~2.6 KB, schemas up to ~20 KB). Issue 25: the ratios depend on record size.
2. Each consumer drains each topic from the beginning, in its own process and consumer group
   (benchmarks/drain.py), timed from its first record to its last, with its CPU time:
   - bare confluent-kafka `consume(500)` counting records: librdkafka's defaults, and again
     with the project's consumer defaults (kafka_defaults.py); the faster is the ceiling;
   - this project's ConsumerApp with its shipped defaults (its peak RSS is the memory figure);
   - datahub-actions' KafkaEventSource, at the release matching the acryl-datahub pin,
     with its MCL pre-deserialization filter on (benchmarks/actions_drain.py), from a venv of
     its own made here once and cached under ~/.cache/datahub-lambda-trigger/; it drains
     `--actions-records` of them (at its rate, still many seconds).
   Then (issue 21) ConsumerApp drains the real-shaped topic again, `--repeat` times each,
   interleaved, without and with lineage triggers on `--trigger-datasets` datasets, while 1,000
   records a second go to the timeseries MCL topic: `triggers_drain_ratio=` (goal >= 0.90).
3. Latency (benchmarks/pickup_latency.py): a request every 200 ms on top of 1,000 real-shaped
   records a second; write -> pickup -> invoke -> SUCCESS. The first request goes out as soon
   as the consumer is ready and counts like the others; its own figure is printed too.

The last line is `ratio_vs_bare=<x> ratio_vs_actions=<y> pickup_p99_ms=<z> invoke_p99_ms=<w>
rss_mib=<v>`, on the real-shaped records, first request included. The goals (issues 13, 25):
x >= 0.8, y >= 20, z <= 20, w <= 100, v <= 120.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks.pickup_latency import print_latency, run_latency
from benchmarks.records import (
    create_topic,
    fill_topic,
    mean_size,
    real_records,
    real_shaped_records,
)
from devstack.gms_double.schema_registry import TIMESERIES_MCL_TOPIC as TIMESERIES_TOPIC
from devstack.stack import Stack
from lambda_trigger_consumer.kafka_defaults import CONSUMER_DEFAULTS

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "datahub-lambda-trigger"
HERE = Path(__file__).resolve().parent


def actions_python() -> Path:
    """A venv with acryl-datahub-actions at the acryl-datahub pin's version (DataHub releases
    both together), made once."""
    release = version("acryl-datahub")
    venv = CACHE / f"datahub-actions-{release}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        print(f"installing acryl-datahub-actions=={release} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"acryl-datahub-actions=={release}"],
            check=True,
        )
        stamp.write_text(release)
    return python


def _child(argv: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    with log.open("wb") as err:
        done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=err, check=False)
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{argv[:4]} failed ({done.returncode}); see {log}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _median(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate."""
    return sorted(results, key=lambda r: float(r["rate"]))[len(results) // 2]


def _drains(
    args: argparse.Namespace,
    actions: Path,
    bootstrap: str,
    topic: str,
    records: int,
    consumer_args: list[str],
    child_env: dict[str, str],
    work: Path,
    tag: str,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Every consumer drains `topic`: the medians, and every run of the repeated ones."""
    drain = [sys.executable, "-m", "benchmarks.drain"]
    common = ["--bootstrap", bootstrap, "--topic", topic, "--records", str(records)]
    runs: dict[str, list[dict[str, Any]]] = {
        "bare, librdkafka defaults": [],
        "bare, project defaults": [],
        "ConsumerApp": [],
    }
    # Each of these runs --repeat times, interleaved, and the median counts (the machine is
    # shared); each drain of 1M records lasts about a second or more.
    for n in range(args.repeat):
        runs["bare, librdkafka defaults"].append(
            _child([*drain, "bare", *common], child_env, work / f"{tag}-bare-{n}.log")
        )
        runs["bare, project defaults"].append(
            _child(
                [*drain, "bare", *common, "--config", json.dumps(CONSUMER_DEFAULTS)],
                child_env,
                work / f"{tag}-bare-tuned-{n}.log",
            )
        )
        runs["ConsumerApp"].append(
            _child(
                [*drain, "consumer", *common, *consumer_args],
                child_env,
                work / f"{tag}-consumer-{n}.log",
            )
        )
    results = {name: _median(rs) for name, rs in runs.items()}
    # datahub-actions drains tens of thousands of records a second: once, and fewer records
    # (--actions-records), which still last many seconds.
    results["datahub-actions"] = _child(
        [
            str(actions),
            str(HERE / "actions_drain.py"),
            "--bootstrap",
            bootstrap,
            "--registry",
            child_env["SCHEMA_REGISTRY_URL"],
            "--topic",
            topic,
            "--records",
            str(min(records, args.actions_records)),
        ],
        {**child_env, "PYTHONPATH": ""},
        work / f"{tag}-actions.log",
    )
    return results, runs


def trigger_mapping(datasets: int) -> str:
    """A mapping whose `datasets` exact-dataset rules each have a lineage trigger (issue 21):
    the consumer then runs its lineage watcher, its `operation` reader and its decider."""
    return json.dumps(
        {
            "targets": {"t": {"function": "bench-triggered"}},
            "rules": [
                {
                    "dataset": f"urn:li:dataset:(urn:li:dataPlatform:snowflake,bench.t{i},PROD)",
                    "target": "t",
                    "trigger": {"onUpstream": ["operation", "run_success"]},
                }
                for i in range(datasets)
            ],
        }
    )


def _trigger_drains(
    args: argparse.Namespace,
    bootstrap: str,
    topic: str,
    unrelated: list[tuple[bytes, bytes]],
    consumer_args: list[str],
    child_env: dict[str, str],
    work: Path,
) -> float:
    """ConsumerApp without and with triggers on `--trigger-datasets` datasets, interleaved
    `--repeat` times, while 1,000 records a second go to the timeseries MCL topic (what the
    `operation` reader filters by key). Prints both and returns with/without (medians)."""
    drain = [sys.executable, "-m", "benchmarks.drain"]
    common = ["--bootstrap", bootstrap, "--topic", topic, "--records", str(args.records)]
    with_triggers = [*consumer_args[:-2], "--mapping", trigger_mapping(args.trigger_datasets)]
    values = work / "timeseries-traffic.json"
    values.write_text(json.dumps([(k.hex(), v.hex()) for k, v in unrelated]))
    traffic = subprocess.Popen(
        [
            *drain,
            "traffic",
            "--bootstrap",
            bootstrap,
            "--topic",
            TIMESERIES_TOPIC,
            "--rate",
            "1000",
            "--seconds",
            "3600",
            "--values",
            str(values),
        ],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "timeseries-traffic.log").open("wb"),
    )
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    try:
        for n in range(args.repeat):
            for name, extra in (("without", consumer_args), ("with", with_triggers)):
                runs[name].append(
                    _child(
                        [*drain, "consumer", *common, *extra],
                        child_env,
                        work / f"triggers-{name}-{n}.log",
                    )
                )
    finally:
        traffic.terminate()
        traffic.wait(30)
    plain, triggered = _median(runs["without"]), _median(runs["with"])
    print(
        f"\nreal-shaped records, ConsumerApp without and with lineage triggers on "
        f"{args.trigger_datasets} datasets (1,000 timeseries records a second alongside):"
    )
    for name, r in (("without triggers", plain), ("with triggers", triggered)):
        each = ", ".join(
            f"{x['rate']:,.0f}" for x in runs["with" if "with " in name else "without"]
        )
        print(
            f"  {name:<28} {r['rate']:>12,.0f} {r['seconds']:>8.2f} {_cpu_per_100k(r):>10.3f} "
            f"{r['rss_mib']:>6.0f} MiB   (median of {each})"
        )
    ratio = float(triggered["rate"]) / float(plain["rate"])
    print(f"triggers_drain_ratio={ratio:.2f} (goal: >= 0.90)", flush=True)
    return ratio


def _cpu_per_100k(result: dict[str, Any]) -> float:
    return float(result["cpu_seconds"]) / max(1, int(result["records"])) * 100_000


def _print_drains(
    title: str,
    records: int,
    results: dict[str, dict[str, Any]],
    runs: dict[str, list[dict[str, Any]]],
) -> tuple[float, float]:
    """The table of one record set; its (ratio_vs_bare, ratio_vs_actions)."""
    print(f"\n{title}, first record to last:")
    print(f"  {'consumer':<28} {'records/s':>12} {'seconds':>8} {'CPU s/100k':>10} {'peak RSS':>9}")
    for name, r in results.items():
        each = ", ".join(f"{x['rate']:,.0f}" for x in runs.get(name, []))
        print(
            f"  {name:<28} {r['rate']:>12,.0f} {r['seconds']:>8.2f} {_cpu_per_100k(r):>10.3f} "
            f"{r['rss_mib']:>6.0f} MiB" + (f"   (median of {each})" if each else "")
        )
        wanted = records if name != "datahub-actions" else int(r["records"])
        if r["records"] < wanted:
            print(f"    ! only {r['records']:,} of {wanted:,} records")
    ceiling = max(
        results["bare, librdkafka defaults"]["rate"], results["bare, project defaults"]["rate"]
    )
    ours = results["ConsumerApp"]["rate"]
    ratio_bare = ours / ceiling
    ratio_actions = ours / results["datahub-actions"]["rate"]
    print(f"  ratio_vs_bare {ratio_bare:.2f}, ratio_vs_actions {ratio_actions:.1f}")
    return ratio_bare, ratio_actions


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.side_by_side")
    parser.add_argument("--records", type=int, default=1_000_000, help="records per drain")
    parser.add_argument(
        "--actions-records", type=int, default=200_000, help="records datahub-actions drains"
    )
    parser.add_argument("--requests", type=int, default=150, help="latency: run requests")
    parser.add_argument("--repeat", type=int, default=3, help="drains per fast consumer")
    parser.add_argument(
        "--trigger-datasets",
        type=int,
        default=100,
        help="ConsumerApp drains again with lineage triggers on this many datasets (0: not)",
    )
    args = parser.parse_args()
    actions = actions_python()
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as state, Stack(Path(state)) as stack:
        work = Path(state)
        env = stack.env()
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        sets = {
            "small": real_records(stack.gms),
            "real-shaped": real_shaped_records(stack.gms),
        }
        # The GMS double runs in this process: its startup objects out of the collector's full
        # passes, which would stall its answers (a real GMS is a JVM; its pauses are not ours).
        gc.freeze()
        consumer_args = [
            "--registry",
            env["SCHEMA_REGISTRY_URL"],
            "--gms-url",
            env["DATAHUB_GMS_URL"],
            "--gms-token",
            env["DATAHUB_GMS_TOKEN"],
            "--mapping",
            "{}",
        ]
        ratios: dict[str, tuple[float, float]] = {}
        rss = 0.0
        for name, (unrelated, foreign) in sets.items():
            topic = f"bench-mcl-{name}-{time.time_ns()}"
            create_topic(bootstrap, topic)
            started = time.perf_counter()
            fill_topic(bootstrap, topic, args.records, unrelated, foreign, 1000)
            print(
                f"{name}: {args.records:,} records ({len(unrelated)} distinct real MCLs, mean "
                f"{mean_size(unrelated):,.0f} B, largest {max(len(v) for _k, v in unrelated):,} B"
                f", + 1 in 1,000 a foreign request) produced in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            results, runs = _drains(
                args, actions, bootstrap, topic, args.records, consumer_args, child_env, work, name
            )
            ratios[name] = _print_drains(
                f"{name} records (mean {mean_size(unrelated):,.0f} B): drain of "
                f"{args.records:,} records ({int(results['datahub-actions']['records']):,} for "
                "datahub-actions)",
                args.records,
                results,
                runs,
            )
            if name == "real-shaped":
                rss = max(float(r["rss_mib"]) for r in runs["ConsumerApp"])
                if args.trigger_datasets:
                    _trigger_drains(
                        args, bootstrap, topic, unrelated, consumer_args, child_env, work
                    )
        print(
            f"\nmemory: ConsumerApp's peak RSS while draining {args.records:,} real-shaped "
            f"records: {rss:.0f} MiB (the highest of its {args.repeat} drains)"
        )

        print(flush=True)
        shaped_unrelated = sets["real-shaped"][0]
        latency = run_latency(stack, shaped_unrelated, requests=args.requests, workdir=work)
        print_latency(latency)
        print(f"load average after: {os.getloadavg()}")
        pickup = latency["write_to_pickup"].get("p99", float("nan"))
        invoke = latency["write_to_invoked"].get("p99", float("nan"))
        ratio_bare, ratio_actions = ratios["real-shaped"]
        print(
            f"ratio_vs_bare={ratio_bare:.2f} ratio_vs_actions={ratio_actions:.1f} "
            f"pickup_p99_ms={pickup:.1f} invoke_p99_ms={invoke:.1f} rss_mib={rss:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
