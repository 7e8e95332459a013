"""STAND-IN exporter: serves the contract's metrics with fake, moving values.

Not the consumer or the api. It exists so that the promstack machinery (a real Prometheus
scraping real HTTP targets and running every dashboard and alert expression) is proven before
the real services export their metrics. It builds every metric from docs/contract.md's tables
with prometheus-client, creates a child for every label value (the values the contract lists,
else a sample value) and keeps incrementing / observing / setting them.

    python -m observability.standin_exporter --component consumer   # prints PORT=<n>
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from .contract_metrics import CONTRACT_PATH, MetricSpec, parse_contract

SAMPLE_LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "topic": ("MetadataChangeLog_Versioned_v1",),
    "partition": ("0", "1", "2"),
    "target": ("earnings", "polygon"),
    "status": ("RUNNING", "SUCCESS", "FAILURE"),
    "reason": ("standin",),
    "route": (
        "/api/ingestion/run",
        "/api/ingestion/runs/{runId}",
        "/api/ingestion/targets",
        "/readyz",
    ),
    "method": ("GET", "POST"),
    "status_code": ("200", "202", "403", "503"),
    "operation": ("me", "get_aspect", "emit"),
    "source": ("LAMBDA_TRIGGER_API",),
    "version": ("0.0.0+standin",),
    "executor_id": ("lambda-trigger",),
}
COMPONENT_PREFIX = {"consumer": "lambda_trigger_consumer_", "api": "lambda_trigger_api_"}


def label_values(spec: MetricSpec, label: str) -> tuple[str, ...]:
    return spec.label_values.get(label) or SAMPLE_LABEL_VALUES.get(label, ("standin",))


def _inc(counter: Counter) -> None:
    counter.inc(random.randint(0, 3))


def _observe(histogram: Histogram) -> None:
    histogram.observe(random.uniform(0.001, 3.0))


def _set_now(gauge: Gauge) -> None:
    gauge.set(time.time())


def _set_small(gauge: Gauge) -> None:
    gauge.set(random.randint(0, 10))


def build(specs: Sequence[MetricSpec], registry: CollectorRegistry) -> list[Callable[[], None]]:
    """Register every metric; return one updater per label combination."""
    updaters: list[Callable[[], None]] = []
    for spec in specs:
        doc = f"STAND-IN for {spec.name} (docs/contract.md)"
        if spec.type == "info":
            base = spec.name.removesuffix("_info")
            info = Info(base, doc, registry=registry)
            info.info({label: label_values(spec, label)[0] for label in spec.labels})
            continue
        combos = list(itertools.product(*(label_values(spec, label) for label in spec.labels)))
        if spec.type == "counter":
            counter = Counter(spec.name, doc, spec.labels, registry=registry)
            for combo in combos:
                child = counter.labels(*combo) if spec.labels else counter
                updaters.append(partial(_inc, child))
        elif spec.type == "histogram":
            histogram = Histogram(spec.name, doc, spec.labels, registry=registry)
            for combo in combos:
                hchild = histogram.labels(*combo) if spec.labels else histogram
                updaters.append(partial(_observe, hchild))
        elif spec.type == "gauge":
            gauge = Gauge(spec.name, doc, spec.labels, registry=registry)
            for combo in combos:
                gchild = gauge.labels(*combo) if spec.labels else gauge
                if spec.name.endswith("_timestamp_seconds"):
                    updaters.append(partial(_set_now, gchild))
                else:
                    updaters.append(partial(_set_small, gchild))
        else:
            raise ValueError(f"stand-in cannot serve a {spec.type} ({spec.name})")
    return updaters


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--component", choices=sorted(COMPONENT_PREFIX), required=True)
    parser.add_argument("--contract", type=Path, default=CONTRACT_PATH)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--tick", type=float, default=0.2, help="seconds between updates")
    args = parser.parse_args(argv)

    prefix = COMPONENT_PREFIX[args.component]
    specs = [s for s in parse_contract(args.contract) if s.name.startswith(prefix)]
    if not specs:
        print(f"no {args.component} metrics in {args.contract}", file=sys.stderr)
        return 2
    registry = CollectorRegistry()
    updaters = build(specs, registry)
    server, _thread = start_http_server(args.port, addr="127.0.0.1", registry=registry)
    print(f"PORT={server.server_port}", flush=True)
    while True:
        for update in updaters:
            update()
        time.sleep(args.tick)


if __name__ == "__main__":
    sys.exit(main())
