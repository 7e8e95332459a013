"""Fixtures of the observability tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .contract_metrics import REPO_ROOT, MetricSpec, SeriesInfo, parse_contract, series_index
from .promstack import PrometheusNotInstalled, find_binary


def _binary(name: str) -> str:
    try:
        return find_binary(name)
    except PrometheusNotInstalled as err:
        # Not a skip: CI installs the package, a missing binary is a broken environment.
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _binary("prometheus")


@pytest.fixture(scope="session")
def contract_specs() -> list[MetricSpec]:
    return parse_contract()


@pytest.fixture(scope="session")
def contract_index(contract_specs: list[MetricSpec]) -> dict[str, SeriesInfo]:
    return series_index(contract_specs)


StandinFactory = Callable[[str], str]


@pytest.fixture
def standin_exporter() -> Iterator[StandinFactory]:
    """Start STAND-IN exporters (observability.standin_exporter); returns their host:port."""
    procs: list[subprocess.Popen[str]] = []

    def start(component: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "observability.standin_exporter", "--component", component],
            cwd=REPO_ROOT / "tests",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the exporter prints PORT=<n> once it listens
        if not line.startswith("PORT="):
            proc.kill()
            _out, err = proc.communicate(timeout=10)
            raise RuntimeError(f"stand-in exporter for {component} did not start: {line!r} {err}")
        return f"127.0.0.1:{int(line.strip().removeprefix('PORT='))}"

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def repo_path(*parts: str) -> Path:
    return REPO_ROOT.joinpath(*parts)
