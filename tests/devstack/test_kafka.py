"""The Kafka broker launcher: a real broker that serves clients and leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from devstack.kafka import (
    TEMP_PREFIX,
    ExternalBroker,
    KafkaBroker,
    KafkaUnavailable,
    broker_for_tests,
    local_jars_possible,
    select_broker,
)
from devstack.ports import free_port, port_accepts, port_is_free, wait_port_free
from devstack.procs import REPO_ROOT, pid_alive, python_env, remove_stale_temp_dirs, wait_pid_gone

pytestmark = pytest.mark.integration


def _consume(
    bootstrap: str, topic: str, count: int, timeout: float = 30.0
) -> list[tuple[bytes | None, bytes | None, int]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[tuple[bytes | None, bytes | None, int]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append((message.key(), message.value(), message.partition() or 0))
    finally:
        consumer.close()
    return received


def _produce(bootstrap: str, topic: str, records: list[tuple[str, str]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message[bytes, bytes]) -> None:
        if error is not None:
            failures.append(error)

    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    assert producer.flush(30) == 0
    assert failures == []


def _java_pids_mentioning(text: str) -> list[int]:
    """Pids of running processes whose command line contains `text` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and "java" in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_produce_and_consume_through_the_session_broker(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    _produce(
        kafka_bootstrap, unique_topic, [("urn:li:dataset:a", "one"), ("urn:li:dataset:b", "two")]
    )

    received = _consume(kafka_bootstrap, unique_topic, 2)

    assert [(k, v) for k, v, _ in received] == [
        (b"urn:li:dataset:a", b"one"),
        (b"urn:li:dataset:b", b"two"),
    ]


def test_topics_get_the_partitions_asked_for_and_keys_stick_to_one(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(partitions=3)
    _produce(kafka_bootstrap, topic, [("same-key", str(i)) for i in range(6)])

    received = _consume(kafka_bootstrap, topic, 6)

    assert len(received) == 6
    assert len({partition for _, _, partition in received}) == 1
    assert [v for _, v, _ in received] == [str(i).encode() for i in range(6)]


def _require_local_jars() -> None:
    if not local_jars_possible():
        pytest.skip(
            "KafkaBroker runs the Maven Central jars: needs Java 17+ and Maven (or a filled cache)"
        )


def test_stop_frees_the_ports_removes_the_data_and_leaves_no_jvm() -> None:
    _require_local_jars()
    broker = KafkaBroker()
    broker.start()
    try:
        assert broker.pid is not None and broker.work_dir is not None
        pid, work_dir = broker.pid, broker.work_dir
        ports = (broker.port, broker.controller_port)
        assert all(port_accepts(port) for port in ports)
        assert _java_pids_mentioning(str(work_dir)) == [pid]
        _produce(broker.bootstrap_servers, "stop-test", [("k", "v")])  # auto-created topic
        assert (broker.log_file).stat().st_size > 0  # the log binding works: logs are written
    finally:
        broker.stop()

    assert wait_pid_gone(pid, 5)
    assert all(wait_port_free(port) for port in ports)
    assert not work_dir.exists()
    assert _java_pids_mentioning(str(work_dir)) == []
    broker.stop()  # idempotent


_OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from devstack.kafka import KafkaBroker
    broker = KafkaBroker().start()
    print(broker.pid, broker.work_dir, flush=True)
    time.sleep(600)
    """
)


def test_the_jvm_dies_with_the_process_that_started_it() -> None:
    """SIGKILL leaves no chance to clean up: the kernel's parent-death signal must do it."""
    _require_local_jars()
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        env=python_env(),
        cwd=REPO_ROOT,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, "the owner process did not start a broker"
        jvm_pid, work_dir = int(line.split()[0]), Path(line.split()[1])
        assert pid_alive(jvm_pid)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()

    assert wait_pid_gone(jvm_pid, 10), "the broker JVM outlived its owner"
    # Nobody was left to remove the data dir; the next start does, as the owner is gone.
    assert work_dir.exists()
    remove_stale_temp_dirs(TEMP_PREFIX)
    assert not work_dir.exists()


def test_external_broker_is_used_as_is(kafka_bootstrap: str) -> None:
    broker = broker_for_tests({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})

    assert isinstance(broker, ExternalBroker)
    with broker:
        assert broker.bootstrap_servers == kafka_bootstrap


def test_an_unreachable_external_broker_is_an_error_not_a_fallback() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    with pytest.raises(KafkaUnavailable, match=nobody):
        ExternalBroker(nobody, timeout=1).start()


def test_forcing_the_jar_mode_picks_the_local_broker() -> None:
    assert isinstance(broker_for_tests({"DEVSTACK_KAFKA": "jars"}), KafkaBroker)


def test_without_java_docker_or_a_broker_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")  # nobody answers
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)

    with pytest.raises(KafkaUnavailable) as info:
        select_broker()

    message = str(info.value)
    assert "Java 17" in message and "Maven" in message
    assert "Docker" in message and "KAFKA_BOOTSTRAP_SERVERS" in message


def test_port_helpers_agree_with_a_real_listener() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_accepts(port)
        assert not port_is_free(port)
    assert wait_port_free(port)
