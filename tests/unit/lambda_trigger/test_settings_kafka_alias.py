"""KAFKA_BOOTSTRAP_SERVER (DataHub's name) and KAFKA_BOOTSTRAP_SERVERS (ours) both set the broker."""

from __future__ import annotations

import pytest

from lambda_trigger.settings import ConsumerSettings

PLURAL, SINGULAR = "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVER"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLURAL, raising=False)
    monkeypatch.delenv(SINGULAR, raising=False)


def test_default_without_either() -> None:
    assert ConsumerSettings().bootstrap_servers == "localhost:9092"


def test_datahub_singular_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SINGULAR, "broker:29092")
    assert ConsumerSettings().bootstrap_servers == "broker:29092"


def test_plural_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLURAL, "b1:9092,b2:9092")
    assert ConsumerSettings().bootstrap_servers == "b1:9092,b2:9092"


def test_plural_wins_when_both_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod sharing DataHub's environment can still point this consumer elsewhere."""
    monkeypatch.setenv(SINGULAR, "datahub-kafka:9092")
    monkeypatch.setenv(PLURAL, "other-kafka:9092")
    assert ConsumerSettings().bootstrap_servers == "other-kafka:9092"


def test_python_name_still_works() -> None:
    # populate_by_name: code (tests, devstack) builds settings by field name.
    assert ConsumerSettings(bootstrap_servers="x:1").bootstrap_servers == "x:1"
