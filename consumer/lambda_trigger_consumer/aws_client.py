"""boto3 clients for long synchronous invocations: TCP keepalive, and a read timeout that
outlasts the function.

A RequestResponse Invoke holds one TCP connection silent for as long as the function runs
(up to 15 minutes). NAT gateways and firewalls drop connections idle for longer than their
timeout (AWS NAT gateway: 350 s), after which the answer never arrives and a function that
succeeded is reported as failed. Two things keep the connection:

- TCP keepalive: botocore's `Config(tcp_keepalive=True)` only sets SO_KEEPALIVE, and Linux
  then sends the first probe after `net.ipv4.tcp_keepalive_time` (7200 s by default): far too
  late. `make_client` also sets TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT on the client's
  sockets (botocore 1.44 has no public option for them: they are appended to the socket
  options its HTTP session hands to urllib3; `test_aws_client.py` fails if that changes).
- a read timeout from the function's own configuration (GetFunctionConfiguration `Timeout`,
  plus a margin), instead of one fixed 960 s for every function: a 30-second function whose
  answer got lost is reported after 60 s, not 16 minutes.

Retries stay off (a retried RequestResponse Invoke runs the function twice): see invoke.py.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger_consumer.aws_session import new_session

log = logging.getLogger(__name__)

LAMBDA_MAX_TIMEOUT_SECONDS = 900
READ_TIMEOUT_MARGIN_SECONDS = 30.0
# When the function's timeout cannot be read: the longest a Lambda can run, plus a margin.
FALLBACK_READ_TIMEOUT_SECONDS = LAMBDA_MAX_TIMEOUT_SECONDS + 60.0


@dataclass(frozen=True)
class Keepalive:
    """First probe after `idle` s of silence, then every `interval` s; `count` unanswered
    probes end the connection. 60 s is well below the idle timeouts of AWS NAT gateways
    (350 s), Azure load balancers (240 s) and common firewalls."""

    idle: int = 60
    interval: int = 15
    count: int = 4

    @classmethod
    def every(cls, seconds: int) -> Keepalive:
        """LAMBDA_TRIGGER_AWS_KEEPALIVE_SECONDS: the first probe after `seconds` of silence,
        then every quarter of it."""
        return cls(idle=seconds, interval=max(1, seconds // 4), count=4)

    def socket_options(self) -> list[tuple[int, int, int]]:
        options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
        for name, value in (
            ("TCP_KEEPIDLE", self.idle),  # Linux; macOS calls it TCP_KEEPALIVE
            ("TCP_KEEPINTVL", self.interval),
            ("TCP_KEEPCNT", self.count),
        ):
            if hasattr(socket, name):
                options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
        return options


def make_client(
    service: str,
    region: str | None,
    *,
    endpoint_url: str | None = None,
    read_timeout: float = FALLBACK_READ_TIMEOUT_SECONDS,
    connect_timeout: float = 10.0,
    keepalive: Keepalive | None = Keepalive(),
    max_attempts: int = 1,
    session: boto3.session.Session | None = None,
    max_pool_connections: int = 10,
) -> Any:
    """A boto3 client whose connections send TCP keepalive probes (`keepalive=None`: none,
    the behaviour this module exists to fix). `endpoint_url=None`: boto3 honours
    AWS_ENDPOINT_URL itself. botocore's automatic retries are off unless `max_attempts` > 1."""
    config = Config(
        retries={"total_max_attempts": max_attempts},
        read_timeout=read_timeout,
        connect_timeout=connect_timeout,
        tcp_keepalive=keepalive is not None,
        # botocore's default is 10: more concurrent calls than that open and drop a
        # connection each (urllib3's "Connection pool is full"), a handshake per call.
        max_pool_connections=max_pool_connections,
    )
    client = (session or new_session()).client(
        service,  # type: ignore[call-overload]
        region_name=region,
        config=config,
        endpoint_url=endpoint_url,
    )
    if keepalive is not None:
        _add_socket_options(client, keepalive.socket_options())
    return client


def _add_socket_options(client: Any, options: list[tuple[int, int, int]]) -> None:
    # The list object botocore created for this client is the one its urllib3 pools read at
    # each connect, so extending it in place reaches every connection the client opens.
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    current = getattr(http, "_socket_options", None)
    if not isinstance(current, list):
        log.warning(
            "botocore changed: cannot set TCP keepalive intervals; long synchronous invokes "
            "may be cut by NAT idle timeouts"
        )
        return
    current.extend(option for option in options if option not in current)


def socket_options_of(client: Any) -> list[tuple[int, int, int]]:
    """What the client's connections are opened with (tests, diagnostics)."""
    return list(client._endpoint.http_session._socket_options)


class AwsClients:
    """The consumer's AWS clients: one per (service, region, read timeout), thread-safe, and
    the read timeout of each Lambda function from its configuration (cached)."""

    def __init__(
        self,
        default_region: str | None,
        *,
        endpoint_url: str | None = None,
        keepalive: Keepalive | None = Keepalive(),
        margin_seconds: float = READ_TIMEOUT_MARGIN_SECONDS,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._region = default_region
        self._endpoint_url = endpoint_url
        self._keepalive = keepalive
        self._margin = margin_seconds
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str | None, float], Any] = {}
        self._timeouts: dict[tuple[str, str | None, str | None], tuple[float, float]] = {}

    def client(
        self, service: str, region: str | None = None, *, read_timeout: float | None = None
    ) -> Any:
        key = (service, region or self._region, read_timeout or FALLBACK_READ_TIMEOUT_SECONDS)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = make_client(
                    service,
                    key[1],
                    endpoint_url=self._endpoint_url,
                    read_timeout=key[2],
                    keepalive=self._keepalive,
                )
            return self._clients[key]

    def read_timeout_for(
        self, function: str, qualifier: str | None = None, region: str | None = None
    ) -> float:
        """The function's configured Timeout + margin; the 15-minute fallback when it cannot
        be read (e.g. no lambda:GetFunctionConfiguration permission: logged once per
        function per cache period)."""
        key = (function, qualifier, region or self._region)
        now = self._clock()
        with self._lock:
            cached = self._timeouts.get(key)
        if cached is not None and now - cached[1] < self._cache_seconds:
            return cached[0]
        kwargs: dict[str, Any] = {"FunctionName": function}
        if qualifier:
            kwargs["Qualifier"] = qualifier
        try:
            config = self.client("lambda", region, read_timeout=15.0).get_function_configuration(
                **kwargs
            )
            timeout = float(config["Timeout"]) + self._margin
        except (ClientError, BotoCoreError, KeyError, TypeError, ValueError) as exc:
            timeout = FALLBACK_READ_TIMEOUT_SECONDS
            code = (
                exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            )
            if code != "ResourceNotFoundException":  # the Invoke itself will say that
                fix = (
                    " Grant lambda:GetFunctionConfiguration on it to fix."
                    if code == "AccessDeniedException"
                    else ""
                )
                log.warning(
                    "cannot read the timeout of Lambda %s (%s); waiting up to %.0f s for its "
                    "synchronous answers.%s",
                    function,
                    exc,
                    timeout,
                    fix,
                )
        with self._lock:
            self._timeouts[key] = (timeout, now)
        return timeout

    def lambda_for_invoke(
        self, function: str, qualifier: str | None = None, region: str | None = None
    ) -> Any:
        """The client for a RequestResponse Invoke of this function."""
        return self.client(
            "lambda", region, read_timeout=self.read_timeout_for(function, qualifier, region)
        )
