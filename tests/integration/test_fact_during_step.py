"""Issue 24 (found by benchmarks/burst.py): an Event Lambda's completion that arrives while the
run's invoke step is still running must end the run at once, not at its deadline (7 hours
for a tracked Event Lambda). The invoke step is held open for 3 s after it recorded STARTED
(a wrapper around the driver's own deadline helper, the step's last call), so the destination
record and the STARTED record's echo are both read while the step still runs: the window a
busy consumer opens during a burst, when a step thread waits for the CPU."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import pytest

from lambda_trigger_consumer.ledger import RunEntry

from .conftest import SIP, Env

pytestmark = pytest.mark.integration


def test_a_completion_during_the_invoke_step_ends_the_run(env: Env, start_consumer: Any) -> None:
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    env.moto.set_destinations(env.functions["sip"], queue_arn)
    env.mapping["targets"]["earnings"]["invocationType"] = "Event"
    env.moto.queue_result(env.functions["sip"], payload={"loaded": 3})  # reports at once
    consumer = start_consumer(completion_queue_url=url)
    driver = consumer.app.driver
    until_deadline = driver._until_deadline

    def slow_end_of_step(entry: RunEntry) -> float:
        time.sleep(3.0)
        return until_deadline(entry)

    driver._until_deadline = slow_end_of_step  # type: ignore[method-assign]
    request = env.request(SIP)
    env.moto.wait_for_invocations(env.functions["sip"], count=1, timeout=30)
    # The destination record is read and recorded while the invoke step still sleeps.
    deadline = time.monotonic() + 30
    while (
        consumer.metric("lambda_trigger_consumer_completion_records_total", {"result": "matched"})
        < 1
    ):
        assert time.monotonic() < deadline, "the completion record was never read"
        time.sleep(0.1)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=30)
    assert result.status == "SUCCESS"


def test_a_step_queued_with_an_older_snapshot_acts_on_the_run_as_it_is_now(
    env: Env, start_consumer: Any
) -> None:
    """Found by benchmarks/burst.py once steps waited seconds in the queue: the dispatch loop
    snapshots every run, then submits; a run whose previous step ended meanwhile (a completion
    arriving during it asks for a look at once) was stepped from the older snapshot. From
    INVOKING it was "recovered" as STARTED without the request id its invoke had recorded, so
    its destination record was ignored and it stayed RUNNING (7 hours, to its deadline); from
    CLAIMED it was claimed and invoked a second time. Here the loop's two stale submissions are
    made by hand, with the loop's lock held, once the run is STARTED."""
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    env.moto.set_destinations(env.functions["sip"], queue_arn)
    env.mapping["targets"]["earnings"]["invocationType"] = "Event"
    env.moto.queue_result(env.functions["sip"], payload={"loaded": 3}, delay_seconds=8)
    consumer = start_consumer(completion_queue_url=url)
    driver = consumer.app.driver
    stale: dict[str, tuple[int, RunEntry]] = {}
    claim_and_invoke, invoke = driver._claim_and_invoke, driver._invoke

    def keep_claimed(partition: int, entry: RunEntry) -> Any:
        stale.setdefault("claimed", (partition, replace(entry)))
        return claim_and_invoke(partition, entry)

    def keep_invoking(partition: int, entry: RunEntry, *args: Any) -> Any:
        stale.setdefault("invoking", (partition, replace(entry)))
        return invoke(partition, entry, *args)

    driver._claim_and_invoke = keep_claimed  # type: ignore[method-assign]
    driver._invoke = keep_invoking  # type: ignore[method-assign]
    request = env.request(SIP)
    env.moto.wait_for_invocations(env.functions["sip"], count=1, timeout=30)
    partition, _ = stale["invoking"]
    deadline = time.monotonic() + 30
    while True:
        now = driver._view.get(partition, request.run_id)
        if now is not None and now.request_id and request.run_id not in driver._busy:
            break
        assert time.monotonic() < deadline, "the run never settled as STARTED"
        time.sleep(0.05)
    assert stale["invoking"][1].request_id is None and stale["claimed"][1].request_id is None

    for phase in ("invoking", "claimed"):
        with driver._lock:
            driver._submit(*stale[phase])
        while request.run_id in driver._busy:
            time.sleep(0.05)

    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE", "TIMEOUT"}, timeout=40)
    assert result.status == "SUCCESS"
    assert len(env.moto.invocations(env.functions["sip"])) == 1
