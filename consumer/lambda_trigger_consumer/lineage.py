# The lineage of triggered datasets, kept current from GMS and the versioned MCL (docs/triggers.md).
"""Which triggered datasets read which upstreams: loaded at start, updated from the MCL.

- At start (and when the mapping names a new triggered dataset) each triggered dataset's
  `upstreamLineage` aspect is read from GMS: `GET /aspects/{urn}?aspect=upstreamLineage&version=0`
  (DataHubGraph.get_aspect; GMS's AspectResource.get in
  metadata-service/restli-servlet-impl/src/main/java/com/linkedin/metadata/resources/entity/
  AspectResource.java).
- After that, every process reads `upstreamLineage` changes of the triggered datasets from the
  versioned MCL itself (all partitions, no consumer group, from the end offsets taken *before*
  the GMS load): every process must know every edge, since the upstream event that needs it
  may be read by any member of the group. GMS keys MCLs by entity URN (KafkaEventProducer), so
  the records of datasets that are not triggered are dropped by key, before any decode.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from lambda_trigger.datahub import DataHubClient, DataHubUnavailable
from lambda_trigger_consumer.decode import (
    ChangeLog,
    DecodeError,
    Registry,
    RegistryUnavailable,
    decode_change_log,
)
from lambda_trigger_consumer.key_filter import KeySet

log = logging.getLogger(__name__)
UPSTREAM_LINEAGE = "upstreamLineage"


class LineageCache:
    """Triggered dataset -> its upstream datasets, and the reverse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._upstreams: dict[str, frozenset[str]] = {}
        self._downstreams: dict[str, frozenset[str]] = {}
        self.upstream_keys = KeySet()  # the timeseries reader's key filter

    def set_upstreams(self, dataset: str, upstreams: list[str] | None) -> None:
        with self._lock:
            self._upstreams[dataset] = frozenset(upstreams or ())
            self._rebuild()

    def forget(self, dataset: str) -> None:
        with self._lock:
            self._upstreams.pop(dataset, None)
            self._rebuild()

    def _rebuild(self) -> None:
        reverse: dict[str, set[str]] = {}
        for dataset, ups in self._upstreams.items():
            for up in ups:
                reverse.setdefault(up, set()).add(dataset)
        self._downstreams = {k: frozenset(v) for k, v in reverse.items()}
        self.upstream_keys.replace(self._downstreams)

    def downstreams(self, upstream: str) -> frozenset[str]:
        with self._lock:
            return self._downstreams.get(upstream, frozenset())

    def upstreams(self, dataset: str) -> frozenset[str]:
        with self._lock:
            return self._upstreams.get(dataset, frozenset())

    def known(self) -> set[str]:
        with self._lock:
            return set(self._upstreams)


class LineageWatcher:
    """Loads and follows the lineage of the triggered datasets (one thread per process)."""

    def __init__(
        self,
        kafka_config: dict[str, Any],
        topic: str,
        registry: Registry,
        datahub: DataHubClient,
        cache: LineageCache,
        triggered: Callable[[], set[str]],
        stopping: threading.Event,
    ) -> None:
        self._topic = topic
        self._registry = registry
        self._datahub = datahub
        self._cache = cache
        self._triggered = triggered
        self._stopping = stopping
        self._keys = KeySet()
        # Its own throw-away group id: it assigns partitions itself and never commits.
        self._consumer = Consumer(
            {
                **kafka_config,
                "group.id": f"datahub-lambda-trigger-lineage-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        self._thread = threading.Thread(target=self._run, name="lineage", daemon=True)
        self.ready = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _assign_at_end(self) -> None:
        metadata = self._consumer.list_topics(self._topic, timeout=10)
        partitions = list(metadata.topics[self._topic].partitions)
        # The end offsets are fixed here, before GMS is read: a lineage edit made while the
        # load runs is read from the topic, not lost between the two.
        ends = []
        for p in partitions:
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self._topic, p), timeout=10
            )
            ends.append(TopicPartition(self._topic, p, high if high >= 0 else OFFSET_END))
        self._consumer.assign(ends)

    def _load(self, datasets: set[str]) -> bool:
        for dataset in sorted(datasets):
            try:
                self._cache.set_upstreams(dataset, self._datahub.upstreams(dataset))
            except DataHubUnavailable as exc:
                log.warning("lineage of %s not loaded yet: %s", dataset, exc)
                return False
        return True

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._assign_at_end()
                    break
                except (KafkaException, KeyError) as exc:
                    log.warning("lineage watcher: %s; retrying", exc)
                    self._stopping.wait(2.0)
            known: set[str] = set()
            while not self._stopping.is_set():
                wanted = self._triggered()
                if wanted != known:
                    for gone in known - wanted:
                        self._cache.forget(gone)
                    if self._load(wanted - known):
                        known = wanted
                        self._keys.replace(known)
                        log.info("lineage loaded for %d triggered datasets", len(known))
                        self.ready.set()
                keys = self._keys.keys
                for msg in self._consumer.consume(500, timeout=0.5):
                    if msg.key() not in keys or msg.error() is not None:
                        continue  # not a triggered dataset: dropped before any decode
                    self._on_record(msg.value())
        finally:
            self._consumer.close()

    def _on_record(self, value: bytes | None) -> None:
        while True:
            try:
                change = decode_change_log(value, self._registry)
                break
            except RegistryUnavailable as exc:
                # A lineage edit must not be skipped: wait for the registry.
                log.warning("lineage watcher: %s; reading again", exc)
                if self._stopping.wait(1.0):
                    return
            except DecodeError as exc:
                log.warning("lineage watcher: undecodable record skipped: %s", exc)
                return
            except Exception as exc:  # no record may stop the watcher (issue 19's rule)
                log.warning("lineage watcher: record skipped: %s", type(exc).__name__)
                return
        try:
            self._apply(change)
        except Exception as exc:
            # An `upstreamLineage` whose shape is not DataHub's (only a forger on the topic can
            # write one: GMS validates the aspect): skipped, the lineage known so far is kept.
            log.warning(
                "lineage watcher: %s of %s skipped: %s",
                change.aspect_name,
                change.entity_urn,
                type(exc).__name__,
            )

    def _apply(self, change: ChangeLog) -> None:
        if change.aspect_name != UPSTREAM_LINEAGE:
            return
        if change.change_type == "DELETE" or change.aspect is None:
            self._cache.set_upstreams(change.entity_urn, [])
        else:
            ups = [str(u.get("dataset")) for u in change.aspect.get("upstreams") or []]
            self._cache.set_upstreams(change.entity_urn, ups)
        log.info(
            "lineage of %s now %s",
            change.entity_urn,
            sorted(self._cache.upstreams(change.entity_urn)),
        )
