"""How much of the consumer's time goes where, per record: the key filter vs a full decode.

    python -m benchmarks.consumer_filter [--records 200000]

Most MCL traffic in a busy DataHub is unrelated to this project; the key filter is what keeps
the consumer cheap. Prints per-record cost and records/s for: the key filter on unrelated
keys, the full decode (framing + fastavro + aspect JSON) of an execution-request MCL, and
the peak memory of holding the decoder's schema cache.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import time
import tracemalloc
from pathlib import Path

import datahub
import fastavro
import httpx

from lambda_trigger_consumer.decode import SchemaRegistry, decode_change_log
from lambda_trigger_consumer.key_filter import is_execution_request_key

SCHEMA_TEXT = (
    Path(datahub.__file__).parent / "metadata" / "schemas" / "MetadataChangeLog.avsc"
).read_text()


def _registry() -> SchemaRegistry:
    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"schema": SCHEMA_TEXT})

    return SchemaRegistry(
        "http://registry", client=httpx.Client(transport=httpx.MockTransport(handle))
    )


def _value() -> bytes:
    aspect = {
        "task": "LAMBDA_TRIGGER_RUN",
        "args": {
            "datasetUrn": "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
        },
        "executorId": "lambda-trigger",
        "source": {"type": "LAMBDA_TRIGGER_API"},
        "requestedAt": 1_700_000_000_000,
        "actorUrn": "urn:li:corpuser:alice",
    }
    record = {
        "entityType": "dataHubExecutionRequest",
        "entityUrn": "urn:li:dataHubExecutionRequest:lt-20260101T120000001Z-abcdefghij",
        "changeType": "UPSERT",
        "aspectName": "dataHubExecutionRequestInput",
        "aspect": {"value": json.dumps(aspect).encode(), "contentType": "application/json"},
        "systemMetadata": {"lastObserved": 1_700_000_000_000, "runId": "no-run-id-provided"},
        "created": {"time": 1_700_000_000_000, "actor": "urn:li:corpuser:alice"},
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(json.loads(SCHEMA_TEXT)), record)
    return struct.pack(">bI", 0, 1) + buf.getvalue()


def _rate(label: str, n: int, seconds: float) -> None:
    print(f"{label:<44} {seconds / n * 1e6:8.2f} us/record {n / seconds:>12,.0f} records/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    n = parser.parse_args().records
    keys = [
        f"urn:li:dataset:(urn:li:dataPlatform:hive,db.table_{i},PROD)".encode() for i in range(1000)
    ]
    start = time.perf_counter()
    kept = 0
    for i in range(n):
        kept += is_execution_request_key(keys[i % 1000])
    _rate("key filter (unrelated key, discarded)", n, time.perf_counter() - start)
    assert kept == 0

    registry = _registry()
    value = _value()
    decode_change_log(value, registry)  # warm the schema cache
    m = max(n // 10, 1000)
    start = time.perf_counter()
    for _ in range(m):
        decode_change_log(value, registry)
    _rate("full decode (framing + Avro + aspect JSON)", m, time.perf_counter() - start)

    tracemalloc.start()
    fresh = _registry()
    decode_change_log(value, fresh)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{'schema cache + one decode, peak memory':<44} {peak / 1024:8.0f} KiB")


if __name__ == "__main__":
    main()
