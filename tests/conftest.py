"""Session-wide real infrastructure for the tests, started once and shared.

Session fixtures (started on first use, stopped at the end of the run):

- `kafka_broker` / `kafka_bootstrap`: a real Kafka broker (devstack.kafka.broker_for_tests:
  KAFKA_BOOTSTRAP_SERVERS > Docker > the Maven Central jars on the local Java 17).
- `moto_server`: devstack.aws.MotoServer, moto in server mode reached over HTTP.
- `gms`: the GMS test double (devstack.gms_double.GmsDouble) producing to `kafka_bootstrap`.
- `stack`: the three together plus the contract's env dict (`stack.env`).

Function-scope helpers:

- `moto`: the session moto server after a reset (no functions, queues or recorded calls).
- `unique_topic`: a new one-partition topic with a per-test name; `topic_factory(partitions=3)`
  makes more.
- `stack_environ`: the stack's KEY=value set exported into os.environ for one test.

Any test using one of these fixtures is marked `integration` automatically (so
`-m "not integration"` runs without a broker); mark it explicitly as well for readers.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# devstack is not in the installed wheel. `python -m pytest` finds it through the working
# directory, but plain `pytest` puts only tests/ on sys.path, where tests/devstack/ would then
# be imported as an empty namespace package called devstack. The repo root first fixes both.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from devstack.aws import MotoServer  # noqa: E402
from devstack.kafka import Broker, broker_for_tests, create_topics  # noqa: E402
from devstack.stack import stack_env  # noqa: E402

TEST_LEDGER_KEYS = "tests:ledger-key-for-the-test-suite"

if TYPE_CHECKING:
    from devstack.gms_double import GmsDouble

_INFRA_FIXTURES = frozenset(
    {
        "kafka_broker",
        "kafka_bootstrap",
        "moto_server",
        "gms",
        "stack",
        "moto",
        "unique_topic",
        "topic_factory",
        "stack_environ",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INFRA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _ledger_key() -> Iterator[None]:
    """Every consumer a test builds signs and verifies its run ledger (issue 19), as in
    production; a test of the key-less start removes it itself."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "LAMBDA_TRIGGER_LEDGER_KEYS",
            os.environ.get("LAMBDA_TRIGGER_LEDGER_KEYS", TEST_LEDGER_KEYS),
        )
        yield


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    with broker_for_tests() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def gms(kafka_bootstrap: str) -> Iterator[GmsDouble]:
    from devstack.gms_double import GmsDouble

    # The double creates the MetadataChangeLog topics itself, like DataHub's kafka-setup job.
    double = GmsDouble(kafka_bootstrap)
    double.start()
    try:
        yield double
    finally:
        double.stop()


@dataclass(frozen=True)
class StackHandle:
    """The session's stack: what `python -m devstack up` runs, minus the CLI."""

    kafka_bootstrap: str
    gms: GmsDouble
    moto: MotoServer
    env: dict[str, str]


@pytest.fixture(scope="session")
def stack(kafka_bootstrap: str, gms: GmsDouble, moto_server: MotoServer) -> StackHandle:
    return StackHandle(
        kafka_bootstrap, gms, moto_server, stack_env(kafka_bootstrap, gms, moto_server)
    )


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    moto_server.reset()
    return moto_server


def _test_slug(request: pytest.FixtureRequest) -> str:
    # Topic names allow [a-zA-Z0-9._-]; a parametrised test id has brackets and more.
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", request.node.name)[:60].strip("-")


@pytest.fixture
def topic_factory(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Callable[..., str]:
    slug = _test_slug(request)

    def make(partitions: int = 1, *, prefix: str | None = None) -> str:
        name = f"{prefix or 'test-' + slug}-{uuid.uuid4().hex[:8]}"
        create_topics(kafka_bootstrap, [name], partitions)
        return name

    return make


@pytest.fixture
def unique_topic(topic_factory: Callable[..., str]) -> str:
    return topic_factory()


@pytest.fixture
def stack_environ(stack: StackHandle, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    return stack.env
