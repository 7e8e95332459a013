"""Is Kafka, GMS, the schema registry, AWS reachable? One line when that changes, not a flood.

`DependencyMonitor` keeps up/down per dependency. Reports come from two sides:
- passive: code that talks to a dependency says what happened (`down(name, reason)` /
  `up(name)`): librdkafka's error and statistics callbacks for Kafka (kafka_logs.py), and the
  start-up topic check (app.py) while Kafka does not answer;
- active: `add_probe(name, probe)` and `start_probes(stop)`: a daemon thread asks each probe
  every few seconds, off the poll loop, so an idle consumer still knows.

On a transition it logs the project's own line, once:

    Kafka unreachable at localhost:1 since 12:00:03 UTC: Connection refused; check KAFKA_BOOTSTRAP_SERVERS ...
    Kafka reachable again at localhost:1 after 2m13s unreachable

and, while still down, a reminder every `remind_seconds`. The state feeds `/readyz` (which
dependency fails, since when, why) and `lambda_trigger_consumer_dependency_up{dependency}`.
A dependency nobody has reported on yet is "unknown" and does not fail readiness.

Addresses and reasons are stored without URL credentials (lambda_trigger.redact): a
`SCHEMA_REGISTRY_URL` of `https://user:secret@registry/` is logged and shown on /readyz as
`https://***@registry/`.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from prometheus_client import Gauge

from lambda_trigger.redact import strip_credentials, strip_url_credentials

log = logging.getLogger(__name__)

Probe = Callable[[], str | None]  # None: reachable; else why not, in a few words


@dataclass
class _State:
    name: str
    display: str
    address: str
    hint: str
    up: bool | None = None
    since_wall: float = 0.0
    since_mono: float = 0.0
    reason: str = ""
    reminded: float = 0.0
    current_hint: str = ""  # this outage's hint, when the reporter knows better than `hint`


def _clock(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S UTC")


def _duration(elapsed: float) -> str:
    seconds = round(elapsed)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class DependencyMonitor:
    def __init__(
        self,
        gauge: Gauge | None = None,
        *,
        remind_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._gauge = gauge
        self._remind = remind_seconds
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self._probes: dict[str, Probe] = {}

    def register(self, name: str, display: str, address: str, hint: str) -> None:
        """`display` starts the log line ("Kafka"), `hint` ends it ("check ...")."""
        with self._lock:
            self._states[name] = _State(name, display, strip_credentials(address), hint)

    def add_probe(self, name: str, probe: Probe) -> None:
        self._probes[name] = probe

    # --- reports ----------------------------------------------------------------------------

    def down(self, name: str, reason: str, *, hint: str | None = None) -> None:
        """`hint` replaces the registered one for this outage (a refused Kafka login names
        the password setting, not the bootstrap servers)."""
        reason = strip_url_credentials(reason)  # an error may quote the URL it called
        with self._lock:
            state = self._states[name]
            now, wall = self._clock(), self._wall()
            state.reason = reason
            state.current_hint = hint or state.hint
            if state.up is False:
                if now - state.reminded >= self._remind:
                    state.reminded = now
                    log.error(
                        "%s still unreachable at %s since %s (%s): %s",
                        state.display,
                        state.address,
                        _clock(state.since_wall),
                        _duration(now - state.since_mono),
                        reason,
                    )
                return
            state.up, state.since_wall, state.since_mono, state.reminded = False, wall, now, now
            self._set_gauge(name, 0)
            log.error(
                "%s unreachable at %s since %s: %s; %s",
                state.display,
                state.address,
                _clock(wall),
                reason,
                state.current_hint,
            )

    def up(self, name: str) -> None:
        with self._lock:
            state = self._states[name]
            if state.up is True:
                return
            now = self._clock()
            if state.up is False:
                log.warning(
                    "%s reachable again at %s after %s unreachable",
                    state.display,
                    state.address,
                    _duration(now - state.since_mono),
                )
            state.up, state.since_wall, state.since_mono, state.reason = True, self._wall(), now, ""
            self._set_gauge(name, 1)

    def _set_gauge(self, name: str, value: int) -> None:
        if self._gauge is not None:
            self._gauge.labels(dependency=name).set(value)

    # --- state ------------------------------------------------------------------------------

    def is_up(self, name: str) -> bool | None:
        with self._lock:
            return self._states[name].up

    def failing(self) -> list[str]:
        with self._lock:
            return [name for name, s in self._states.items() if s.up is False]

    def status(self) -> dict[str, object]:
        """For /readyz: `failing` names the dependencies that are down; `dependencies` has
        each one's state, address, since when and why."""
        with self._lock:
            deps: dict[str, object] = {}
            for name, s in self._states.items():
                entry: dict[str, object] = {
                    "status": "unknown" if s.up is None else "up" if s.up else "down",
                    "address": s.address,
                }
                if s.up is not None:
                    entry["since"] = datetime.fromtimestamp(s.since_wall, UTC).isoformat()
                if s.up is False:
                    entry["error"] = s.reason
                    entry["hint"] = s.current_hint or s.hint
                deps[name] = entry
            failing = [name for name, s in self._states.items() if s.up is False]
        return {"failing": failing, "dependencies": deps}

    # --- probes -----------------------------------------------------------------------------

    def probe_once(self) -> None:
        for name, probe in list(self._probes.items()):
            try:
                reason = probe()
            except Exception as exc:  # a broken probe must not kill the thread
                reason = f"probe failed: {type(exc).__name__}: {exc}"
            if reason is None:
                self.up(name)
            else:
                self.down(name, reason)

    def start_probes(self, stop: threading.Event, interval: float = 10.0) -> threading.Thread:
        def loop() -> None:
            while True:
                self.probe_once()
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=loop, name="dependency-probe", daemon=True)
        thread.start()
        return thread


