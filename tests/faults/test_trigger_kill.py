"""A lineage trigger survives a SIGKILL of the consumer deciding it (docs/triggers.md).

Two consumer processes share the group. Upstream `operation` events open a debounce window for
the downstream dataset; the process owning that dataset's ledger partition (the one that logs
"trigger window ... opened") is killed inside the window. The survivor takes the partition over,
reads the stored window from the ledger and starts exactly one run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lambda_trigger.contract import now_ms
from tests.faults.test_sigkill_trials import ConsumerProcess, _consumer_env
from tests.integration.conftest import Env
from tests.integration.test_triggers import create, dataset, lineage, operation

pytestmark = pytest.mark.integration
DEBOUNCE_SECONDS = 20


def _logs(log_dir: Path, instance: str) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(log_dir.glob(f"{instance}-*.log")))


def _wait_log(log_dir: Path, text: str, timeout: float = 60.0) -> str:
    """The instance whose log has `text` first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for instance in ("c1", "c2"):
            if text in _logs(log_dir, instance):
                return instance
        time.sleep(0.2)
    raise AssertionError(f"no consumer logged {text!r}")


def test_kill_of_the_deciding_consumer_inside_the_window_gives_exactly_one_run(
    env: Env, tmp_path: Path
) -> None:
    up, down = dataset(f"kup_{env.executor_id}"), dataset(f"kdown_{env.executor_id}")
    function = f"lt-kill-{env.executor_id}"
    env.moto.create_lambda(function)
    create(env, up)
    lineage(env, down, up)
    env.mapping = {
        "targets": {"down": {"function": function}},
        "rules": [
            {
                "dataset": down,
                "target": "down",
                "trigger": {
                    "onUpstream": ["operation"],
                    "debounceSeconds": DEBOUNCE_SECONDS,
                    "cooldownSeconds": 0,
                },
            }
        ],
    }
    environment = _consumer_env(env)
    procs = {name: ConsumerProcess(environment, name, tmp_path) for name in ("c1", "c2")}
    try:
        for proc in procs.values():
            proc.start()
        for proc in procs.values():
            proc.wait_ready()
        for name in procs:
            deadline = time.monotonic() + 60
            while "lineage loaded for 1 triggered datasets" not in _logs(tmp_path, name):
                assert time.monotonic() < deadline, f"{name}: lineage never loaded"
                time.sleep(0.2)
        _wait_log(tmp_path, "operations: reading [(0,")
        time.sleep(3)  # the second member's join to the operations group settles
        start = now_ms()
        for i in range(5):
            operation(env, up, start + i)
        owner = _wait_log(tmp_path, f"trigger window of {down} opened")
        opened_at = time.monotonic()
        procs[owner].kill()
        env.moto.wait_for_invocations(function, count=1, timeout=120)
        # The window was not cut short by the takeover: no run before it closed.
        (inv,) = env.moto.invocations(function)
        assert inv.payload["datasetUrn"] == down
        assert time.monotonic() - opened_at >= DEBOUNCE_SECONDS - 2
        time.sleep(10)  # a second decision would have fired by now
        assert len(env.moto.invocations(function)) == 1
        env.wait_status(inv.payload["runId"], {"SUCCESS"}, timeout=60)
        survivor = "c2" if owner == "c1" else "c1"
        assert "triggered run" in _logs(tmp_path, survivor)
        reasons = json.loads(
            env.datahub().read_request(inv.payload["runId"]).args["triggerReason"]  # type: ignore[union-attr]
        )
        assert len(reasons) == 5
    finally:
        for proc in procs.values():
            proc.stop()
