"""The GMS double driven by DataHub's own clients: the `datahub` CLI (a subprocess, configured
only through DATAHUB_GMS_URL / DATAHUB_GMS_TOKEN and a throw-away HOME, as
datahub/cli/config_utils.py reads them) and the acryl-datahub SDK, against a real Kafka broker.

Each expectation cites the GMS source it comes from; when the official client and the double
disagree, the double is wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from devstack.gms_double import GmsDouble, ProducedMcl
from lambda_trigger.source_urns import source_urn

DATAHUB_CLI = Path(sys.executable).with_name("datahub")
POLYGON = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)


@pytest.fixture(scope="module")
def double(kafka_bootstrap: str) -> Iterator[GmsDouble]:
    suffix = uuid.uuid4().hex[:10]
    gms = GmsDouble(
        kafka_bootstrap,
        versioned_topic=f"conformance-{suffix}.MetadataChangeLog_Versioned_v1",
        timeseries_topic=f"conformance-{suffix}.MetadataChangeLog_Timeseries_v1",
    ).start()
    try:
        yield gms
    finally:
        gms.stop()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """`datahub ...` as a user runs it: its own process, env-only configuration."""

    def __init__(self, gms: GmsDouble, home: Path) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "DATAHUB_GMS_URL": gms.url,
            "DATAHUB_GMS_TOKEN": gms.admin_token,
            "DATAHUB_TELEMETRY_ENABLED": "false",
        }

    def __call__(self, *args: str, cwd: Path | None = None) -> CliResult:
        done = subprocess.run(  # the exit code is asserted by each test
            [str(DATAHUB_CLI), *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(double: GmsDouble, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(double, home)


class MclTail:
    """The MCLs the double produced (acknowledged by the broker) since the tail was opened."""

    def __init__(self, gms: GmsDouble) -> None:
        self._gms = gms
        self._start = gms.mcl_count()

    def new(self) -> list[ProducedMcl]:
        log = self._gms.mcl_log()
        out, self._start = log[self._start :], len(log)
        return out


@pytest.fixture
def mcls(double: GmsDouble) -> MclTail:
    return MclTail(double)


def read_from_broker(bootstrap: str, mcl: ProducedMcl) -> tuple[bytes, bytes]:
    """The record at the MCL's partition/offset, read back by a plain Kafka consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"conformance-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(mcl.topic, mcl.partition, mcl.offset)])
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.offset() == mcl.offset:
                return bytes(msg.key() or b""), bytes(msg.value() or b"")
        raise AssertionError(f"no record at {mcl.topic}/{mcl.partition}@{mcl.offset}")
    finally:
        consumer.close()


def request_urn(prefix: str = "conf") -> str:
    return f"urn:li:dataHubExecutionRequest:{prefix}-{uuid.uuid4()}"


def request_input(requested_at: int = 1764100000000) -> dict[str, Any]:
    """The request JSON of README's "Trigger from code" (Pegasus JSON of
    dataHubExecutionRequestInput), naming the dataset's ingestion source as every supported
    DataHub release accepts (docs/datahub-privileges.md)."""
    return {
        "task": "LAMBDA_TRIGGER_RUN",
        "args": {"datasetUrn": POLYGON},
        "executorId": "lambda-trigger",
        "source": {"type": "CLI", "ingestionSource": source_urn("lambda-trigger", POLYGON)},
        "requestedAt": requested_at,
    }