# --- probes ---------------------------------------------------------------------------------


def _connect_reason(exc: BaseException) -> str:
    """The OS's words ("Connection refused") from anywhere in the exception chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        current = current.__cause__ or current.__context__
    return re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__


def http_probe(url: str, *, timeout: float = 5.0) -> Probe:
    """Reachable: any HTTP answer below 500. A 5xx is a service that is up but failing, which
    for the consumer is the same as unreachable."""

    # One client for the probe's life: httpx.get() builds a client, and its TLS context
    # (the CA bundle), each time: about 25 ms of CPU a call, on the poll loop's cores. No
    # kept-alive connection: each probe connects afresh, as a reachability check should.
    client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))

    def probe() -> str | None:
        try:
            response = client.get(url)
        except httpx.TimeoutException:
            return f"no answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            return _connect_reason(exc)
        if response.status_code >= 500:
            return f"answers HTTP {response.status_code}"
        return None

    return probe


def tcp_probe(endpoint_url: str, *, timeout: float = 5.0) -> Probe:
    """Reachability of an HTTPS/HTTP endpoint without credentials or permissions: a TCP
    connection to its host and port (AWS: the regional Lambda endpoint)."""
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)

    def probe() -> str | None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except TimeoutError:
            return f"no TCP connection to {host}:{port} within {timeout:g} s"
        except OSError as exc:
            return _connect_reason(exc)

    return probe


# The line's ending: what an on-call engineer checks first.
HINTS = {
    "kafka": "check KAFKA_BOOTSTRAP_SERVERS (and LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL / "
    "LAMBDA_TRIGGER_KAFKA_AUTH), that the brokers run, and that this pod may reach them; see "
    "docs/kafka-and-registries.md#kafka-unreachable",
    "gms": "check DATAHUB_GMS_URL, that DataHub GMS runs, and that this pod may reach it",
    "schema_registry": "check SCHEMA_REGISTRY_URL (DataHub's is <gms>/schema-registry/api/) "
    "and that it answers",
    "aws": "check the region (DATAHUB_INGESTION_LAMBDA_REGION / AWS_REGION), AWS_ENDPOINT_URL if "
    "set, and the network path to AWS (NAT gateway, VPC endpoint, proxy)",
}
DISPLAY = {
    "kafka": "Kafka",
    "gms": "DataHub GMS",
    "schema_registry": "Schema registry",
    "aws": "AWS",
}


def register_defaults(
    monitor: DependencyMonitor,
    *,
    kafka: str,
    gms_url: str,
    schema_registry_url: str,
    aws_endpoint: str | None,
    schema_registry_probe: Probe | None = None,
    schema_registry_hint: str | None = None,
) -> None:
    """The consumer's four dependencies, with active probes for the HTTP ones. The registry's
    probe and hint come from registries.py when given: it knows the registry type and asks
    with the registry's own credentials (a refused password is a failing dependency)."""
    monitor.register("kafka", DISPLAY["kafka"], kafka, HINTS["kafka"])
    monitor.register("gms", DISPLAY["gms"], gms_url, HINTS["gms"])
    # GET /config: unauthenticated on DataHub GMS (what lambda_trigger.datahub's reachable() asks).
    monitor.add_probe("gms", http_probe(f"{gms_url.rstrip('/')}/config"))
    monitor.register(
        "schema_registry",
        DISPLAY["schema_registry"],
        schema_registry_url,
        schema_registry_hint or HINTS["schema_registry"],
    )
    monitor.add_probe(
        "schema_registry",
        schema_registry_probe or http_probe(f"{schema_registry_url.rstrip('/')}/subjects"),
    )
    if aws_endpoint:
        monitor.register("aws", DISPLAY["aws"], aws_endpoint, HINTS["aws"])
        # Behind an HTTPS proxy boto3 connects to the proxy, not to AWS: probe that hop.
        monitor.add_probe("aws", tcp_probe(_proxy_for(aws_endpoint) or aws_endpoint))


def _proxy_for(url: str) -> str | None:
    """The proxy boto3 (urllib3, via botocore's proxy settings) would use for `url`, if any."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxy = urllib.request.getproxies().get(parts.scheme)
    return proxy or None
