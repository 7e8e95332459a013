"""datahub-actions' Kafka event source draining a topic: the side-by-side benchmark's third
consumer. Runs with the Python of the venv that side_by_side.py makes for acryl-datahub-actions
(it imports nothing of this project):

    <venv>/bin/python benchmarks/actions_drain.py --bootstrap B --registry URL --topic T --records N

The source is set up as an "execution request" action would be: an EventTypeFilter on
MetadataChangeLogEvent_v1 for dataHubExecutionRequestInput records of one executor, which turns
on the source's pre-deserialization filter (`enable_mcl_pre_deserialization_filter`, on by
default): records of other entity types are dropped before avrogen's `from_obj`. Records
passing it are acked as a pipeline would. Prints one JSON line like benchmarks/drain.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--executor-id", default="lambda-trigger")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from datahub_actions.pipeline.pipeline_context import PipelineContext
    from datahub_actions.plugin.filter.event_type_filter import EventTypeFilter
    from datahub_actions.plugin.source.kafka import kafka_event_source as kes

    name = f"bench-actions-{time.time_ns()}"
    ctx = PipelineContext(pipeline_name=name, graph=None)
    source = kes.KafkaEventSource.create(
        {
            "connection": {
                "bootstrap": args.bootstrap,
                "schema_registry_url": args.registry,
                "consumer_config": {"auto.offset.reset": "earliest"},
            },
            "topic_routes": {"mcl": args.topic},
        },
        ctx,
    )
    event_filter = EventTypeFilter.create(
        {
            "filter": {
                "MetadataChangeLogEvent_v1": {
                    "event": [
                        {
                            "entityType": "dataHubExecutionRequest",
                            "aspectName": "dataHubExecutionRequestInput",
                            "changeType": "UPSERT",
                            "aspect": {"value": {"executorId": args.executor_id}},
                        }
                    ]
                }
            }
        },
        ctx,
    )
    source.set_filters([event_filter])
    # Every record polled, as the source's own counter has it (error=False: records).
    seen = kes.MESSAGE_COUNTER_METRIC.labels(pipeline_name=name, error=False)._value
    passed = 0
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + args.timeout
        while seen.get() < args.records and time.monotonic() < deadline:
            time.sleep(0.005)
        done.set()
        source.request_stop()

    first = 0.0
    first_cpu = 0.0

    def first_record() -> None:
        nonlocal first, first_cpu
        while seen.get() == 0 and not done.is_set():
            time.sleep(0.002)
        first, first_cpu = time.perf_counter(), time.process_time()

    threading.Thread(target=watch, daemon=True).start()
    threading.Thread(target=first_record, daemon=True).start()
    for envelope in source.events():
        if event_filter.matches(envelope):
            passed += 1
        source.ack(envelope)
        if done.is_set():
            break
    while not done.is_set():
        time.sleep(0.01)
    elapsed = time.perf_counter() - first
    cpu = time.process_time() - first_cpu  # every thread of the process
    count = int(seen.get())
    source.close()
    print(
        json.dumps(
            {
                "records": count,
                "seconds": elapsed,
                "rate": count / elapsed if elapsed > 0 else 0.0,
                "cpu_seconds": cpu,
                "rss_mib": peak_rss_mib(),
                "passed": passed,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
