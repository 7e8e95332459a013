"""Replication of the topics the consumer creates: min(3, brokers) unless set, and one line when
the setting asks for more replicas than the cluster has brokers."""

from __future__ import annotations

import pytest

from lambda_trigger.settings import ConsumerSettings
from lambda_trigger_consumer.topics import TopicSetupError, replication_for


@pytest.mark.parametrize(("brokers", "expected"), [(1, 1), (2, 2), (3, 3), (6, 3)])
def test_unset_is_min_3_and_the_broker_count(brokers: int, expected: int) -> None:
    assert replication_for(None, brokers, "kafka:9092", ["runs"]) == expected


@pytest.mark.parametrize(("requested", "brokers"), [(1, 1), (2, 3), (3, 3), (5, 6)])
def test_a_setting_the_cluster_can_meet_is_used(requested: int, brokers: int) -> None:
    assert replication_for(requested, brokers, "kafka:9092", ["runs"]) == requested


def test_more_replicas_than_brokers_is_one_line_naming_the_setting() -> None:
    with pytest.raises(TopicSetupError) as raised:
        replication_for(3, 2, "b-1:9098,b-2:9098", ["runs", "dlq"])
    assert str(raised.value) == (
        "LAMBDA_TRIGGER_TOPIC_REPLICATION=3 but the Kafka cluster at b-1:9098,b-2:9098 has 2 "
        "brokers: a topic cannot have more replicas than brokers, so 'runs', 'dlq' cannot be "
        "created. Set LAMBDA_TRIGGER_TOPIC_REPLICATION to 2 or less, or unset it "
        "(default: min(3, brokers))"
    )


def test_settings_leave_replication_unset_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TRIGGER_TOPIC_REPLICATION", raising=False)
    monkeypatch.delenv("LAMBDA_TRIGGER_CREATE_TOPICS", raising=False)
    settings = ConsumerSettings()
    assert settings.topic_replication is None and settings.create_topics is True
    monkeypatch.setenv("LAMBDA_TRIGGER_TOPIC_REPLICATION", "2")
    monkeypatch.setenv("LAMBDA_TRIGGER_CREATE_TOPICS", "false")
    settings = ConsumerSettings()
    assert settings.topic_replication == 2 and settings.create_topics is False
