"""Reading a run: its requester, or a holder of the run privilege; anyone else 403."""

from __future__ import annotations

import pytest

from .conftest import SIP, Env, bearer, make_api

pytestmark = pytest.mark.integration


def test_another_user_cannot_read_my_run(env: Env) -> None:
    env.gms.add_token(f"carol-{env.executor_id}", "urn:li:corpuser:carol", "carol", True)
    with make_api(env) as api:
        started = api.post(
            "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer(env.users["alice"])
        )
        assert started.status_code == 202, started.text
        path = f"/api/ingestion/runs/{started.json()['runId']}"
        other = api.get(path, headers=bearer(env.users["bob"]))  # signed in, no privilege
        mine = api.get(path, headers=bearer(env.users["alice"]))
        admin = api.get(path, headers=bearer(f"carol-{env.executor_id}"))
    assert other.status_code == 403, other.text
    assert other.json()["error"] == "forbidden"
    assert "urn:li:corpuser:alice" not in other.text and SIP not in other.text
    assert mine.status_code == 200 and mine.json()["requestedBy"] == "urn:li:corpuser:alice"
    assert admin.status_code == 200
