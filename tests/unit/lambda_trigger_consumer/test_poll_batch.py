"""The poll loop's batch handling (Runner._handle): records dropped by key are settled once per
batch, and that must give the same offsets and counts as handling them one by one: never past a
run request whose ledger record is not stored, never past a record that must be read again."""

from __future__ import annotations

import json
import struct
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition
from prometheus_client import CollectorRegistry

from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.decode import SchemaRegistry
from lambda_trigger_consumer.ledger import LedgerView, LedgerWriter, partition_for
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.runner import Runner

from .conftest import RegistryCalls, encode_mcl

TOPIC = "MetadataChangeLog_Versioned_v1"
RUNS = "runs-test"
SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
# Nothing listens here: produced ledger records stay undelivered, so their offsets stay pending.
NO_BROKER = {"bootstrap.servers": "127.0.0.1:9", "socket.connection.setup.timeout.ms": 1000}


class _PausingConsumer:
    """Stands in for the Kafka consumer's pause/seek/position (nothing is assigned here).
    position() answers as librdkafka documents it: the offset after the last record the
    application was given, per partition; a partition nothing was read from has none (-1001)."""

    def __init__(self) -> None:
        self.paused: list[tuple[str, int, int]] = []
        self._positions: dict[tuple[str, int], int] = {}

    def took(self, batch: list[Any]) -> None:
        """What consume() would have returned: these records advance the positions."""
        for msg in batch:
            if msg.error() is None:
                self._positions[(msg.topic(), msg.partition())] = msg.offset() + 1

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(p.topic, p.partition, self._positions.get((p.topic, p.partition), -1001))
            for p in partitions
        ]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.extend((p.topic, p.partition, p.offset) for p in partitions)

    def seek(self, _partition: TopicPartition) -> None:
        pass


def _handle(runner: Runner, batch: list[Any]) -> None:
    runner._consumer.took(batch)  # type: ignore[attr-defined]
    runner._handle(batch)


def _runner(registry: SchemaRegistry) -> tuple[Runner, ConsumerMetrics]:
    metrics = ConsumerMetrics(CollectorRegistry())
    runner = Runner(
        {**NO_BROKER, "group.id": "test"},
        TOPIC,
        "lambda-trigger",
        registry,
        LedgerWriter(NO_BROKER, RUNS, 3),
        LedgerView(),
        driver=None,  # type: ignore[arg-type]  # _handle never reaches the driver
        datahub=None,  # type: ignore[arg-type]  # nor DataHub (no cancel signals here)
        dead_letters=DeadLetters(NO_BROKER, "dlq-test", metrics),
        metrics=metrics,
    )
    runner._consumer = _PausingConsumer()  # type: ignore[assignment]
    runner._assignment = [(TOPIC, p) for p in range(3)] + [(RUNS, 0)]
    return runner, metrics


def _dropped(partition: int, offset: int) -> Message:
    key = f"urn:li:dataset:(urn:li:dataPlatform:hive,db.t{offset},PROD)".encode()
    return Message(topic=TOPIC, partition=partition, offset=offset, key=key, value=b"x")


def _request(partition: int, offset: int, run: str, schema_id: int | None = None) -> Message:
    aspect = {
        "task": "LAMBDA_TRIGGER_RUN",
        "args": {"datasetUrn": SIP},
        "executorId": "lambda-trigger",
        "source": {"type": "LAMBDA_TRIGGER_SDK"},
        "requestedAt": 1_700_000_000_000,
    }
    urn = f"urn:li:dataHubExecutionRequest:{run}"
    value = encode_mcl(urn, "dataHubExecutionRequestInput", aspect)
    if schema_id is not None:
        value = struct.pack(">bI", 0, schema_id) + value[5:]
    return Message(topic=TOPIC, partition=partition, offset=offset, key=urn.encode(), value=value)


def _count(metrics: ConsumerMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name, {"topic": TOPIC}) or 0.0


