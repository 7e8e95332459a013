"""AWS calls under load (issue 24): every call counted by API, throttling answers told apart,
and the jittered backoff a throttled call is retried with.

Counting uses botocore's own event hooks (`after-call`, `after-call-error`) on each client the
consumer builds, so it sees exactly the HTTP calls made, retries included, whatever code path
made them. Throttling: AWS answers 429 / `TooManyRequestsException` (Lambda),
`ThrottlingException` (Step Functions, SQS as `ThrottlingException` or `RequestThrottled`),
and Step Functions' `ExecutionLimitExceeded`; none of them ran anything, so the call may be
made again. Retrying at fixed intervals would make every run throttled in the same moment
come back in the same moment; "full jitter" (a random wait between 0 and the exponential
bound: AWS Architecture Blog, "Exponential Backoff And Jitter") spreads them out.
"""

from __future__ import annotations

import random
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger_consumer.aws_rehearsal import rehearsing

THROTTLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "ExecutionLimitExceeded",
        "RequestLimitExceeded",
    }
)

# Every API the consumer calls (invoke.py, completion.py), by botocore's operation name: the
# counters' children for these exist from the start (metrics.py), so a dashboard shows 0 and
# rate() sees the first call, or the first throttle, of each.
KNOWN_APIS = (
    "Invoke",
    "GetFunctionConfiguration",
    "GetFunctionEventInvokeConfig",
    "StartExecution",
    "DescribeExecution",
    "StopExecution",
    "GetQueueAttributes",
    "ReceiveMessage",
    "ChangeMessageVisibility",
    "DeleteMessage",
)


class AwsTransient(RuntimeError):
    """AWS throttled the call or did not answer: nothing was done, try again later (the run
    driver treats it like an unreachable DataHub: the run waits, it does not fail)."""


def is_throttle(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in THROTTLE_CODES or status == 429


def transient(exc: BaseException) -> bool:
    """Throttled, or no answer at all (connection refused, timeout before sending)."""
    return is_throttle(exc) or isinstance(exc, BotoCoreError)


def backoff(
    attempt: int, *, base: float = 0.2, cap: float = 5.0, rng: random.Random | None = None
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]; attempt counts from 1."""
    bound = min(cap, base * 2 ** max(0, attempt))
    return (rng or random).uniform(0.0, bound)


def jittered(seconds: float, *, spread: float = 0.2, rng: random.Random | None = None) -> float:
    """`seconds` give or take `spread` of it, so that waits that start together end apart."""
    return seconds * (1.0 + (rng or random).uniform(-spread, spread))


class CallCounter:
    """Counts a client's calls by API into two labelled counters (metrics.py)."""

    def __init__(self, calls: Any, throttles: Any) -> None:
        self._calls = calls
        self._throttles = throttles

    def observe(self, client: Any) -> Any:
        events = client.meta.events
        events.register("after-call", self._after_call)
        events.register("after-call-error", self._after_error)
        return client

    def _after_call(self, *, model: Any, http_response: Any, parsed: Any, **_: Any) -> None:
        if rehearsing():
            return  # a warm-up's call that never left the process (aws_rehearsal.py)
        api = str(getattr(model, "name", "unknown"))
        self._calls.labels(api=api).inc()
        code = ((parsed or {}).get("Error") or {}).get("Code", "")
        if code in THROTTLE_CODES or getattr(http_response, "status_code", 0) == 429:
            self._throttles.labels(api=api).inc()

    def _after_error(self, *, event_name: str = "", **_: Any) -> None:
        if rehearsing():
            return
        # No HTTP answer (connection refused, read timeout): a call all the same. botocore
        # passes no model with this event; its name ends with the operation's.
        self._calls.labels(api=event_name.rsplit(".", 1)[-1] or "unknown").inc()
