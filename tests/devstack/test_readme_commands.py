"""README.md's "Try it" commands, run as written: `make run`, `make demo`, `make test`, and the
curl calls against the stack `make run` starts.

`make run` is `python -m devstack up --with-services` once the virtualenv and the micro-frontend
bundle are built (`make -n` shows the recipe; `make test` has built both before this runs), so
the test starts that command in a scratch checkout-like folder, where the README's
`. .devstack/env` finds the file it writes, and runs the README's curl block there. `make demo`
runs `python -m devstack demo` the same way. The "Trigger from code" block is
tests/conformance/test_readme.py's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.procs import REPO_ROOT, python_env

pytestmark = pytest.mark.integration

README = REPO_ROOT / "README.md"
UP_DEADLINE = 180.0  # generous: the machine running the suite may be busy


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _sh_blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def _commands(block: str) -> list[str]:
    """One string per shell command: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if command:
            commands.append(command)
    return commands


def _make_dry_run(target: str) -> str:
    done = subprocess.run(  # the exit code is asserted by the caller's use of the output
        ["make", "-n", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_two_commands_are_the_makefiles() -> None:
    (block, _curl) = _sh_blocks(_section("Try it"))
    assert [c.split()[:2] for c in _commands(block)] == [["make", "run"], ["make", "test"]]
    assert "-m devstack up --with-services" in _make_dry_run("run")
    assert "-m devstack demo" in _make_dry_run("demo")
    test = _make_dry_run("test")
    for step in ("ruff check", "mypy", "npm test", "pytest"):
        assert step in test, f"`make test` no longer runs {step}"
    assert "`make demo`" in _section("Try it")


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Path]:
    """`make run`'s command, from a folder whose `.devstack/env` the README's commands source."""
    work = tmp_path / "checkout"
    work.mkdir()
    state_dir = work / ".devstack"
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--with-services", "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env_file = state_dir / "env"
        deadline = time.monotonic() + UP_DEADLINE
        while "LAMBDA_TRIGGER_API_URL=" not in (env_file.read_text() if env_file.exists() else ""):
            if process.poll() is not None:
                raise AssertionError(f"`up` exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {env_file} with the api's URL after {UP_DEADLINE}s")
            time.sleep(0.5)
        yield work
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _bash(script: str, cwd: Path) -> str:
    done = subprocess.run(  # the exit code is asserted here
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_curl_calls_work_against_make_run(make_run: Path) -> None:
    (_make, block) = _sh_blocks(_section("Try it"))
    source, targets, post, status = _commands(block)
    assert source == "set -a; . .devstack/env; set +a"

    # Each answer on a line of its own: curl -s prints the body without a newline.
    answers = _bash("\n".join([source, targets, "echo", post, "echo"]), make_run).splitlines()
    target, started = (json.loads(line) for line in answers if line.strip())
    assert target["available"] is True and target["canRun"] is True
    assert started["status"] == "started"
    run_id = started["runId"]

    assert "<runId>" in status
    deadline = time.monotonic() + 90
    while True:
        run = json.loads(_bash(f"{source}\n{status.replace('<runId>', run_id)}", make_run))
        assert run["runId"] == run_id
        if run["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert run["state"] == "succeeded", run


def test_make_demo_runs_one_dataset_to_success(tmp_path: Path) -> None:
    done = subprocess.run(  # the exit code is asserted below
        [sys.executable, "-m", "devstack", "demo", "--state-dir", str(tmp_path / ".devstack")],
        cwd=REPO_ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=UP_DEADLINE + 120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "POST /api/ingestion/run -> 202" in output
    assert re.search(r"demo finished in [\d.]+ s: succeeded", output), output[-2000:]
