"""The consumer's librdkafka defaults: present unless the user's LAMBDA_TRIGGER_KAFKA_CONFIG
says otherwise, and valid librdkafka consumer properties."""

from __future__ import annotations

from confluent_kafka import Consumer

from lambda_trigger_consumer.kafka_defaults import CONSUMER_DEFAULTS, consumer_config


def test_the_users_setting_wins_over_a_default() -> None:
    base = {"bootstrap.servers": "b:9092", "fetch.queue.backoff.ms": 500}
    config = consumer_config(base, {"fetch.queue.backoff.ms": 500})
    assert config["fetch.queue.backoff.ms"] == 500
    assert config["bootstrap.servers"] == "b:9092"
    assert config["queued.max.messages.kbytes"] == CONSUMER_DEFAULTS["queued.max.messages.kbytes"]


def test_defaults_apply_without_overrides() -> None:
    config = consumer_config({"bootstrap.servers": "b:9092"}, {})
    for key, value in CONSUMER_DEFAULTS.items():
        assert config[key] == value


def test_librdkafka_accepts_them_for_a_consumer() -> None:
    # librdkafka refuses unknown or inconsistent properties when the client is created.
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:9", "group.id": "t", **CONSUMER_DEFAULTS})
    consumer.close()
