"""A run's AWS call made once at start-up without leaving the process (issue 25).

botocore does much of its work for an operation on that operation's first call on a client:
it builds the operation model and its input and output shapes, looks up (and caches) the
event handlers of every `*.lambda.Invoke` event, resolves the endpoint for it, and builds the
parser's view of the response. Measured against moto, the first `Invoke` after
GetFunctionConfiguration cost 2.2-2.3 ms of CPU against 1.3-1.6 for the next ones, on the
first run's path to Lambda. A warm-up cannot make the real call (it would run the function;
`InvocationType=DryRun` is a real Invoke that AWS logs as one, and moto/devstack record it as
an invocation), so it makes it here with the HTTP send replaced: a `before-send` handler
answers with a canned response, only on the rehearsing thread. Everything up to the wire and
back (validation, serialisation, endpoint, signing, parsing) runs; nothing reaches AWS, and
the call counters (aws_calls.py) skip it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

_HANDLER_ID = "lambda-trigger-rehearsal"
_local = threading.local()


def rehearsing() -> bool:
    """Is this thread making a rehearsed call (one that never left the process)?"""
    return getattr(_local, "answer", None) is not None


def _short_circuit(request: Any, **_: Any) -> AWSResponse | None:
    answer: tuple[int, bytes] | None = getattr(_local, "answer", None)
    if answer is None:
        return None  # every other call, on every other thread: sent as usual
    status, body = answer
    return AWSResponse(request.url, status, HTTPHeaders(), _Raw(body))


class _Raw:
    """What AWSResponse reads its body from (urllib3's response, in a real call)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self._body


@contextmanager
def _answering(status: int, body: bytes) -> Iterator[None]:
    _local.answer = (status, body)
    try:
        yield
    finally:
        _local.answer = None


def rehearse(client: Any, operation: str, status: int, body: bytes, **params: Any) -> None:
    """Call `operation` (its Python name, e.g. "invoke") on `client` with `params`; the
    request is built and signed, the answer is `status` and `body`. Raises what the call
    raises (a parameter botocore refuses, or an answer the parser cannot read)."""
    events = client.meta.events
    # unique_id: registering again is a no-op, so a client is never given two handlers.
    events.register_first("before-send", _short_circuit, unique_id=_HANDLER_ID)
    with _answering(status, body):
        getattr(client, operation)(**params)
