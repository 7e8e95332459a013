"""Run ids: unique, sortable by time, safe in a URL path segment and in a URN."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case: no URL or URN escaping
RUN_ID_RE = re.compile(r"lt-\d{8}T\d{9}Z-[a-z2-7]{10}")

# The id of any execution request a user may look up, whoever wrote it (the api's `lt-` ids, the
# README's `airflow-<uuid>`, DataHub's own UI runs, which use a bare UUID). Strict but general:
# RFC 3986 unreserved characters only, so the id is one URL path segment and one URN key part
# without escaping (no `/`, `%`, `:`, `,`, parentheses, whitespace or control characters), and
# at most READABLE_RUN_ID_MAX characters; "." and ".." are excluded, since as a path segment
# they are dot-segments that clients and proxies remove (RFC 3986 section 5.2.4).
READABLE_RUN_ID_MAX = 200
READABLE_RUN_ID_RE = re.compile(rf"[A-Za-z0-9._~-]{{1,{READABLE_RUN_ID_MAX}}}")


def new_run_id(now: datetime | None = None) -> str:
    """`lt-<UTC yyyymmddTHHMMSSfffZ>-<10 random base32 chars>`.

    The timestamp prefix makes ids sort by creation time; 50 random bits make a collision
    within the same millisecond negligible (the GMS write would not detect one).
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"lt-{stamp}-{suffix}"


def is_run_id(value: str) -> bool:
    """Whether `value` is an id of the api's own format (what `new_run_id` makes)."""
    return RUN_ID_RE.fullmatch(value) is not None


def is_readable_run_id(value: str) -> bool:
    """Whether `value` may name an execution request to read (any writer's id; see
    READABLE_RUN_ID_RE). `fullmatch`, so a trailing newline or any other extra character
    fails."""
    return READABLE_RUN_ID_RE.fullmatch(value) is not None and value not in (".", "..")
