"""The consumer's poll loop against a real Kafka broker: how many MCL records per second it
gets through when most of them are unrelated, and how much memory it holds meanwhile.

    python -m benchmarks.consumer_throughput [--records 200000] [--requests-every 1000]

Starts the local stack (Kafka from jars, the GMS test double for the schema registry, moto),
produces `--records` MCL records keyed like GMS does (dataset URNs, Confluent-framed Avro),
one in `--requests-every` of them an execution request of *another* executor (decoded, then
ignored, as DataHub's own UI ingestion requests are), then runs the real ConsumerApp until
it has received them all. Prints records/s and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import struct
import tempfile
import threading
import time
from pathlib import Path

import datahub
import fastavro
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from devstack.stack import Stack
from lambda_trigger.settings import ConsumerSettings, DataHubSettings, MappingSettings
from lambda_trigger_consumer.app import ConsumerApp

SCHEMA = fastavro.parse_schema(
    json.loads(
        (
            Path(datahub.__file__).parent / "metadata" / "schemas" / "MetadataChangeLog.avsc"
        ).read_text()
    )
)
SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def _frame(schema_id: int, record: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, SCHEMA, record)
    return struct.pack(">bI", 0, schema_id) + buf.getvalue()


def _schema_id(registry_url: str) -> int:
    import httpx

    body = httpx.get(
        f"{registry_url.rstrip('/')}/subjects/MetadataChangeLog_Versioned_v1-value/versions/latest"
    ).json()
    return int(body["id"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--requests-every", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, Stack(Path(state)) as stack:
        env = stack.env()
        schema_id = _schema_id(env["SCHEMA_REGISTRY_URL"])
        topic = "BenchMetadataChangeLog_v1"
        unrelated = _frame(
            schema_id,
            {
                "entityType": "dataset",
                "entityUrn": SIP,
                "changeType": "UPSERT",
                "aspectName": "status",
                "aspect": {"value": b'{"removed": false}', "contentType": "application/json"},
                "created": {"time": 1, "actor": "urn:li:corpuser:datahub"},
            },
        )
        foreign = _frame(
            schema_id,
            {
                "entityType": "dataHubExecutionRequest",
                "entityUrn": "urn:li:dataHubExecutionRequest:ui-run",
                "changeType": "UPSERT",
                "aspectName": "dataHubExecutionRequestInput",
                "aspect": {
                    "value": json.dumps(
                        {
                            "task": "RUN_INGEST",
                            "args": {},
                            "executorId": "default",
                            "source": {"type": "MANUAL_INGESTION_SOURCE"},
                            "requestedAt": 1,
                        }
                    ).encode(),
                    "contentType": "application/json",
                },
                "created": {"time": 1, "actor": "urn:li:corpuser:datahub"},
            },
        )
        producer = Producer(
            {
                "bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"],
                "linger.ms": 20,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        started = time.perf_counter()
        for i in range(args.records):
            if i % args.requests_every == 0:
                key, value = f"urn:li:dataHubExecutionRequest:ui-{i}", foreign
            else:
                key, value = (
                    f"urn:li:dataset:(urn:li:dataPlatform:hive,db.t{i % 5000},PROD)",
                    unrelated,
                )
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    producer.poll(0.1)
        producer.flush()
        print(f"produced {args.records:,} records in {time.perf_counter() - started:.1f} s")

        registry = CollectorRegistry()
        app = ConsumerApp(
            ConsumerSettings(
                bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                schema_registry_url=env["SCHEMA_REGISTRY_URL"],
                topic=topic,
                group_id=f"bench-{time.time_ns()}",
                http_host="127.0.0.1",
                http_port=0,
                auto_offset_reset="earliest",
            ),
            DataHubSettings(gms_url=env["DATAHUB_GMS_URL"], gms_token=env["DATAHUB_GMS_TOKEN"]),
            MappingSettings(mapping_inline=json.dumps({SIP: "earnings-lambda"})),
            registry=registry,
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        thread = threading.Thread(target=app.run, daemon=True)
        started = time.perf_counter()
        thread.start()

        def received() -> float:
            value = registry.get_sample_value(
                "lambda_trigger_consumer_received_messages_total", {"topic": topic}
            )
            return value or 0.0

        while received() == 0:
            time.sleep(0.01)
        first = time.perf_counter()
        while received() < args.records:
            time.sleep(0.01)
        elapsed = time.perf_counter() - first
        joined = first - started
        app.stop()
        thread.join(30)
        discarded = (
            registry.get_sample_value(
                "lambda_trigger_consumer_key_discarded_messages_total", {"topic": topic}
            )
            or 0
        )
        decoded = (
            registry.get_sample_value(
                "lambda_trigger_consumer_decoded_messages_total", {"topic": topic}
            )
            or 0
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"group joined, first record after {joined:.1f} s")
        print(
            f"consumed {args.records:,} records in {elapsed:.2f} s after the first: "
            f"{args.records / elapsed:,.0f} records/s"
        )
        print(f"  discarded by key: {discarded:,.0f}, decoded: {decoded:,.0f}")
        print(
            f"  peak RSS of the benchmark process: {rss / 1024:.0f} MiB (before the consumer: {rss_before / 1024:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
