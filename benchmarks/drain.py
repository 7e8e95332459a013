"""Child processes of the side-by-side benchmark (benchmarks/side_by_side.py), one per
consumer, so that each has a process (and a GIL, and an RSS) of its own:

    python -m benchmarks.drain bare     --bootstrap B --topic T --records N [--config JSON]
    python -m benchmarks.drain consumer --bootstrap B --topic T --records N --registry URL ...
    python -m benchmarks.drain serve    (the consumer until SIGTERM; for the latency run)
    python -m benchmarks.drain traffic  --bootstrap B --topic T --rate R --seconds S --values F

`bare` and `consumer` read the topic from the beginning in a new group and print one JSON line:
records, seconds (first record to last), records/s and peak RSS (VmHWM) of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any


def peak_rss_mib() -> float:
    """VmHWM: the process's peak resident set, from the kernel."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _report(records: int, seconds: float, cpu_seconds: float, **extra: Any) -> None:
    """`cpu_seconds`: the process's CPU time (all its threads: librdkafka's too) from the
    first record to the last."""
    print(
        json.dumps(
            {
                "records": records,
                "seconds": seconds,
                "rate": records / seconds if seconds > 0 else 0.0,
                "cpu_seconds": cpu_seconds,
                "rss_mib": peak_rss_mib(),
                **extra,
            }
        ),
        flush=True,
    )


def bare(args: argparse.Namespace) -> None:
    """The ceiling: confluent-kafka's consume(500) in a loop, counting records, nothing else."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"bench-bare-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **json.loads(args.config or "{}"),
        }
    )
    consumer.subscribe([args.topic])
    count = 0
    first = 0.0
    first_cpu = 0.0
    deadline = time.monotonic() + args.timeout
    while count < args.records and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=500, timeout=0.2)
        for msg in batch:
            if msg.error() is None:
                count += 1
        if batch and not first:
            first, first_cpu = time.perf_counter(), time.process_time()
    elapsed = time.perf_counter() - first
    cpu = time.process_time() - first_cpu
    consumer.close()
    _report(count, elapsed, cpu)


def _consumer_app(args: argparse.Namespace, records_topic: str) -> Any:
    from prometheus_client import CollectorRegistry

    from lambda_trigger.settings import ConsumerSettings, DataHubSettings, MappingSettings
    from lambda_trigger_consumer.app import ConsumerApp

    suffix = f"{time.time_ns()}"
    return ConsumerApp(
        ConsumerSettings(
            bootstrap_servers=args.bootstrap,
            schema_registry_url=args.registry,
            topic=records_topic,
            group_id=args.group or f"bench-consumer-{suffix}",
            runs_topic=args.runs_topic or f"bench-runs-{suffix}",
            dead_letter_topic=f"bench-dlq-{suffix}",
            http_host="127.0.0.1",
            http_port=args.http_port,
            auto_offset_reset="earliest",
            # Shipped defaults otherwise: nothing here tunes Kafka.
        ),
        DataHubSettings(
            gms_url=args.gms_url, gms_token=args.gms_token, executor_id=args.executor_id
        ),
        MappingSettings(mapping_inline=args.mapping, region="us-east-1"),
        registry=CollectorRegistry(),
    )


def consumer(args: argparse.Namespace) -> None:
    """The project's consumer (ConsumerApp, shipped defaults) until it has received them all."""
    app = _consumer_app(args, args.topic)
    # The counter's own value: collecting the registry every few ms would cost the consumer.
    received = app.metrics.received.labels(topic=args.topic)._value
    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + args.timeout
    while received.get() == 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    first, first_cpu = time.perf_counter(), time.process_time()
    while received.get() < args.records and time.monotonic() < deadline:
        time.sleep(0.002)
    elapsed = time.perf_counter() - first
    cpu = time.process_time() - first_cpu
    count = int(received.get())
    app.stop()
    thread.join(30)
    _report(count, elapsed, cpu)


def serve(args: argparse.Namespace) -> None:
    """The consumer on the real MCL topic until SIGTERM (the latency benchmark's consumer)."""
    import logging

    # BENCH_LOG_LEVEL=INFO keeps each run's steps in the log (benchmarks.burst --log-dir).
    level = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(threadName)s %(message)s"
    )
    app = _consumer_app(args, args.topic)
    signal.signal(signal.SIGTERM, lambda *_: app.stop())
    app.run()
    print(json.dumps({"rss_mib": peak_rss_mib()}), flush=True)


def traffic(args: argparse.Namespace) -> None:
    """Unrelated MCL records at a steady rate (the latency benchmark's background)."""
    from confluent_kafka import Producer

    pairs = [
        (bytes.fromhex(k), bytes.fromhex(v)) for k, v in json.loads(Path(args.values).read_text())
    ]
    producer = Producer(
        {"bootstrap.servers": args.bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tick = 0.01  # 100 small bursts a second
    per_tick = max(1, round(args.rate * tick))
    sent = 0
    start = time.monotonic()
    end = start + args.seconds
    while not stop.is_set() and time.monotonic() < end:
        for _ in range(per_tick):
            key, value = pairs[sent % len(pairs)]
            producer.produce(args.topic, key=key, value=value)
            sent += 1
        producer.poll(0)
        # Paced on the clock, not on the loop: a late tick is made up at once.
        wait = start + sent / args.rate - time.monotonic()
        if wait > 0:
            stop.wait(wait)
    producer.flush(10)
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drain")
    parser.add_argument("mode", choices=["bare", "consumer", "serve", "traffic"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--config", default=None, help="librdkafka properties (bare), JSON")
    parser.add_argument("--registry", default="")
    parser.add_argument("--gms-url", default="")
    parser.add_argument("--gms-token", default="")
    parser.add_argument("--executor-id", default="lambda-trigger")
    parser.add_argument("--mapping", default="{}")
    parser.add_argument("--group", default=None)
    parser.add_argument("--runs-topic", default=None)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--values", default="")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # The consumer signs its run ledger (docs/security.md); a benchmark's key is a public one.
    os.environ.setdefault("LAMBDA_TRIGGER_LEDGER_KEYS", "bench:benchmark-ledger-key-not-a-secret")
    {"bare": bare, "consumer": consumer, "serve": serve, "traffic": traffic}[args.mode](args)


if __name__ == "__main__":
    main()
