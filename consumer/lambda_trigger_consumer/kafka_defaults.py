"""librdkafka settings the consumer ships with, chosen for its workload (docs/operations.md,
"Throughput and latency").

The workload: one group reads DataHub's whole MCL topic, drops almost every record by its key
in about a microsecond, and must hand the rare run request on within milliseconds. librdkafka's
defaults suit a consumer that does real work per record and may hold a large prefetch queue.
Any of these can be overridden with LAMBDA_TRIGGER_KAFKA_CONFIG (the user's value wins).
"""

from __future__ import annotations

from typing import Any

# Bounds of the prefetch queue (records librdkafka has fetched and the poll loop has not taken
# yet). Each record costs its payload plus a few hundred bytes of librdkafka bookkeeping, so
# both the count and the bytes are bounded. At full speed the loop takes 5,000 records in about
# 10 ms; a fetch round trip to a broker is far shorter, so a larger queue buys no speed.
QUEUED_MIN_MESSAGES = 5_000
QUEUED_MAX_KBYTES = 2_048
FETCH_MAX_BYTES = 1024 * 1024
PARTITION_FETCH_MAX_BYTES = 1024 * 1024

CONSUMER_DEFAULTS: dict[str, Any] = {
    # librdkafka: 1000 ms. When the prefetch queue is over one of its bounds, fetching stops
    # for this long. The loop empties a 2 MiB queue in a millisecond or two, so any longer
    # pause is time it sits idle: at 1000 ms the drain rate fell to a quarter, and at 10 ms it
    # was still a third below 1 ms (benchmarks/side_by_side.py). It applies only while the
    # queue is full (a backlog); an idle consumer's queue is empty and its fetch long-polls.
    "fetch.queue.backoff.ms": 1,
    # librdkafka: 100,000 records. Fetch until this many are queued (about 10 ms of work).
    "queued.min.messages": QUEUED_MIN_MESSAGES,
    # librdkafka: 65,536 KiB (64 MiB). The byte bound of the same queue: 2 MiB. Measured
    # (benchmarks/side_by_side.py, 1M records): 4 MiB with 2 MiB fetches peaked 10-15 MiB
    # higher and, with the 1 ms backoff above, drained no faster.
    "queued.max.messages.kbytes": QUEUED_MAX_KBYTES,
    # librdkafka: 50 MiB. One fetch response is held in memory until all of its records are
    # consumed, and the queue bound above may be overshot by one response: 1 MiB, the same as
    # one partition's share below. A record larger than this still arrives (the broker always
    # returns at least one record batch).
    "fetch.max.bytes": FETCH_MAX_BYTES,
    # librdkafka: 1 MiB, unchanged: stated because the bound above counts on it.
    "max.partition.fetch.bytes": PARTITION_FETCH_MAX_BYTES,
    # librdkafka: 500 ms. How long the broker holds a fetch open while there is nothing new.
    # A fetch answers as soon as a record arrives, so this never delays a record; it bounds how
    # long a change of the fetch set (a resumed partition, a newly assigned ledger partition)
    # waits for the open fetch to come back. 100 ms: at most 10 empty fetches a second.
    "fetch.wait.max.ms": 100,
}


def consumer_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` (bootstrap, logging), then these defaults, then the user's overrides."""
    return {**base, **CONSUMER_DEFAULTS, **overrides}
