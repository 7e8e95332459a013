"""Limits checked before any work: body size, header size, a UTF-8 URL, and runs per user.

The body limit is an ASGI middleware, so an oversized body is refused before FastAPI reads
or parses it (and before the caller is identified, which costs a DataHub call); nginx in
front allows far more. The header limit spares DataHub a 100 kB "token" (GMS answers 431).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024
DEFAULT_MAX_CREDENTIAL_BYTES = 8 * 1024


MAX_JSON_DEPTH = 32


def json_depth(body: bytes) -> int:
    """The deepest `[` / `{` nesting in `body`, outside strings (a scan, not a parse)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _error_bytes(code: str, message: str) -> bytes:
    return json.dumps({"status": "failed", "error": code, "message": message}).encode()


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = _error_bytes(code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _valid_utf8_target(scope: Scope) -> bool:
    """The percent-decoded path and query string are UTF-8 (no lone surrogate either:
    Python's strict decoder refuses an encoded surrogate such as %ED%A0%80)."""
    raw_path = scope.get("raw_path") or b""
    query = (scope.get("query_string") or b"").replace(b"+", b" ")
    try:
        unquote_to_bytes(bytes(raw_path)).decode("utf-8")
        unquote_to_bytes(bytes(query)).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RequestLimits:
    """ASGI middleware: 413 for a body over `max_body_bytes` (declared or streamed), 431 for
    an Authorization or Cookie header over `max_credential_bytes`."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_credential_bytes: int = DEFAULT_MAX_CREDENTIAL_BYTES,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_credential = max_credential_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _valid_utf8_target(scope):
            # Starlette would decode the bytes with U+FFFD for what is not UTF-8, and a URN
            # with U+FFFD is a valid, absent dataset: refuse it as the same bytes in a body are.
            await _answer(
                send, 400, "invalid_request", "the URL is not valid UTF-8 once percent-decoded"
            )
            return
        declared: int | None = None
        for name, value in scope.get("headers", ()):
            if name in (b"authorization", b"cookie") and len(value) > self.max_credential:
                await _answer(
                    send,
                    431,
                    "header_too_large",
                    f"the {name.decode()} header is longer than {self.max_credential} bytes",
                )
                return
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _answer(send, 400, "invalid_request", "Content-Length is not a number")
                    return
        if declared is not None and declared > self.max_body:
            await self._too_large(send)
            return
        # Read the (small) body here, counting what actually arrives: a chunked body has no
        # Content-Length, and a declared length can be a lie.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if json_depth(body) > MAX_JSON_DEPTH:
            # Python's JSON parser recurses: thousands of `[` in 16 KiB would end in a
            # RecursionError (a 500) instead of a clear 400.
            await _answer(
                send, 400, "invalid_request", f"the JSON body nests deeper than {MAX_JSON_DEPTH}"
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await _answer(
            send, 413, "body_too_large", f"the request body is larger than {self.max_body} bytes"
        )


class RateLimiter:
    """At most `limit` run starts per caller in any `window_seconds` (a sliding window, held
    in memory: one api replica's count; several replicas each allow `limit`)."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._starts: dict[str, deque[float]] = {}

    def check(self, key: str) -> int | None:
        """None when `key` may start another run now, else the seconds to wait (for
        `Retry-After`, rounded up, at least 1). Counts nothing: see `reserve`, which checks and
        counts in one step (the api uses that: a check then a record races)."""
        if self.limit <= 0:
            return None
        now = self._clock()
        with self._lock:
            starts = self._starts.get(key)
            if starts is None:
                return None
            while starts and starts[0] <= now - self.window:
                starts.popleft()
            if len(starts) >= self.limit:
                return max(1, math.ceil(starts[0] + self.window - now))
            return None

    def reserve(self, key: str) -> tuple[tuple[str, float] | None, int | None]:
        """Check and count in one step, under the lock: `(slot, None)` when `key` may start a
        run (the slot is already counted: hand it back with `release` if no run is written),
        `(None, wait)` when not. Two concurrent callers can never both take the last slot."""
        if self.limit <= 0:
            return None, None
        now = self._clock()
        with self._lock:
            starts = self._starts.setdefault(key, deque())
            while starts and starts[0] <= now - self.window:
                starts.popleft()
            if len(starts) >= self.limit:
                return None, max(1, math.ceil(starts[0] + self.window - now))
            starts.append(now)
            self._forget_idle(now)
            return (key, now), None

    def release(self, slot: tuple[str, float]) -> None:
        """Hand back a reserved slot whose request started nothing (a 404, a 503...)."""
        key, at = slot
        with self._lock:
            starts = self._starts.get(key)
            if starts is not None and at in starts:  # else already out of the window
                starts.remove(at)

    def _forget_idle(self, now: float) -> None:
        # Forget idle callers so the table does not grow with every user ever seen.
        if len(self._starts) > 10_000:
            idle = [k for k, v in self._starts.items() if not v or v[-1] <= now - self.window]
            for other in idle:
                del self._starts[other]

    def record(self, key: str) -> None:
        """Count one run started by `key` (only written runs count: a 404 starts nothing)."""
        if self.limit <= 0:
            return
        now = self._clock()
        with self._lock:
            self._starts.setdefault(key, deque()).append(now)
            self._forget_idle(now)
