"""librdkafka settings the consumer ships with, chosen for its workload (docs/operations.md,
"Throughput and latency").

The workload: one group reads DataHub's whole MCL topic, drops almost every record by its key
in about a microsecond, and must hand the rare run request on within milliseconds. librdkafka's
defaults suit a consumer that does real work per record and may hold a large prefetch queue.
Any of these can be overridden with LAMBDA_TRIGGER_KAFKA_CONFIG (the user's value wins).
"""

from __future__ import annotations

from typing import Any

# Bounds of the prefetch queue (what librdkafka holds fetched but not yet consumed). Memory
# is about (payload + ~0.5 KiB of bookkeeping per record) times the record count, so both the
# record count and the bytes are bounded.
QUEUED_MIN_MESSAGES = 20_000
QUEUED_MAX_KBYTES = 16_384

CONSUMER_DEFAULTS: dict[str, Any] = {
    # librdkafka: 1000 ms. When the prefetch queue is over one of its bounds, fetching stops
    # for this long; a consumer that drains 20,000 records in a few tens of milliseconds would
    # then sit idle for most of each second (the drain rate fell to a tenth). 10 ms: fetch
    # again soon after the queue has room.
    "fetch.queue.backoff.ms": 10,
    # librdkafka: 100,000 records. Keep fetching until this many are queued: about 40 ms of
    # work at full speed, enough to cover a fetch round trip, at a tenth of the memory.
    "queued.min.messages": QUEUED_MIN_MESSAGES,
    # librdkafka: 65,536 KiB (64 MiB). The byte bound of the same queue: 16 MiB.
    "queued.max.messages.kbytes": QUEUED_MAX_KBYTES,
    # librdkafka: 50 MiB per fetch response. One response is held whole in memory until all
    # of its records are consumed; 8 MiB (still 8 partitions at max.partition.fetch.bytes)
    # keeps a fetch from adding half of the default queue again. A record larger than this is
    # still returned (the broker always sends at least one record batch).
    "fetch.max.bytes": 8 * 1024 * 1024,
    # librdkafka: 1 MiB, the same: stated to make the bound above explicit.
    "max.partition.fetch.bytes": 1024 * 1024,
    # librdkafka: 500 ms. How long the broker holds an empty fetch open. A fetch answers as
    # soon as a record arrives, so this does not delay a record; it bounds how long a change
    # of the fetch set (a resumed or newly assigned partition, such as the run ledger's) waits
    # for the open fetch to come back. 100 ms: at most 10 empty fetches a second when idle.
    "fetch.wait.max.ms": 100,
}


def consumer_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` (bootstrap, logging), then these defaults, then the user's overrides."""
    return {**base, **CONSUMER_DEFAULTS, **overrides}
