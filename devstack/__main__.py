"""`python -m devstack up|down|status|env`: the local stack from a terminal.

`up` runs in the foreground: it starts Kafka, the GMS double and moto (and with
--with-services the project's services), prints the KEY=value lines on stdout, writes them to
<state-dir>/env and stays until Ctrl-C / SIGTERM / `python -m devstack down`, then stops
everything and removes its state files. Messages go to stderr, so stdout is only the env.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devstack.procs import pid_alive, wait_pid_gone
from devstack.stack import Stack, format_env

PID_FILE = "up.pid"
ENV_FILE = "env"
STATE_FILE = "stack.json"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequested(BaseException):
    """Raised from the signal handler in the main thread to unwind start-up or the wait.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it.
    """


def _say(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def _running_pid(state_dir: Path) -> int | None:
    """The pid of the `up` owning state_dir, if it still runs (and is still devstack)."""
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid() or not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no procfs: trust the pid file
    # A stale pid file whose pid was reused by an unrelated process must not be signalled.
    return pid if b"devstack" in cmdline else None


def _remove_state_files(state_dir: Path) -> None:
    # A stale env file would point the next shell at ports nobody listens on any more.
    for name in (ENV_FILE, STATE_FILE, PID_FILE):
        (state_dir / name).unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text)
    scratch.replace(path)


def cmd_up(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    other = _running_pid(state_dir)
    if other is not None:
        _say(f"already running (pid {other}) for {state_dir}; `python -m devstack down` stops it")
        return 1
    _remove_state_files(state_dir)
    # Written first, so `down` can stop an `up` that is still starting.
    (state_dir / PID_FILE).write_text(f"{os.getpid()}\n")

    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return  # teardown is under way; a second Ctrl-C must not interrupt it half-way
        stopping = True
        raise _StopRequested(signal.Signals(signum).name)

    for sig in _STOP_SIGNALS:
        signal.signal(sig, request_stop)

    began = time.monotonic()
    stack = Stack(
        state_dir,
        kafka_bootstrap=args.kafka_bootstrap,
        kafka_mode=args.kafka,
        gms_state_file=state_dir / "gms-state.sqlite3",
        with_services=args.with_services,
        kafka_security=args.kafka_security,
    )
    exit_code = 0
    try:
        _say(f"starting (state in {state_dir})")
        stack.start()
        env = stack.env()
        _write_atomically(state_dir / ENV_FILE, format_env(env))
        _write_atomically(
            state_dir / STATE_FILE,
            json.dumps(
                {"pid": os.getpid(), "startedAt": time.time(), "env": env, **stack.describe()},
                indent=2,
            ),
        )
        sys.stdout.write(format_env(env))
        sys.stdout.flush()
        kafka_kind = stack.kafka.kind if stack.kafka is not None else "?"
        _say(
            f"up in {time.monotonic() - began:.1f}s (kafka: {kafka_kind}); logs in "
            f"{stack.logs_dir}; `set -a; . {state_dir / ENV_FILE}; set +a` loads the env; "
            "Ctrl-C or `python -m devstack down` stops it"
        )
        while True:
            time.sleep(0.5)
            dead = stack.dead_parts()
            if dead:
                _say(f"{', '.join(dead)} exited unexpectedly; stopping (logs in {stack.logs_dir})")
                exit_code = 1
                break
    except _StopRequested as stop:
        _say(f"{stop} received, stopping")
    except Exception as exc:
        _say(f"start-up failed: {exc}")
        exit_code = 1
    finally:
        stopping = True
        try:
            stack.stop()
        except Exception as exc:
            _say(f"stopping failed: {exc}")
            exit_code = 1
        _remove_state_files(state_dir)
    _say("stopped")
    return exit_code


def cmd_down(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    pid = _running_pid(state_dir)
    if pid is None:
        _say(f"not running for {state_dir}")
        _remove_state_files(state_dir)
        return 0
    os.kill(pid, signal.SIGTERM)
    if wait_pid_gone(pid, args.timeout):
        _say(f"stopped (pid {pid})")
        return 0
    _say(f"pid {pid} still running after {args.timeout}s")
    return 1


def cmd_status(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    pid = _running_pid(state_dir)
    if pid is None:
        print(f"not running ({state_dir})")
        return 1
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        print(f"starting (pid {pid})")
        return 0
    print(f"running (pid {pid}, up {time.time() - float(state['startedAt']):.0f}s)")
    for part in state.get("components", []):
        part_pid = part.get("pid")
        alive = "in-process" if part_pid is None else ("alive" if pid_alive(part_pid) else "DEAD")
        print(
            f"  {part['name']:<10} {part['kind']:<8} {alive:<10} {part['endpoint']}  {part['log']}"
        )
    print(format_env(state.get("env", {})), end="")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    env_file = state_dir / ENV_FILE
    if _running_pid(state_dir) is None or not env_file.exists():
        _say(f"not running for {state_dir}")
        return 1
    sys.stdout.write(env_file.read_text())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    # Imported here: the demo pulls in the services' dependencies, which up/down/status avoid.
    from devstack.demo import run_demo

    return run_demo(args.state_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_state_dir(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--state-dir", type=Path, default=Path(".devstack"), help="default: .devstack"
        )
        return sub

    up = with_state_dir(commands.add_parser("up", help="start the stack in the foreground"))
    up.add_argument("--with-services", action="store_true", help="also run the api and consumer")
    up.add_argument(
        "--kafka-bootstrap",
        metavar="HOST:PORT",
        help="use this running broker instead of starting one (the KAFKA_BOOTSTRAP_SERVERS "
        "variable is ignored here: a sourced .devstack/env would point at a stopped broker)",
    )
    up.add_argument(
        "--kafka",
        choices=("docker", "jars"),
        help="how to run the broker (default: Docker if reachable, else the Maven Central jars)",
    )
    up.add_argument(
        "--kafka-security",
        action="store_true",
        help="start the jars broker with SASL_SSL (SCRAM-SHA-512), OAUTHBEARER and mTLS "
        "listeners; clients use SASL_SSL/SCRAM (docs/kafka-and-registries.md)",
    )
    up.set_defaults(handler=cmd_up)

    down = with_state_dir(commands.add_parser("down", help="stop a running `up`"))
    down.add_argument("--timeout", type=float, default=60.0)
    down.set_defaults(handler=cmd_down)

    status = with_state_dir(commands.add_parser("status", help="what runs"))
    status.set_defaults(handler=cmd_status)

    env = with_state_dir(
        commands.add_parser("env", help="print the running stack's KEY=value lines")
    )
    env.set_defaults(handler=cmd_env)

    demo = with_state_dir(commands.add_parser("demo", help="run one sample request end to end"))
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
