"""Dead-letter records: what could not be handled, kept on a Kafka topic with the reason.

The original key and value are kept byte for byte, so a fixed consumer (or an operator)
can replay them; headers say where the record came from and why it is here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from lambda_trigger_consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)


_TOO_LARGE = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD}
)


class DeadLetters:
    def __init__(
        self, producer_config: dict[str, Any], topic: str, metrics: ConsumerMetrics
    ) -> None:
        # acks=all + idempotence: a dead letter is the last copy of a record we give up on.
        self._producer = Producer({**producer_config, "acks": "all", "enable.idempotence": True})
        self._topic = topic
        self._metrics = metrics

    def send(
        self,
        reason: str,
        message: str,
        *,
        key: bytes | None,
        value: bytes | None,
        source: tuple[str, int, int] | None = None,
        extra: dict[str, Any] | None = None,
        on_delivered: Callable[[], None] | None = None,
    ) -> None:
        """`on_delivered` runs once the broker has the record; until then the caller must not
        commit the source offset. A record too large for the topic is replaced by a reference
        to it; any other delivery failure is retried."""

        headers: list[tuple[str, str | bytes | None]] = [
            ("lambda-trigger.reason", reason.encode()),
            ("lambda-trigger.error", message.encode()[:2000]),
        ]
        if source is not None:
            topic, partition, offset = source
            headers += [
                ("lambda-trigger.source.topic", topic.encode()),
                ("lambda-trigger.source.partition", str(partition).encode()),
                ("lambda-trigger.source.offset", str(offset).encode()),
            ]
        if extra:
            headers.append(("lambda-trigger.extra", json.dumps(extra, default=str).encode()))
        log.warning("dead letter (%s): %s", reason, message)

        def reference_only(why: str) -> None:
            """The record itself is too large for this producer or topic: keep a reference
            (size, digest and source offset; the source topic still has the bytes), so that the
            consumer moves on instead of crash-looping on one record."""
            digest = hashlib.sha256(value or b"").hexdigest()
            log.error("dead letter too large (%s): keeping a reference only", why)
            self._produce(
                key,
                None,
                [
                    *headers,
                    ("lambda-trigger.value-omitted", why.encode()),
                    ("lambda-trigger.value-bytes", str(len(value or b"")).encode()),
                    ("lambda-trigger.value-sha256", digest.encode()),
                ],
                delivered,
            )

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                if on_delivered is not None:
                    on_delivered()
            elif err.code() in _TOO_LARGE and value:
                reference_only(err.str())
            else:
                # Kafka is away: try again (the source offset stays pinned until it works).
                log.error("dead-letter record not delivered to %s (%s); retrying", self._topic, err)
                self._produce(key, value, headers, delivered)

        try:
            self._produce(key, value, headers, delivered)
        except KafkaException as exc:
            reference_only(str(exc))
        self._metrics.dead_letters.labels(reason=reason).inc()

    def _produce(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]],
        delivered: Callable[[KafkaError | None, Message], None],
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    self._topic, key=key, value=value, headers=headers, on_delivery=delivered
                )
                break
            except BufferError:  # local queue full: serve callbacks, then try again
                self._producer.poll(0.1)
        self._producer.poll(0)

    def poll(self) -> None:
        """Serve delivery callbacks (called from the consumer's loop)."""
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for outstanding records; returns how many are still undelivered."""
        return self._producer.flush(timeout)

    def close(self) -> None:
        self._producer.close()
