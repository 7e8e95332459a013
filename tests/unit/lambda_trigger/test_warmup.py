"""Warmup (lambda_trigger/warmup.py): steps retried until each has succeeded once, readiness
said by status(), and refreshes that never take readiness back."""

from __future__ import annotations

import threading

from lambda_trigger.warmup import Warmup


class Flaky:
    """Fails `failures` times, then succeeds; counts its calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls} refused")


def test_not_warm_until_every_step_has_succeeded_and_a_done_step_is_not_repeated() -> None:
    identity, aws = Flaky(0), Flaky(2)
    warmup = Warmup([("identity", identity), ("aws", aws)])
    assert warmup.status() == (False, {"warm": False, "warming": ["identity", "aws"]})

    assert warmup.run_once() is False
    ready, detail = warmup.status()
    assert not ready and detail["warming"] == ["aws"]
    assert detail["warmupErrors"] == {"aws": "ConnectionError: attempt 1 refused"}

    assert warmup.run_once() is False
    assert warmup.run_once() is True
    assert identity.calls == 1 and aws.calls == 3
    ready, detail = warmup.status()
    assert ready and detail["warm"] is True and "warming" not in detail
    assert isinstance(detail["warmupSeconds"], float)


def test_a_failing_refresh_keeps_it_ready() -> None:
    step = Flaky(0)
    warmup = Warmup([("datahub", step)])
    assert warmup.run_once()
    step.failures = 10  # GMS went away after the start
    warmup.refresh()
    assert step.calls == 2
    assert warmup.status()[0] is True


def test_the_thread_retries_until_warm_and_refreshes_on_request() -> None:
    stop = threading.Event()
    step = Flaky(2)
    warmup = Warmup([("gms", step)], stop=stop, first_retry_seconds=0.01)
    warmup.start()
    try:
        assert warmup.wait(10)
        assert warmup.wait_first_pass(0)
        assert step.calls == 3
        warmup.again()  # e.g. a mapping reload with new targets
        deadline = threading.Event()
        for _ in range(100):
            if step.calls == 4:
                break
            deadline.wait(0.05)
        assert step.calls == 4
    finally:
        stop.set()


def test_first_pass_is_over_even_when_a_step_fails() -> None:
    stop = threading.Event()
    warmup = Warmup([("gms", Flaky(1000))], stop=stop, first_retry_seconds=5.0)
    warmup.start()
    try:
        assert warmup.wait_first_pass(10)
        assert not warmup.done
    finally:
        stop.set()
