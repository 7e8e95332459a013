"""Long synchronous invokes behind a NAT-like idle timeout: moto in server mode behind
devstack.idle_proxy, boto3 clients from aws_client.make_client (nothing patched)."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError

from devstack.aws import MotoServer
from devstack.idle_proxy import IdleProxy
from lambda_trigger_consumer.aws_client import (
    FALLBACK_READ_TIMEOUT_SECONDS,
    AwsClients,
    Keepalive,
    make_client,
    socket_options_of,
)

pytestmark = pytest.mark.integration

# The proxy drops a connection after 3 s without a packet; the function answers after 5 s;
# the client probes after 1 s of silence, then every second.
IDLE_TIMEOUT = 3.0
FUNCTION_SECONDS = 5.0
FAST = Keepalive(idle=1, interval=1, count=3)


@pytest.fixture
def proxy(moto: MotoServer) -> Any:
    assert moto.port is not None
    with IdleProxy(moto.host, moto.port, idle_timeout=IDLE_TIMEOUT) as p:
        yield p


@pytest.fixture
def slow_function(moto: MotoServer) -> str:
    name = f"slow-{uuid.uuid4().hex[:8]}"
    moto.create_lambda(name, timeout=10)
    moto.queue_result(name, payload={"rows": 42}, delay_seconds=FUNCTION_SECONDS)
    return name


def test_make_client_sets_keepalive_intervals() -> None:
    client = make_client("lambda", "us-east-1", read_timeout=40, keepalive=FAST)
    options = socket_options_of(client)
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    assert (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1) in options
    assert (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1) in options
    assert (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3) in options
    assert client.meta.config.read_timeout == 40
    assert client.meta.config.retries["total_max_attempts"] == 1
    plain = make_client("lambda", "us-east-1", keepalive=None)
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) not in socket_options_of(plain)


def test_a_synchronous_invoke_longer_than_the_idle_timeout_succeeds_with_keepalive(
    moto: MotoServer, proxy: IdleProxy, slow_function: str
) -> None:
    client = make_client(
        "lambda", "us-east-1", endpoint_url=proxy.url, keepalive=FAST, session=moto.session()
    )
    response = client.invoke(FunctionName=slow_function, Payload=b'{"runId": "lt-1"}')
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"rows": 42}
    assert proxy.connections >= 1 and proxy.cut == 0


def test_without_keepalive_the_idle_proxy_cuts_the_same_invoke(
    moto: MotoServer, proxy: IdleProxy, slow_function: str
) -> None:
    """The proxy is not toothless: the same call without keepalive probes is cut."""
    client = make_client(
        "lambda", "us-east-1", endpoint_url=proxy.url, keepalive=None, session=moto.session()
    )
    with pytest.raises(BotoCoreError):
        client.invoke(FunctionName=slow_function, Payload=b'{"runId": "lt-2"}')
    assert proxy.cut == 1
    [call] = moto.invocations(slow_function)  # the function did run: a false FAILURE
    assert call.invocation_type == "RequestResponse"


def test_read_timeout_follows_the_function_configuration(
    moto: MotoServer,
    proxy: IdleProxy,
    slow_function: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    clients = AwsClients("us-east-1", endpoint_url=proxy.url, keepalive=FAST, margin_seconds=30)
    assert clients.read_timeout_for(slow_function) == 10 + 30
    with caplog.at_level(logging.WARNING, logger="lambda_trigger_consumer.aws_client"):
        # No such function: the fallback, and no warning (the Invoke will report it).
        assert clients.read_timeout_for("no-such-function") == FALLBACK_READ_TIMEOUT_SECONDS
    assert caplog.records == []
    client = clients.lambda_for_invoke(slow_function)
    assert client.meta.config.read_timeout == 40
    assert clients.lambda_for_invoke(slow_function) is client  # cached
    response = client.invoke(FunctionName=slow_function, Payload=b"{}")
    assert json.loads(response["Payload"].read()) == {"rows": 42}
    assert proxy.cut == 0
