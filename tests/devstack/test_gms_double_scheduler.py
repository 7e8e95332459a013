"""The GMS double's ingestion scheduler clock: which minutes a source's cron fires on."""

from __future__ import annotations

from datetime import datetime

import pytest

from devstack.gms_double.scheduler import cron_matches


@pytest.mark.parametrize(
    ("cron", "at", "fires"),
    [
        ("30 2 * * *", datetime(2026, 1, 15, 2, 30), True),
        ("30 2 * * *", datetime(2026, 1, 15, 2, 31), False),
        ("*/15 * * * *", datetime(2026, 1, 15, 9, 45), True),
        ("*/15 * * * *", datetime(2026, 1, 15, 9, 50), False),
        ("0 9-17 * * 1-5", datetime(2026, 11, 30, 12, 0), True),  # a Monday
        ("0 9-17 * * 1-5", datetime(2026, 11, 29, 12, 0), False),  # a Sunday
        ("0 0 * * 0", datetime(2026, 11, 29, 0, 0), True),  # Sunday as 0
        ("0 0 * * 7", datetime(2026, 11, 29, 0, 0), True),  # ... and as 7
        ("0 0 1,15 * *", datetime(2026, 11, 15, 0, 0), True),
        ("0 0 1 1 *", datetime(2026, 2, 1, 0, 0), False),
    ],
)
def test_cron_matches(cron: str, at: datetime, fires: bool) -> None:
    assert cron_matches(cron, at) is fires