def test_dropped_records_settle_per_batch_but_never_pass_a_pending_request(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    runner, metrics = _runner(registry[0])
    batch: list[Any] = [_dropped(0, o) for o in range(10)]
    batch += [_dropped(1, o) for o in range(5)]
    batch.append(_request(0, 10, "lt-20260101T120000001Z-abcdefghij"))
    batch += [_dropped(0, 11), _dropped(0, 12), _dropped(2, 7)]
    _handle(runner, batch)

    # p0: the request at 10 is not in the ledger yet (no broker), so nothing from 10 on.
    assert runner._tracker.committable() == {(TOPIC, 0): 10, (TOPIC, 1): 5, (TOPIC, 2): 8}
    assert _count(metrics, "lambda_trigger_consumer_received_messages_total") == 19
    assert _count(metrics, "lambda_trigger_consumer_key_discarded_messages_total") == 18
    assert _count(metrics, "lambda_trigger_consumer_decoded_messages_total") == 1

    # Once its ledger record is stored, p0 may move one past the last record seen.
    runner._tracker.finished((TOPIC, 0), 10)
    assert runner._tracker.committable() == {(TOPIC, 0): 13, (TOPIC, 1): 5, (TOPIC, 2): 8}


def test_a_partition_waiting_for_the_registry_keeps_its_later_records_for_later(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    runner, metrics = _runner(registry[0])
    batch: list[Any] = [_dropped(0, 0), _dropped(0, 1), _dropped(1, 0)]
    batch.append(_request(0, 2, "lt-20260101T120000002Z-abcdefghij", schema_id=500))  # 503
    batch += [_dropped(0, 3), _dropped(0, 4), _dropped(1, 1)]
    _handle(runner, batch)

    assert runner._consumer.paused == [(TOPIC, 0, 2)]  # type: ignore[attr-defined]
    # p0 stops before the record to read again; p1 goes on.
    assert runner._tracker.committable() == {(TOPIC, 0): 2, (TOPIC, 1): 2}
    # The records after it are not counted now: they are counted when read again.
    assert _count(metrics, "lambda_trigger_consumer_received_messages_total") == 5
    assert _count(metrics, "lambda_trigger_consumer_key_discarded_messages_total") == 4


def test_ledger_records_are_not_taken_for_dropped_mcl_records(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    """Ledger keys are run ids, which the key filter would drop: the topic decides first."""
    runner, metrics = _runner(registry[0])
    runner._view.assign(0)
    value = b'{"v":1,"kind":"cancel","run_id":"r1","dataset_urn":null,"cancel_by":"x"}'
    _handle(runner, [Message(topic=RUNS, partition=0, offset=0, key=b"r1", value=value)])

    entry = runner._view.get(0, "r1")
    assert entry is not None and entry.cancel_by == "x"
    assert runner._tracker.committable() == {}
    assert _count(metrics, "lambda_trigger_consumer_received_messages_total") == 0


def test_a_blocked_partition_does_not_move_on_until_its_record_is_read_again(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    """Its position still points past the records that follow the blocked one (they were
    fetched before the seek), so it is left out until the blocked record is read again."""
    runner, _metrics = _runner(registry[0])
    run = "lt-20260101T120000003Z-abcdefghij"
    _handle(runner, [_dropped(0, 0), _request(0, 1, run, schema_id=500), _dropped(0, 2)])
    _handle(runner, [_dropped(1, 0)])  # p0 paused; its position is still 3
    assert runner._tracker.committable() == {(TOPIC, 0): 1, (TOPIC, 1): 1}

    # Resumed: the request is read again (the registry answers now), then what followed it.
    _handle(runner, [_request(0, 1, run), _dropped(0, 2), _dropped(0, 3)])
    assert runner._tracker.committable() == {(TOPIC, 0): 1, (TOPIC, 1): 1}  # ledger pending
    runner._tracker.finished((TOPIC, 0), 1)
    assert runner._tracker.committable() == {(TOPIC, 0): 4, (TOPIC, 1): 1}


def test_records_without_a_key_are_decoded_never_dropped_unseen(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    runner, metrics = _runner(registry[0])
    keyless = Message(topic=TOPIC, partition=2, offset=4, key=None, value=b"x")
    _handle(runner, [_dropped(2, 3), keyless, _dropped(2, 5)])
    assert runner._tracker.committable() == {(TOPIC, 2): 6}
    assert _count(metrics, "lambda_trigger_consumer_received_messages_total") == 3
    assert _count(metrics, "lambda_trigger_consumer_key_discarded_messages_total") == 3


class _AssigningConsumer(_PausingConsumer):
    def incremental_assign(self, _partitions: list[TopicPartition]) -> None:
        pass


def _eof(topic: str, partition: int, offset: int) -> Message:
    return Message(
        topic=topic,
        partition=partition,
        offset=offset,
        error=KafkaError(KafkaError._PARTITION_EOF),
    )


def test_not_fetching_until_every_assigned_partition_has_delivered(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    """Issue 25: after an assignment librdkafka needs a few fetch rounds before it fetches a
    new partition; a request written to it meanwhile waits. /readyz reads `fetching`: an MCL
    partition counts once it delivered a record or its end, a ledger partition once read to
    its end; a revoked partition is no longer waited for."""
    runner, _ = _runner(registry[0])
    runner._assignment = []
    runner._driver = _NoDriver()  # type: ignore[assignment]
    runner._consumer = _AssigningConsumer()  # type: ignore[assignment]
    assigned = [TopicPartition(TOPIC, p) for p in range(3)] + [TopicPartition(RUNS, 0)]
    runner._on_assign(runner._consumer, assigned)  # type: ignore[arg-type]
    assert runner.in_group and not runner.fetching and runner.unfetched == 4

    _handle(runner, [_dropped(0, 0), _eof(TOPIC, 1, 0)])  # p0: a record; p1: its end
    assert not runner.fetching and runner.unfetched == 2
    _handle(runner, [_eof(RUNS, 0, 0)])  # the ledger partition, read to its end
    assert not runner.fetching and runner.unfetched == 1
    _handle(runner, [_dropped(0, 1)])  # p2 still silent
    assert not runner.fetching

    runner._on_revoke(runner._consumer, [TopicPartition(TOPIC, 2)])  # type: ignore[arg-type]
    assert runner.fetching and runner.unfetched == 0

    runner._on_assign(runner._consumer, [TopicPartition(TOPIC, 2)])  # type: ignore[arg-type]
    assert not runner.fetching  # a new assignment waits again
    _handle(runner, [_eof(TOPIC, 2, 5)])
    assert runner.fetching


class _NoDriver:
    def on_assign(self, _partition: int) -> None:
        pass

    def on_revoke(self, _partition: int, timeout: float = 20.0) -> None:
        pass


def test_a_forwarded_request_reaches_the_driver_at_once_if_its_ledger_partition_is_ours(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    """Issue 24: the view learns a run request as its ledger record is handed to the producer,
    if its ledger partition is this consumer's: no wait for the broker's confirmation nor for
    the echo (the run's first step, a full snapshot, is written after it to the same
    partition). The confirmation and the echo change nothing. A partition of another consumer
    learns it from the topic, as before."""
    runner, _metrics = _runner(registry[0])
    sent: list[tuple[str, Any]] = []
    runner._ledger.send = lambda run_id, _dataset, _record, delivered: sent.append(  # type: ignore[method-assign]
        (run_id, delivered)
    )
    view = runner._view
    ours, theirs = "lt-20260101T120000001Z-oursoursou", "lt-20260101T120000002Z-theirsthei"
    partition = partition_for(SIP, ours, 3)  # every run of a dataset: one partition
    view.assign(partition)
    view.loaded(partition)
    _handle(runner, [_request(0, 0, ours)])
    assert [run_id for run_id, _ in sent] == [ours]
    entry = view.get(partition, ours)
    assert entry is not None and entry.request is not None  # before the broker answered
    assert entry.request["dataset_urn"] == SIP
    assert ours in view.take_touched()
    sent[0][1](None, partition)  # the broker's confirmation
    assert view.get(partition, ours) == entry
    # A second request record (an echo, a redelivery) leaves the run as it is.
    view.apply(
        partition,
        ours,
        json.dumps({"kind": "request", "request": {"dataset_urn": "other"}}).encode(),
    )
    assert view.get(partition, ours) == entry

    view.revoke(partition)  # now another consumer's: only the topic tells us
    _handle(runner, [_request(0, 1, theirs)])
    assert [run_id for run_id, _ in sent] == [ours, theirs]
    sent[1][1](None, partition)
    assert view.get(partition, theirs) is None and theirs not in view.take_touched()


def test_warm_makes_the_cancel_signals_thread(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    """Issue 25: the first KILL after a start does not wait for its thread to be made."""
    runner, _metrics = _runner(registry[0])
    assert runner._signals._threads == set()
    runner.warm()
    assert len(runner._signals._threads) == 1
    runner._signals.shutdown()
