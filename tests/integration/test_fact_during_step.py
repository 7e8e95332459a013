"""Issue 24 (found by benchmarks/burst.py): an Event Lambda's completion that arrives while the
run's invoke step is still running must end the run at once, not at its deadline (7 hours
for a tracked Event Lambda). The invoke step is held open for 3 s after it recorded STARTED
(a wrapper around the driver's own deadline helper, the step's last call), so the destination
record and the STARTED record's echo are both read while the step still runs: the window a
busy consumer opens during a burst, when a step thread waits for the CPU."""

from __future__ import annotations

import time
import uuid
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
