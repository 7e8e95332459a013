"""`python -m devstack up/down/status` and the Stack's extra processes.

These start whole stacks of their own (not the session's), so they also prove the stack comes
up from nothing within the minute the README promises and leaves no process or port behind.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from devstack.kafka import broker_ready
from devstack.ports import free_port, port_is_free, wait_port_free
from devstack.procs import REPO_ROOT, pid_alive, python_env, wait_pid_gone
from devstack.stack import ENV_KEYS, Stack

pytestmark = pytest.mark.integration

UP_DEADLINE = 60.0


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """Read a child's stdout on a thread so the test can wait with a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_env(lines: queue.Queue[str | None], deadline: float) -> dict[str, str]:
    env: dict[str, str] = {}
    while set(ENV_KEYS) - env.keys():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"env incomplete after {UP_DEADLINE}s: {env}")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"`up` closed stdout after {env}")
        key, _, value = line.rstrip("\n").partition("=")
        env[key] = value
    return env


def _descendants(root: int) -> set[int]:
    """Every live process below `root` (Linux /proc), found by walking parent pids."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _ports(env: dict[str, str]) -> list[int]:
    ports = [int(env["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])]
    for key in ("DATAHUB_GMS_URL", "AWS_ENDPOINT_URL"):
        ports.append(int(httpx.URL(env[key]).port or 0))
    return ports


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    state_dir = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process, state_dir
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_up_prints_the_env_within_a_minute_and_sigterm_stops_everything(
    up: tuple[subprocess.Popen[str], Path],
) -> None:
    process, state_dir = up
    assert process.stdout is not None and process.stderr is not None
    started = time.monotonic()

    env = _read_env(_lines(process.stdout), started + UP_DEADLINE)

    assert list(env) == list(ENV_KEYS)
    assert time.monotonic() - started < UP_DEADLINE
    env_file = (state_dir / "env").read_text()
    assert all(f"{key}=" in env_file for key in ENV_KEYS)
    assert broker_ready(env["KAFKA_BOOTSTRAP_SERVERS"])
    assert env["SCHEMA_REGISTRY_URL"].startswith(env["DATAHUB_GMS_URL"])
    health = httpx.get(f"{env['AWS_ENDPOINT_URL']}/_devstack/health", timeout=5)
    assert health.json()["status"] == "ok"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_DEFAULT_REGION"]
    assert env["DATAHUB_GMS_TOKEN"]
    children = _descendants(process.pid)
    assert children, "up started no child processes"
    ports = _ports(env)

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, process.stderr.read()

    assert all(wait_pid_gone(pid, 10) for pid in children), [p for p in children if pid_alive(p)]
    assert all(wait_port_free(port) for port in ports), [p for p in ports if not port_is_free(p)]
    assert not (state_dir / "env").exists()
    assert not (state_dir / "up.pid").exists()
    # Logs outlive the run: a crash is read after the fact.
    assert (state_dir / "logs" / "moto.log").exists()


def _cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args, "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_status_and_down_control_a_running_up(up: tuple[subprocess.Popen[str], Path]) -> None:
    process, state_dir = up
    assert process.stdout is not None
    env = _read_env(_lines(process.stdout), time.monotonic() + UP_DEADLINE)

    status = _cli(state_dir, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running (pid {process.pid}" in status.stdout
    for name in ("kafka", "gms", "moto"):
        assert f"  {name} " in status.stdout
    assert "DEAD" not in status.stdout
    assert f"KAFKA_BOOTSTRAP_SERVERS={env['KAFKA_BOOTSTRAP_SERVERS']}" in status.stdout
    printed = _cli(state_dir, "env")
    assert (
        printed.returncode == 0 and f"AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']}" in printed.stdout
    )
    second = _cli(state_dir, "up")
    assert second.returncode == 1 and "already running" in second.stderr

    down = _cli(state_dir, "down")

    assert down.returncode == 0, down.stderr
    assert process.wait(10) == 0
    assert _cli(state_dir, "status").returncode == 1
    assert _cli(state_dir, "down").returncode == 0  # nothing to stop is not an error


_SERVICE = textwrap.dedent(
    """
    import http.server, json, os, sys
    port, out = int(sys.argv[1]), sys.argv[2]
    with open(out, "w") as f:
        json.dump({k: os.environ.get(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "AWS_ENDPOINT_URL", "EXTRA")}, f)
    print("service up", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
    """
)


def test_extra_processes_get_the_env_start_after_and_stop_before_the_infrastructure(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    seen = tmp_path / "seen.json"
    stack = Stack(tmp_path / "state", kafka_bootstrap=kafka_bootstrap)
    stack.add_process(
        "echo-service",
        [sys.executable, "-c", _SERVICE, str(port), str(seen)],
        env={"EXTRA": "1"},
        ready_url=f"http://127.0.0.1:{port}/",
    )
    with stack:
        [service] = stack.processes
        assert service.pid is not None and pid_alive(service.pid)
        pid = service.pid
        env = stack.env()
        observed = json.loads(seen.read_text())
        assert observed == {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"],
            "EXTRA": "1",
        }
        assert "service up" in (tmp_path / "state" / "logs" / "echo-service.log").read_text()
        assert stack.dead_parts() == []

    assert wait_pid_gone(pid, 10)
    assert wait_port_free(port)
    # An external broker is not ours to stop.
    assert broker_ready(kafka_bootstrap)
