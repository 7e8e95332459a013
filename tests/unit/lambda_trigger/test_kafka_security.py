"""The shared Kafka security configuration: named settings, DataHub's names, the order in which
they win, and the MSK IAM token (signed locally by aws-msk-iam-sasl-signer, no network)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from lambda_trigger.kafka_security import (
    KafkaSecurityError,
    KafkaSecuritySettings,
    MskIamTokenProvider,
    UnsecuredTestTokenProvider,
    datahub_properties,
    kafka_client_config,
)

BOOT = "b-1.example:9096"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The named settings are read from the environment: start each test without any (an
    earlier integration test in the same session may have exported AWS_REGION)."""
    for name in list(os.environ):
        if name.startswith(("LAMBDA_TRIGGER_KAFKA_", "KAFKA_PROPERTIES_", "SPRING_KAFKA_")) or (
            name in ("AWS_REGION", "AWS_DEFAULT_REGION", "DATAHUB_INGESTION_LAMBDA_REGION")
        ):
            monkeypatch.delenv(name)


@pytest.fixture
def static_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123456")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret/example")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def config(env: dict[str, str] | None = None, json_config: str | None = None, **named: Any) -> Any:
    return kafka_client_config(
        BOOT,
        json_config,
        settings=KafkaSecuritySettings(**named),
        environ=env or {},
    )


def test_nothing_set_is_plaintext_with_only_the_bootstrap() -> None:
    result = config()
    assert result.properties == {"bootstrap.servers": BOOT}
    assert result.provider is None


