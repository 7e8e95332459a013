"""Run ids: unique, sortable by time, safe in a URL path segment and in a URN."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case: no URL or URN escaping
RUN_ID_RE = re.compile(r"^lt-\d{8}T\d{9}Z-[a-z2-7]{10}$")


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
    return RUN_ID_RE.match(value) is not None
