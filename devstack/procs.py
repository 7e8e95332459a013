"""Child processes of the local stack: started so they cannot outlive us, stopped in order.

Every child runs in its own session (process group) so that a Ctrl-C in the terminal reaches
only `python -m devstack up`, which then stops the children in reverse start order, instead
of every process receiving SIGINT at once. The price of a separate group is that nothing kills
the children when we die abruptly; the parent-death signal (see _pdeathsig.py) covers that.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PDEATHSIG_SCRIPT = Path(__file__).with_name("_pdeathsig.py")
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ProcessSpec:
    """An extra child process of the stack (the api, the consumer...)."""

    name: str
    argv: Sequence[str]
    # Added to os.environ plus the stack's env (these win).
    env: Mapping[str, str] = field(default_factory=dict)
    # Polled after the start until it answers 2xx; None: started is ready.
    ready_url: str | None = None
    ready_timeout: float = 60.0
    cwd: Path | None = None
    # KEY=value pairs this process adds to the stack's env() once started (its own URL, say).
    exports: Mapping[str, str] = field(default_factory=dict)


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = True,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`.

    With `die_with_parent` the kernel SIGKILLs the child when the *thread* that called spawn
    exits (that is how PR_SET_PDEATHSIG works), so call it from the main thread or from a
    thread that lives as long as the child. SIGKILL rather than SIGTERM: this path only runs
    when we died without stopping our children, and then certainty beats a graceful exit.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = list(argv)
    if die_with_parent:
        command = [
            sys.executable,
            "-I",
            "-S",
            str(_PDEATHSIG_SCRIPT),
            str(os.getpid()),
            str(int(signal.SIGKILL)),
            "--",
            *command,
        ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 15.0) -> int | None:
    """SIGTERM the child's process group, wait up to `timeout`, then SIGKILL it.

    Returns the exit code. The whole group is signalled so that anything the child started
    itself goes too.
    """
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # The leader is gone now; members it left behind in its group still get the SIGKILL.
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # Gone already (ProcessLookupError) or reused by a stranger's group (PermissionError).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def pid_alive(pid: int) -> bool:
    """True when `pid` runs and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (not Linux): kill(0) is all we know
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a `python -m devstack...` child.

    devstack is not part of the installed wheel, so the repo root goes first on PYTHONPATH:
    the child then imports this checkout's devstack whatever its working directory is.
    """
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT)
    if extra:
        env.update(extra)
    return env


_OWNER_FILE = "owner.pid"


def owned_temp_dir(prefix: str) -> Path:
    """A new temp dir named `prefix...`, marked as ours, after removing stale ones.

    A process killed outright (SIGKILL, OOM) cannot remove its temp dirs; the parent-death
    signal only takes care of its children. So each launcher sweeps the dirs of its kind whose
    owner is gone whenever it makes a new one.
    """
    remove_stale_temp_dirs(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / _OWNER_FILE).write_text(str(os.getpid()))
    return path


def remove_stale_temp_dirs(prefix: str) -> None:
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((path / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # being created right now, or not ours
        if not pid_alive(owner):
            shutil.rmtree(path, ignore_errors=True)


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for error messages that say why a child did not come up."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
