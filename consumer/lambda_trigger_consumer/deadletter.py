"""Dead-letter records: what could not be handled, kept on a Kafka topic with the reason.

The original key and value are kept byte for byte, so a fixed consumer (or an operator)
can replay them; headers say where the record came from and why it is here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from lambda_trigger_consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)


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
        commit the source offset. An undeliverable record is logged and its offset stays
        uncommitted, so it comes back after a restart instead of being lost."""

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                log.error("dead-letter record could not be delivered to %s: %s", self._topic, err)
            elif on_delivered is not None:
                on_delivered()

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
        self._producer.produce(
            self._topic, key=key, value=value, headers=headers, on_delivery=delivered
        )
        self._producer.poll(0)
        self._metrics.dead_letters.labels(reason=reason).inc()

    def poll(self) -> None:
        """Serve delivery callbacks (called from the consumer's loop)."""
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for outstanding records; returns how many are still undelivered."""
        return self._producer.flush(timeout)

    def close(self) -> None:
        self._producer.close()
