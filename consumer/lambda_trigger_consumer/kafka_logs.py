"""librdkafka's logs through Python logging, once per distinct message per interval.

Left alone, librdkafka writes to stderr a `FAIL|... Connection refused` line at every
reconnect attempt: hundreds a minute while a broker is unreachable, and none of them says
"Kafka is unreachable". Here:

- `logger`: librdkafka's log lines go to the Python logger `lambda_trigger_consumer.kafka`
  (confluent-kafka calls `logger.log(level, "%s [%s] %s", facility, client, message)` from
  inside poll/consume), through `DedupFilter`: a message seen again within `interval_seconds`
  is counted, not printed; the next one printed after the interval says how many were held
  back. At most `max_lines` distinct messages per interval pass at all.
- `error_cb`: `_TRANSPORT` / `_ALL_BROKERS_DOWN` / `_RESOLVE` mark Kafka down in the
  DependencyMonitor (which prints the project's own "Kafka unreachable at ..." line, once);
  other errors are logged through the same filter.
- security failures (a refused login, a failed TLS verification, a wrong SASL mechanism,
  kafka_failures.py) mark Kafka down with their own reason and the setting to check; the
  "all brokers down" that follows them keeps that reason instead of replacing it;
- `stats_cb` (every `statistics.interval.ms`): a broker in state UP marks Kafka up again.

`KafkaLogging(...).config()` is merged into the Consumer's and the dead-letter Producer's
configuration.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError

from lambda_trigger_consumer.dependencies import DependencyMonitor
from lambda_trigger_consumer.kafka_failures import KafkaFailure, classify

LOGGER_NAME = "lambda_trigger_consumer.kafka"

# Parts of a librdkafka message that change between otherwise identical lines.
_VOLATILE = [
    (
        re.compile(r"\s*\(after \d+ms in state [A-Z_]+(, \d+ identical error\(s\) suppressed)?\)"),
        "",
    ),
    (re.compile(r"\b\d+ms\b"), "Nms"),
]
_UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
}


def normalise(message: str) -> str:
    for pattern, replacement in _VOLATILE:
        message = pattern.sub(replacement, message)
    return message.strip()


@dataclass
class _Seen:
    window_start: float
    held: int = 0


class DedupFilter(logging.Filter):
    """One line per distinct message per interval, plus a count of what was held back."""

    def __init__(
        self,
        interval_seconds: float = 60.0,
        max_lines: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval = interval_seconds
        self._max = max_lines
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, str], _Seen] = {}
        self._window = clock()
        self._passed = 0
        self._over_budget = 0

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        key = (record.levelno, normalise(text))
        now = self._clock()
        with self._lock:
            if now - self._window >= self._interval:
                self._window, self._passed = now, 0
                # Forget keys whose window ended, so the table stays small.
                self._seen = {
                    k: v
                    for k, v in self._seen.items()
                    if now - v.window_start < self._interval or v.held
                }
            seen = self._seen.get(key)
            if seen is not None and now - seen.window_start < self._interval:
                seen.held += 1
                return False
            if self._passed >= self._max:
                self._over_budget += 1
                return False
            self._passed += 1
            notes = []
            if seen is not None and seen.held:
                notes.append(f"{seen.held} more like it in the last {self._interval:g} s")
            if self._over_budget:
                notes.append(f"{self._over_budget} other librdkafka lines held back")
                self._over_budget = 0
            self._seen[key] = _Seen(now)
        if notes:
            record.msg, record.args = f"{text} ({'; '.join(notes)})", None
        return True


class KafkaLogging:
    def __init__(
        self,
        dependencies: DependencyMonitor | None = None,
        *,
        interval_seconds: float = 60.0,
        max_lines: int = 20,
        stats_interval_ms: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deps = dependencies
        self._stats_ms = stats_interval_ms
        self._brokers_up = 0
        # The last security failure until a broker is UP again: later "brokers down" errors
        # (and the start-up topic check) report it rather than a bare transport failure.
        self.security_failure: KafkaFailure | None = None
        self.logger = logging.getLogger(LOGGER_NAME)
        self.filter = DedupFilter(interval_seconds, max_lines, clock)
        # One filter per process: a second ConsumerApp (tests) replaces the first one's.
        for old in [f for f in self.logger.filters if isinstance(f, DedupFilter)]:
            self.logger.removeFilter(old)
        self.logger.addFilter(self.filter)

    def config(self) -> dict[str, Any]:
        """librdkafka settings for a Consumer or Producer."""
        return {
            "logger": self.logger,
            "error_cb": self.on_error,
            "stats_cb": self.on_stats,
            "statistics.interval.ms": self._stats_ms,
        }

    def on_error(self, error: KafkaError) -> None:
        failure = classify(error.code(), error.str())
        if failure is not None:
            self.security_failure = failure
            # Like a transport error: only "Kafka is down" while no broker is UP (one
            # broker refusing a re-authentication while others serve is logged, not an outage).
            if self._deps is not None and self._brokers_up == 0:
                self._deps.down("kafka", failure.reason, hint=failure.hint)
            else:
                self.logger.error("%s; %s", failure.reason, failure.hint)
            return
        if error.code() in _UNREACHABLE and self.security_failure is not None:
            if self._deps is not None:
                failure = self.security_failure
                self._deps.down("kafka", failure.reason, hint=failure.hint)
            return
        if error.code() in _UNREACHABLE:
            # A single broker's disconnect while others are UP is not "Kafka unreachable".
            if self._deps is not None and (
                error.code() == KafkaError._ALL_BROKERS_DOWN or self._brokers_up == 0
            ):
                self._deps.down("kafka", normalise(error.str()))
            return  # librdkafka's own FAIL log line already says it (de-duplicated)
        level = logging.CRITICAL if error.fatal() else logging.ERROR
        self.logger.log(level, "%s: %s", error.name(), error.str())

    def on_stats(self, stats_json: str) -> None:
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        brokers = stats.get("brokers", {}).values() if isinstance(stats, dict) else []
        self._brokers_up = sum(
            1
            for b in brokers
            if isinstance(b, dict) and b.get("state") == "UP" and b.get("nodeid", -1) >= 0
        )
        if self._brokers_up:
            self.security_failure = None
        if self._brokers_up and self._deps is not None:
            self._deps.up("kafka")
