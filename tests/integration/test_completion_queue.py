"""The completion queue's records are not held hostage by a consumer that stops: received
records stay hidden only for the reader's own short visibility timeout (not the queue's 30 s),
and a reader shutting down hands back what it has not handled at once. moto server's SQS."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lambda_trigger_consumer.completion import CompletionReader
from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.ledger import LedgerWriter
from lambda_trigger_consumer.metrics import ConsumerMetrics

from .conftest import Env

pytestmark = pytest.mark.integration


class _Receiver(CompletionReader):
    """Takes a record and stops there, as a consumer killed (or told to stop) mid-batch: the
    record it took is neither written to the ledger nor deleted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken: list[str] = []

    def _handle(self, message: dict[str, Any]) -> None:
        self.taken.append(str(message["Body"]))
        self._stopping.set()


def _visible(sqs: Any, url: str) -> list[str]:
    """What another consumer would receive now (and hides again for a minute)."""
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
        ).get("Messages", [])
        if not got:
            return bodies
        bodies += [str(m["Body"]) for m in got]


def test_a_stopping_reader_hands_back_what_it_did_not_handle(env: Env) -> None:
    url, _arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")  # visibility 30 s
    sqs = env.moto.client("sqs")
    bodies = [f"record-{i}" for i in range(3)]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    metrics = ConsumerMetrics(CollectorRegistry())
    kafka = {"bootstrap.servers": env.stack.kafka_bootstrap}
    reader = _Receiver(
        sqs,
        url,
        LedgerWriter(kafka, f"runs-{uuid.uuid4().hex[:8]}", 1),
        DeadLetters(kafka, f"dlq-{uuid.uuid4().hex[:8]}", metrics),
        metrics,
        threading.Event(),
        wait_seconds=1,
        visibility_seconds=2,
    )
    while not reader.taken:  # moto may hand out fewer than all three in one receive
        reader._loop()
        if not reader.taken:
            reader._stopping.clear()
    (taken,) = reader.taken
    # Handed back at once: the ones it received but did not take (and any never received).
    assert sorted(_visible(sqs, url)) == sorted(b for b in bodies if b != taken)
    # The one it took (and never deleted) comes back after the reader's 2 s, not the queue's 30.
    deadline = time.monotonic() + 20
    back: list[str] = []
    while not back and time.monotonic() < deadline:
        time.sleep(0.5)
        back = _visible(sqs, url)
    assert back == [taken]
