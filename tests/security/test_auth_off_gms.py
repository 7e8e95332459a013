"""A GMS running without authentication (DataHub's quickstart) accepts any bearer token."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from .conftest import SIP, Env, bearer, make_api

pytestmark = pytest.mark.integration


@pytest.fixture
def auth_off(env: Env) -> Iterator[None]:
    env.gms.credentials.auth_enabled = False  # METADATA_SERVICE_AUTH_ENABLED=false
    try:
        yield
    finally:
        env.gms.credentials.auth_enabled = True


def test_the_double_models_auth_off_like_gms(env: Env, auth_off: None) -> None:
    """NoOpAuthenticator: any token (or none) is the system actor with every privilege."""
    import httpx

    answer = httpx.post(
        f"{env.gms.url}/api/graphql",
        json={"query": "{ me { corpUser { urn } platformPrivileges { manageIngestion } } }"},
        headers=bearer("made-up"),
    )
    assert answer.status_code == 200
    me = answer.json()["data"]["me"]
    assert me["corpUser"]["urn"] == "urn:li:corpuser:__datahub_system"
    assert me["platformPrivileges"]["manageIngestion"] is True


def test_a_bogus_bearer_is_refused_when_gms_authentication_is_off(
    env: Env, auth_off: None, caplog: pytest.LogCaptureFixture
) -> None:
    session = f"PLAY_SESSION=alice-{uuid.uuid4().hex}"
    env.gms.add_session_cookie(session, "urn:li:corpuser:alice", "alice", manage_ingestion=True)
    caplog.set_level(logging.WARNING, logger="lambda_trigger_api")
    with make_api(env) as api:
        for _ in range(2):
            refused = api.post(
                "/api/ingestion/run", json={"datasetUrn": SIP}, headers=bearer("made-up")
            )
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"] == "unauthenticated"
        # Logged on every refused call, with the reason.
        assert caplog.text.count("GMS authentication is off") == 2
        targets = api.get("/api/ingestion/targets", params={"datasetUrn": SIP}, headers=bearer("x"))
        assert targets.status_code == 401
        # The Cookie path (datahub-frontend identifies the session) still works.
        # (A browser sends its page's Origin: the same-origin check, docs/security-api.md.)
        accepted = api.post(
            "/api/ingestion/run",
            json={"datasetUrn": SIP},
            headers={"Cookie": session, "Origin": "http://testserver"},
        )
    assert accepted.status_code == 202, accepted.text


def test_bearer_callers_are_accepted_when_gms_checks_tokens(env: Env) -> None:
    with make_api(env) as api:
        answer = api.get(
            "/api/ingestion/targets",
            params={"datasetUrn": SIP},
            headers=bearer(env.users["alice"]),
        )
    assert answer.status_code == 200, answer.text