def test_scram_from_named_settings() -> None:
    props = config(auth="scram-sha-512", sasl_username="u", sasl_password="p").properties
    assert props["security.protocol"] == "SASL_SSL"
    assert props["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (props["sasl.username"], props["sasl.password"]) == ("u", "p")


def test_password_file_is_read_and_never_described(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value\n")
    result = config(auth="plain", sasl_username="u", sasl_password_file=str(secret))
    assert result.properties["sasl.password"] == "s3cret-value"
    assert "s3cret" not in result.describe()
    assert "sasl.username=u" in result.describe()


def test_scram_without_password_names_the_settings() -> None:
    with pytest.raises(KafkaSecurityError, match="LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD"):
        config(auth="scram-sha-256", sasl_username="u")


def test_missing_ca_file_is_refused_at_start() -> None:
    with pytest.raises(KafkaSecurityError, match=r"ssl\.ca\.location=/nope.*tls-and-mtls"):
        config(security_protocol="SSL", ssl_ca_location="/nope")


def test_mtls_needs_certificate_and_key(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(KafkaSecurityError, match="SSL_KEY_LOCATION"):
        config(security_protocol="SSL", ssl_cert_location=str(cert))


def test_sasl_mechanism_with_a_non_sasl_protocol_is_refused() -> None:
    with pytest.raises(KafkaSecurityError, match=r"needs security\.protocol SASL_SSL"):
        config(auth="plain", security_protocol="SSL", sasl_username="u", sasl_password="p")


def test_datahub_python_mapping() -> None:
    env = {
        "KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_PROPERTIES_SASL_MECHANISM": "PLAIN",
        "KAFKA_PROPERTIES_SASL_USERNAME": "key",
        "KAFKA_PROPERTIES_SASL_PASSWORD": "secret",
        "KAFKA_PROPERTIES_OAUTH_CB": "m:f",
        "KAFKA_PROPERTIES_EMPTY": "",
        "OTHER": "x",
    }
    assert datahub_properties(env, "KAFKA_PROPERTIES_") == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "key",
        "sasl.password": "secret",
        "oauth_cb": "m:f",
    }


def test_spring_jaas_and_pem_truststore_are_translated(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {
        "SPRING_KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
        "SPRING_KAFKA_PROPERTIES_SASL_MECHANISM": "SCRAM-SHA-512",
        "SPRING_KAFKA_PROPERTIES_SASL_JAAS_CONFIG": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            "username='gms' password=\"pw;x\";"
        ),
        "SPRING_KAFKA_PROPERTIES_SSL_TRUSTSTORE_TYPE": "PEM",
        "SPRING_KAFKA_PROPERTIES_SSL_TRUSTSTORE_LOCATION": str(ca),
        "SPRING_KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO": "a:b",
    }
    props = config(env).properties
    assert props["sasl.username"] == "gms" and props["sasl.password"] == "pw;x"
    assert props["ssl.ca.location"] == str(ca)
    assert not any(k.startswith(("sasl.jaas", "ssl.truststore", "basic.auth")) for k in props)


def test_jks_truststore_is_dropped_with_a_pointer(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "SPRING_KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SSL",
        "SPRING_KAFKA_PROPERTIES_SSL_TRUSTSTORE_LOCATION": "/t.jks",
    }
    props = config(env).properties
    assert "ssl.truststore.location" not in props
    assert "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION" in caplog.text


def test_precedence_json_over_named_over_kafka_properties_over_spring() -> None:
    env = {
        "SPRING_KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SPRING_KAFKA_PROPERTIES_CLIENT_RACK": "spring-rack",
        "SPRING_KAFKA_PROPERTIES_SOCKET_TIMEOUT_MS": "1",
        "KAFKA_PROPERTIES_SOCKET_TIMEOUT_MS": "2",
        "KAFKA_PROPERTIES_SASL_USERNAME": "python-user",
        "KAFKA_PROPERTIES_SASL_PASSWORD": "python-pw",
        "KAFKA_PROPERTIES_SASL_MECHANISM": "PLAIN",
    }
    # each layer alone
    assert config(env).properties["security.protocol"] == "SASL_PLAINTEXT"
    assert config(env).properties["socket.timeout.ms"] == "2"
    assert config(env).sources["socket.timeout.ms"] == "KAFKA_PROPERTIES_*"
    assert config(env).properties["client.rack"] == "spring-rack"
    # named beats both DataHub layers
    named = config(env, auth="scram-sha-512", sasl_username="named-user")
    assert named.properties["sasl.mechanism"] == "SCRAM-SHA-512"
    assert named.properties["sasl.username"] == "named-user"
    assert named.properties["sasl.password"] == "python-pw"  # still from the lower layer
    assert named.sources["sasl.username"] == "LAMBDA_TRIGGER_KAFKA_*"
    # the JSON beats everything
    raw = json.dumps({"sasl.username": "json-user", "sasl.mechanisms": "SCRAM-SHA-256"})
    top = config(env, raw, auth="scram-sha-512", sasl_username="named-user")
    assert top.properties["sasl.username"] == "json-user"
    assert top.properties["sasl.mechanism"] == "SCRAM-SHA-256"
    assert "sasl.mechanisms" not in top.properties


def test_datahub_helm_msk_iam_env_means_msk_iam() -> None:
    # datahub-helm's datahub.kafka.iam.python.env: these three and AWS_REGION, nothing else.
    env = {
        "KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_PROPERTIES_SASL_MECHANISM": "OAUTHBEARER",
        "KAFKA_PROPERTIES_SASL_OAUTHBEARER_METHOD": "default",
    }
    result = config(env, msk_region="eu-west-1")
    assert isinstance(result.provider, MskIamTokenProvider)
    assert result.provider.region == "eu-west-1"
    assert callable(result.for_client("consumer")["oauth_cb"])


def test_datahub_msk_callback_name_means_msk_iam() -> None:
    env = {
        "KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_PROPERTIES_SASL_MECHANISM": "OAUTHBEARER",
        "KAFKA_PROPERTIES_OAUTH_CB": "datahub_actions.utils.kafka_msk_iam:oauth_cb",
    }
    assert isinstance(config(env, msk_region="us-east-1").provider, MskIamTokenProvider)


def test_java_aws_msk_iam_mechanism_means_msk_iam() -> None:
    env = {
        "SPRING_KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
        "SPRING_KAFKA_PROPERTIES_SASL_MECHANISM": "AWS_MSK_IAM",
        "SPRING_KAFKA_PROPERTIES_SASL_JAAS_CONFIG": (
            "software.amazon.msk.auth.iam.IAMLoginModule required;"
        ),
    }
    result = config(env, msk_region="us-east-1")
    assert result.properties["sasl.mechanism"] == "OAUTHBEARER"
    assert isinstance(result.provider, MskIamTokenProvider)


def test_a_higher_source_with_another_mechanism_drops_the_token_callback() -> None:
    env = {
        "KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_PROPERTIES_SASL_MECHANISM": "OAUTHBEARER",
    }
    result = config(env, auth="scram-sha-512", sasl_username="u", sasl_password="p")
    assert result.provider is None
    assert "oauth_cb" not in result.for_client("consumer")


def test_msk_iam_needs_a_region() -> None:
    with pytest.raises(KafkaSecurityError, match="LAMBDA_TRIGGER_KAFKA_MSK_REGION"):
        config(auth="msk-iam")


def test_msk_region_defaults_to_the_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    result = kafka_client_config(BOOT, environ={}, settings=KafkaSecuritySettings(auth="msk-iam"))
    assert isinstance(result.provider, MskIamTokenProvider)
    assert result.provider.region == "ap-southeast-2"


@pytest.mark.usefixtures("static_aws_credentials")
def test_msk_iam_token_is_a_presigned_connect_url() -> None:
    """The signer signs locally with static credentials: no AWS call is made."""
    result = config(auth="msk-iam", msk_region="eu-central-1")
    assert result.properties["security.protocol"] == "SASL_SSL"
    assert result.properties["sasl.mechanism"] == "OAUTHBEARER"
    oauth_cb = result.for_client("ledger")["oauth_cb"]
    before = time.time()
    token, expiry = oauth_cb(None)[:2]
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "https" and parts.hostname == "kafka.eu-central-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEKEY123456/")
    assert "/eu-central-1/kafka-cluster/aws4_request" in query["X-Amz-Credential"][0]
    assert query["X-Amz-Expires"] == ["900"]
    assert "X-Amz-Signature" in query
    # librdkafka wants the expiry in epoch seconds (the signer gives milliseconds) and
    # refreshes at 80 % of the lifetime, well before the 15 minutes run out.
    assert before + 800 < expiry < before + 1000
    assert isinstance(result.provider, MskIamTokenProvider)
    assert result.provider.calls == {"ledger": 1}


def test_unsecured_test_token_is_an_unsigned_jws_per_client() -> None:
    provider = UnsecuredTestTokenProvider("svc", per_client=True)
    result = kafka_client_config(
        BOOT,
        settings=KafkaSecuritySettings(auth="oauthbearer-unsecured-test"),
        environ={},
        provider=provider,
    )
    token, expiry, principal, _ext = result.for_client("admin")["oauth_cb"]("")
    header, claims, signature = token.split(".")
    assert signature == ""
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "none"}
    body = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert body["sub"] == principal == "svc-admin" and body["exp"] == int(expiry)
    assert provider.calls == {"admin": 1}


def test_msk_iam_without_credentials_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in (
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    oauth_cb = config(auth="msk-iam", msk_region="us-east-1").for_client("admin")["oauth_cb"]
    with pytest.raises(RuntimeError, match="no AWS credentials"):
        oauth_cb(None)
    assert "token for the admin client failed" in caplog.text
    assert "#token-refresh-failed" in caplog.text
    # librdkafka asks again every few seconds: one line a minute, not one per attempt.
    with pytest.raises(RuntimeError):
        oauth_cb(None)
    assert caplog.text.count("token for the admin client failed") == 1


@pytest.mark.usefixtures("static_aws_credentials")
@pytest.mark.parametrize("auth", ["msk-iam", "scram-sha-512", "oauthbearer-unsecured-test"])
def test_librdkafka_accepts_the_result_for_every_client_kind(auth: str) -> None:
    result = kafka_client_config(
        "127.0.0.1:9",
        settings=KafkaSecuritySettings(
            auth=auth, sasl_username="u", sasl_password="p", msk_region="us-east-1"
        ),
        environ={},
    )
    Producer(result.for_client("ledger")).flush(0)
    Consumer({**result.for_client("consumer"), "group.id": "g"}).close()
    AdminClient(result.for_client("admin"))
