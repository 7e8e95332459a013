"""A TCP proxy that drops idle connections, like a NAT gateway.

    with IdleProxy("127.0.0.1", moto.port, idle_timeout=3.0) as proxy:
        boto3 client with endpoint_url=proxy.url ...

A connection through it is cut (reset, as AWS NAT gateways answer a packet of a connection
they forgot) when no packet crossed it for `idle_timeout` seconds. "Packet", not "byte": a NAT
gateway sees TCP keepalive probes, which carry no data and never reach a user-space proxy's
read(). The proxy therefore also counts the segments the kernel received on both of its
sockets (TCP_INFO `tcpi_segs_in`, Linux 4.2+): a keepalive probe or its answer keeps the
connection, exactly as at a NAT gateway. Without that, no client setting could pass.

Also usable as a plain forwarder (`idle_timeout=None`), e.g. to put a listener on a port
that was closed until now.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import threading
import time
from typing import Self

from devstack.lifecycle import StartStop
from devstack.ports import LOOPBACK

log = logging.getLogger(__name__)

# struct tcp_info (include/uapi/linux/tcp.h): 8 one-byte fields, 24 u32, 4 u64, then
# tcpi_segs_out and tcpi_segs_in.
_SEGS_IN_OFFSET = 8 + 24 * 4 + 4 * 8 + 4
_TCP_INFO_LEN = 256


def segments_received(sock: socket.socket) -> int | None:
    """Segments the kernel received on `sock`, data or not; None where TCP_INFO lacks it."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):
        return None
    if len(info) < _SEGS_IN_OFFSET + 4:
        return None
    return int(struct.unpack_from("I", info, _SEGS_IN_OFFSET)[0])


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST, not FIN.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class IdleProxy(StartStop):
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        idle_timeout: float | None,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.idle_timeout = idle_timeout
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.cut = 0  # connections dropped for idleness
        self.connections = 0
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("IdleProxy is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.requested_port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._stopping.clear()
        thread = threading.Thread(target=self._accept, name=f"idle-proxy-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self.connections += 1
            thread = threading.Thread(
                target=self._pipe, args=(client, upstream), name="idle-proxy-conn", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        for sock in peers:
            sock.setblocking(False)
        peers_by_fd = {sock.fileno(): sock for sock in peers}
        selector = selectors.DefaultSelector()
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        segments = {sock: segments_received(sock) for sock in peers}
        last_traffic = time.monotonic()
        tick = min(0.1, self.idle_timeout / 10) if self.idle_timeout else 0.1
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(tick):
                    sock = peers_by_fd[key.fd]
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        return
                    if not data:
                        return  # one side closed: close both
                    peers[sock].setblocking(True)
                    try:
                        peers[sock].sendall(data)
                    except OSError:
                        return
                    finally:
                        peers[sock].setblocking(False)
                    last_traffic = time.monotonic()
                for sock in peers:
                    count = segments_received(sock)
                    if count != segments[sock]:  # data, ACKs or keepalive probes
                        segments[sock] = count
                        last_traffic = time.monotonic()
                if self.idle_timeout and time.monotonic() - last_traffic > self.idle_timeout:
                    with self._lock:
                        self.cut += 1
                    log.info("idle for %.1f s: connection cut", self.idle_timeout)
                    for sock in peers:
                        _reset(sock)
                    return
        finally:
            selector.close()
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.close()
