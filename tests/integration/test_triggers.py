"""Lineage triggers end to end (docs/triggers.md): GMS double -> MCL topics -> consumer -> moto.

Upstream `operation` aspects go through the GMS double's timeseries path (timeseries MCL
topic), lineage through its versioned path; the triggered runs are execution requests in
DataHub and their invocations are what moto recorded.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import (
    DatasetPropertiesClass,
    OperationClass,
    UpstreamClass,
    UpstreamLineageClass,
)

from lambda_trigger.contract import now_ms
from lambda_trigger.settings import MappingSettings
from tests.integration.conftest import Env, RunningConsumer

pytestmark = pytest.mark.integration


def dataset(name: str) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:hive,{name},PROD)"


def emit(env: Env, urn: str, aspect: Any) -> None:
    client = env.datahub()
    try:
        client.graph.emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=aspect))
    finally:
        client.close()


def create(env: Env, urn: str) -> None:
    emit(env, urn, DatasetPropertiesClass(name=urn.split(",")[1]))


def lineage(env: Env, downstream: str, *upstreams: str) -> None:
    emit(
        env,
        downstream,
        UpstreamLineageClass(
            upstreams=[UpstreamClass(dataset=u, type="TRANSFORMED") for u in upstreams]
        ),
    )


def operation(env: Env, urn: str, at_ms: int) -> None:
    emit(
        env,
        urn,
        OperationClass(timestampMillis=at_ms, lastUpdatedTimestamp=at_ms, operationType="INSERT"),
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def triggers_ready(consumer: RunningConsumer) -> None:
    app: Any = consumer.app
    wait_for("the lineage watcher's first load", app.lineage_watcher.ready.is_set)
    wait_for("the operation reader's assignment", app.operations.assigned.is_set)


def functions(env: Env, *names: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:6]
    made = {n: f"lt-{n}-{suffix}" for n in names}
    for fn in made.values():
        env.moto.create_lambda(fn)
    return made


def test_a_burst_of_five_upstream_operations_triggers_the_downstream_once(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    up, down = dataset(f"up_{env.executor_id}"), dataset(f"down_{env.executor_id}")
    fns = functions(env, "down")
    create(env, up)
    lineage(env, down, up)  # before the start: loaded from GMS
    env.mapping = {
        "targets": {"down": {"function": fns["down"]}},
        "rules": [
            {
                "dataset": down,
                "target": "down",
                "trigger": {
                    "onUpstream": ["operation"],
                    "debounceSeconds": 4,
                    "cooldownSeconds": 0,
                },
            }
        ],
    }
    consumer = start_consumer()
    triggers_ready(consumer)
    start = now_ms()
    for i in range(5):
        operation(env, up, start + i)
    env.moto.wait_for_invocations(fns["down"], count=1, timeout=60)
    time.sleep(8)  # a second window would have fired by now
    (inv,) = env.moto.invocations(fns["down"])
    payload = inv.payload
    assert payload["datasetUrn"] == down
    assert payload["reason"].startswith(f"lineage trigger: operation of {up}")
    client = env.datahub()
    try:
        stored = client.read_request(payload["runId"])
    finally:
        client.close()
    assert stored is not None and stored.source.type == "LINEAGE_TRIGGER"
    reasons = json.loads(stored.args["triggerReason"])
    assert [r["eventTimeMs"] for r in reasons] == [start + i for i in range(5)]
    assert json.loads(stored.args["lineageChain"]) == [[up, None]]
    env.wait_status(payload["runId"], {"SUCCESS"})
    assert consumer.metric("lambda_trigger_consumer_triggers_fired_total") == 1
    assert consumer.metric("lambda_trigger_consumer_triggers_debounced_total") == 4


def test_run_success_chains_a_b_c_and_a_lineage_edit_needs_no_restart(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    a, b, c = (dataset(f"{n}_{env.executor_id}") for n in "abc")
    fns = functions(env, "a", "b", "c")
    create(env, a)
    lineage(env, b, a)
    create(env, c)
    on_success = {"onUpstream": ["run_success"], "debounceSeconds": 1, "cooldownSeconds": 0}
    env.mapping = {
        "targets": {k: {"function": v} for k, v in fns.items()},
        "rules": [
            {"dataset": a, "target": "a"},
            {"dataset": b, "target": "b", "trigger": on_success},
            {"dataset": c, "target": "c", "trigger": {**on_success, "maxDepth": 2}},
        ],
    }
    consumer = start_consumer()
    triggers_ready(consumer)
    app: Any = consumer.app
    assert app.lineage.upstreams(c) == frozenset()
    lineage(env, c, b)  # an edit while running: read from the versioned MCL
    wait_for("C's new lineage", lambda: app.lineage.upstreams(c) == frozenset({b}))
    first = env.request(a)
    env.moto.wait_for_invocations(fns["c"], count=1, timeout=90)
    (inv_b,) = env.moto.invocations(fns["b"])
    (inv_c,) = env.moto.invocations(fns["c"])
    run_b, run_c = inv_b.payload["runId"], inv_c.payload["runId"]
    client = env.datahub()
    try:
        chain = json.loads(client.read_request(run_c).args["lineageChain"])  # type: ignore[union-attr]
    finally:
        client.close()
    assert chain == [[a, first.run_id], [b, run_b]]
    env.wait_status(run_c, {"SUCCESS"})
    assert len(env.moto.invocations(fns["a"])) == 1


def test_a_cycle_a_b_a_stops(env: Env, start_consumer: Callable[..., RunningConsumer]) -> None:
    a, b = (dataset(f"{n}_{env.executor_id}") for n in "ab")
    fns = functions(env, "a", "b")
    lineage(env, a, b)
    lineage(env, b, a)
    on_success = {
        "onUpstream": ["run_success"],
        "debounceSeconds": 1,
        "cooldownSeconds": 0,
        "maxDepth": 10,
    }
    env.mapping = {
        "targets": {k: {"function": v} for k, v in fns.items()},
        "rules": [
            {"dataset": a, "target": "a", "trigger": on_success},
            {"dataset": b, "target": "b", "trigger": on_success},
        ],
    }
    consumer = start_consumer()
    triggers_ready(consumer)
    env.request(a)
    env.moto.wait_for_invocations(fns["b"], count=1, timeout=60)
    wait_for(
        "the cycle's suppression",
        lambda: (
            consumer.metric(
                "lambda_trigger_consumer_triggers_suppressed_total", {"reason": "cycle"}
            )
            == 1
        ),
    )
    time.sleep(5)
    assert len(env.moto.invocations(fns["a"])) == 1  # only the manual run
    assert len(env.moto.invocations(fns["b"])) == 1
    assert consumer.metric("lambda_trigger_consumer_triggers_fired_total") == 1


def test_changes_during_an_active_run_give_one_follow_up_run(
    env: Env, start_consumer: Callable[..., RunningConsumer]
) -> None:
    up, down = dataset(f"fup_{env.executor_id}"), dataset(f"fdown_{env.executor_id}")
    fns = functions(env, "down")
    create(env, up)
    lineage(env, down, up)
    env.mapping = {
        "targets": {"down": {"function": fns["down"]}},
        "rules": [
            {
                "dataset": down,
                "target": "down",
                "trigger": {
                    "onUpstream": ["operation"],
                    "debounceSeconds": 1,
                    "cooldownSeconds": 0,
                },
            }
        ],
    }
    env.moto.queue_result(fns["down"], {"ok": 1}, delay_seconds=10)  # the first run is slow
    consumer = start_consumer()
    triggers_ready(consumer)
    start = now_ms()
    operation(env, up, start)
    (first,) = env.moto.wait_for_invocations(fns["down"], count=1, timeout=60)
    env.wait_status(first.payload["runId"], {"RUNNING"})
    for i in range(1, 4):  # three changes while it runs
        operation(env, up, start + i)
    env.wait_status(first.payload["runId"], {"SUCCESS"}, timeout=60)
    env.moto.wait_for_invocations(fns["down"], count=2, timeout=60)
    time.sleep(6)  # a third run would have started by now
    runs = env.moto.invocations(fns["down"])
    assert len(runs) == 2
    client = env.datahub()
    try:
        follow_up = client.read_request(runs[1].payload["runId"])
    finally:
        client.close()
    assert follow_up is not None
    assert [r["eventTimeMs"] for r in json.loads(follow_up.args["triggerReason"])] == [
        start + 1,
        start + 2,
        start + 3,
    ]


def test_a_trigger_added_by_a_mapping_reload_starts_without_a_restart(
    env: Env, start_consumer: Callable[..., RunningConsumer], tmp_path: Path
) -> None:
    up, down = dataset(f"rup_{env.executor_id}"), dataset(f"rdown_{env.executor_id}")
    fns = functions(env, "down")
    create(env, up)
    lineage(env, down, up)
    rule: dict[str, Any] = {"dataset": down, "target": "down"}
    mapping = {"targets": {"down": {"function": fns["down"]}}, "rules": [rule]}
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping))
    env.mapping_settings = lambda: MappingSettings(  # type: ignore[method-assign]
        mapping_file=str(path), region="us-east-1"
    )
    consumer = start_consumer(mapping_reload_seconds=0.5)
    app: Any = consumer.app
    time.sleep(2)
    assert not app._trigger_threads  # no trigger in the mapping: nothing extra runs
    rule["trigger"] = {"onUpstream": ["operation"], "debounceSeconds": 1, "cooldownSeconds": 0}
    path.write_text(json.dumps(mapping))
    wait_for("the trigger threads", lambda: bool(app._trigger_threads))
    triggers_ready(consumer)
    operation(env, up, now_ms())
    (inv,) = env.moto.wait_for_invocations(fns["down"], count=1, timeout=60)
    assert inv.payload["datasetUrn"] == down
