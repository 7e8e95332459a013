"""Readiness of several consumers in one group on the real broker: every member that holds its
settled share of the group is Ready, including a member with no MCL partition (it drives runs
from its ledger partitions) and a member with nothing at all (a group larger than the partition
count: it stands by). A Deployment or StatefulSet rollout of several replicas then completes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from .conftest import Env, RunningConsumer

pytestmark = pytest.mark.integration


def _ready(consumer: RunningConsumer) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{consumer.app.health.port}/readyz", timeout=5)


def _shares(consumers: list[RunningConsumer]) -> list[tuple[list[Any], list[int]]]:
    return [(c.app.runner.assignment, c.app.runner.ledger_assignment) for c in consumers]


def _wait_stable(
    consumers: list[RunningConsumer], mcl_partitions: int, ledger_partitions: int
) -> list[httpx.Response]:
    """Until every partition of both topics has exactly one owner and every member answers
    /readyz 200. Generous: a rebalance of three members on a busy machine takes seconds."""
    deadline = time.monotonic() + 120
    while True:
        shares = _shares(consumers)
        mcl = sorted(p for owned, _ in shares for _t, p in owned)
        ledger = sorted(p for _, owned in shares for p in owned)
        answers = [_ready(c) for c in consumers]
        if (
            mcl == list(range(mcl_partitions))
            and ledger == list(range(ledger_partitions))
            and all(a.status_code == 200 for a in answers)
        ):
            return answers
        if time.monotonic() > deadline:
            raise AssertionError(
                f"group never stable and ready: shares {shares}, "
                f"answers {[(a.status_code, a.json()) for a in answers]}"
            )
        time.sleep(0.5)


def test_three_consumers_on_few_partitions_are_all_ready(
    env: Env, start_consumer: Callable[..., RunningConsumer], topic_factory: Callable[..., str]
) -> None:
    """One MCL partition and one ledger partition for three members: one member holds only
    one topic's partition and one holds nothing. All three are Ready."""
    mcl_topic = topic_factory(1, prefix="mcl-readiness")
    consumers = [start_consumer(wait=False, topic=mcl_topic, topic_partitions=1) for _ in range(3)]
    answers = _wait_stable(consumers, mcl_partitions=1, ledger_partitions=1)
    bodies = [a.json() for a in answers]
    held = sorted(b["assignedPartitions"] + b["ledgerPartitions"] for b in bodies)
    # Two partitions over three members: someone holds nothing and is Ready all the same.
    assert held[0] == 0, bodies
    assert all(b["groupMember"] is True and b["status"] == "ok" for b in bodies)
    assert any(b["assignedPartitions"] == 0 for b in bodies), "a member without MCL partition"


def test_three_consumers_on_the_mcl_topic_are_all_ready(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    """The shape of issue 18's trial: DataHub's MCL topic and a three-partition ledger, three
    replicas. The assignor balances the partition count over both topics, so a member can hold
    ledger partitions only; every member must still be Ready."""
    first = start_consumer()
    topic = first.app.settings.topic
    admin = AdminClient({"bootstrap.servers": env.stack.kafka_bootstrap})
    mcl_partitions = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    consumers = [first, start_consumer(wait=False), start_consumer(wait=False)]
    answers = _wait_stable(consumers, mcl_partitions=mcl_partitions, ledger_partitions=3)
    assert [a.status_code for a in answers] == [200, 200, 200]
    # Stays Ready: the probe is not a momentary answer between rebalances.
    time.sleep(3)
    assert [_ready(c).status_code for c in consumers] == [200, 200, 200]
