"""One user cannot start runs without bound."""

from __future__ import annotations

import pytest

from .conftest import SIP, Env, bearer, make_api

pytestmark = pytest.mark.integration


def test_starting_runs_is_rate_limited_per_user(env: Env) -> None:
    env.gms.add_token(f"carol-{env.executor_id}", "urn:li:corpuser:carol", "carol", True)
    with make_api(env, rate_limit_runs=2, rate_limit_window_seconds=3600) as api:
        statuses = [
            api.post(
                "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
            )
            for _ in range(3)
        ]
        other_user = api.post(
            "/api/ingestion/run",
            json={"datasetUrn": SIP},
            headers=bearer(f"carol-{env.executor_id}"),
        )
    assert [r.status_code for r in statuses] == [202, 202, 429]
    limited = statuses[2]
    assert limited.json()["error"] == "rate_limited" and limited.json()["status"] == "failed"
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert other_user.status_code == 202
