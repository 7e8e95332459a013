"""Registry credentials: where they come from, what is sent, and that no message carries them."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from lambda_trigger import cli
from lambda_trigger.registry_auth import (
    RegistryAuthError,
    resolve_registry_auth,
    split_url_credentials,
)
from lambda_trigger.settings import ConsumerSettings
from lambda_trigger_consumer.decode import RegistryUnavailable, SchemaRegistry
from lambda_trigger_consumer.registries import build_registry

from .conftest import MCL_SCHEMA_PATH, SCHEMA_ID

PASSWORD = "s3cr3t-Pa55:word"
_REGISTRY_ENV = (
    "SCHEMA_REGISTRY_URL",
    "KAFKA_SCHEMAREGISTRY_URL",
    "SCHEMA_REGISTRY_TYPE",
    "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO",
    "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO_FILE",
    "LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN",
    "LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN_FILE",
    "KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO",
    "SPRING_KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO",
    "KAFKA_PROPERTIES_BEARER_AUTH_TOKEN",
    "SPRING_KAFKA_PROPERTIES_BEARER_AUTH_TOKEN",
    "AWS_GLUE_SCHEMA_REGISTRY_REGION",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _REGISTRY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("url", "clean", "user_info"),
    [
        ("https://reg.example.com/", "https://reg.example.com/", None),
        ("https://u:p@reg.example.com/api/", "https://reg.example.com/api/", "u:p"),
        ("https://key:a%2Fb%3Ac@reg:8081/x?y=1", "https://reg:8081/x?y=1", "key:a/b:c"),
        ("http://u:p@[::1]:8081/", "http://[::1]:8081/", "u:p"),
        ("http://onlyuser@reg/", "http://reg/", "onlyuser:"),
    ],
)
def test_credentials_come_out_of_the_url(url: str, clean: str, user_info: str | None) -> None:
    assert split_url_credentials(url) == (clean, user_info)


def test_settings_never_keep_credentials_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"https://sr-key:{PASSWORD}@psrc.example.com/")
    settings = ConsumerSettings()
    assert settings.schema_registry_url == "https://psrc.example.com/"
    assert settings.schema_registry_url_user_info == f"sr-key:{PASSWORD}"
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


def test_datahub_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SCHEMAREGISTRY_URL", "https://gms-style.example.com/")
    monkeypatch.setenv("SPRING_KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO", f"k:{PASSWORD}")
    monkeypatch.setenv("SCHEMA_REGISTRY_TYPE", "kafka")
    settings = ConsumerSettings()
    assert settings.schema_registry_url == "https://gms-style.example.com/"
    assert settings.schema_registry_type == "KAFKA"
    assert settings.schema_registry_user_info is not None
    assert settings.schema_registry_user_info.get_secret_value() == f"k:{PASSWORD}"
    # Ours wins over DataHub's when both are set (the first name in the AliasChoices).
    monkeypatch.setenv("LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO", "ours:pw")
    ours = ConsumerSettings().schema_registry_user_info
    assert ours is not None and ours.get_secret_value() == "ours:pw"


def test_setting_beats_url_and_file_is_read_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "user-info"
    secret.write_text(f"from-file:{PASSWORD}\n")
    auth = resolve_registry_auth(user_info_file=str(secret), url_user_info="url:pw")
    assert auth is not None and auth.kind == "basic"
    assert (auth.username, auth.password) == ("from-file", PASSWORD)
    assert "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO_FILE" in auth.setting
    assert PASSWORD not in repr(auth)
    from_url = resolve_registry_auth(url_user_info=f"url:{PASSWORD}")
    assert from_url is not None and from_url.setting == "the user info in SCHEMA_REGISTRY_URL"
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    bearer = resolve_registry_auth(bearer_token_file=str(token))
    assert bearer is not None and (bearer.kind, bearer.secret) == ("bearer", "tok-123")
    assert resolve_registry_auth() is None


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"user_info": PASSWORD.replace(":", "")}, "must be user:password"),
        ({"user_info": f"u:{PASSWORD}", "user_info_file": "/x"}, "not both"),
        ({"user_info": f"u:{PASSWORD}", "bearer_token": PASSWORD}, "keep one"),
        ({"bearer_token_file": "/nonexistent/token"}, "cannot read /nonexistent/token"),
    ],
)
def test_unusable_credentials_are_refused_naming_the_setting_not_the_secret(
    kwargs: dict[str, str], words: str
) -> None:
    with pytest.raises(RegistryAuthError) as caught:
        resolve_registry_auth(**kwargs)
    text = str(caught.value)
    assert words in text and "LAMBDA_TRIGGER_SCHEMA_REGISTRY_" in text
    assert PASSWORD.replace(":", "") not in text and PASSWORD not in text


def _registry_answering(
    authorization: str, **kwargs: object
) -> tuple[SchemaRegistry, list[str | None]]:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != authorization:
            return httpx.Response(401, json={"error_code": 401, "message": "Unauthorized"})
        if request.url.path == "/api/subjects":
            return httpx.Response(200, json=[])
        return httpx.Response(200, json={"schema": MCL_SCHEMA_PATH.read_text()})

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return SchemaRegistry("http://registry/api/", client=client, **kwargs), seen  # type: ignore[arg-type]


def test_basic_auth_is_sent_and_a_refusal_names_the_setting() -> None:
    good = "Basic " + base64.b64encode(f"k:{PASSWORD}".encode()).decode()
    registry, seen = _registry_answering(
        good, auth=httpx.BasicAuth("k", PASSWORD), auth_setting="LAMBDA_X"
    )
    assert registry.probe() is None
    registry.schema(SCHEMA_ID)
    assert seen == [good, good]

    wrong, _ = _registry_answering(
        good, auth=httpx.BasicAuth("k", "wrong-" + PASSWORD), auth_setting="LAMBDA_X"
    )
    reason = wrong.probe()
    assert reason == "registry refused the credentials (HTTP 401); check LAMBDA_X"
    with pytest.raises(RegistryUnavailable) as caught:  # the partition waits, nothing is lost
        wrong.schema(SCHEMA_ID)
    assert "check LAMBDA_X" in str(caught.value) and PASSWORD not in str(caught.value)

    anonymous, _ = _registry_answering(good)
    anonymous_reason = anonymous.probe()
    assert anonymous_reason is not None
    assert "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO" in anonymous_reason


def test_build_registry_moves_url_credentials_into_basic_auth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_TYPE", "KAFKA")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"https://k:{PASSWORD}@registry.example.com/")
    setup = build_registry(ConsumerSettings(), "us-east-1")
    assert setup.address == "https://registry.example.com/"
    assert "the user info in SCHEMA_REGISTRY_URL" in setup.hint
    assert PASSWORD not in setup.hint and PASSWORD not in setup.address
    assert isinstance(setup.registry, SchemaRegistry)
    setup.registry.close()


def test_build_registry_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN", PASSWORD)
    setup = build_registry(ConsumerSettings(), None)
    assert isinstance(setup.registry, SchemaRegistry)
    request = httpx.Request("GET", "http://registry/api/subjects")
    auth = setup.registry._client.auth
    assert auth is not None
    sent = next(auth.sync_auth_flow(request))
    assert sent.headers["Authorization"] == f"Bearer {PASSWORD}"
    assert PASSWORD not in repr(auth)
    setup.registry.close()


def test_build_registry_glue_names_region_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_TYPE", "AWS_GLUE")
    monkeypatch.setenv("AWS_GLUE_SCHEMA_REGISTRY_REGION", "eu-central-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_GLUE", raising=False)
    setup = build_registry(ConsumerSettings(), "us-east-1")
    assert setup.address == "AWS Glue at https://glue.eu-central-1.amazonaws.com"
    assert "glue:GetSchemaVersion" in setup.hint
    # Fetched on the poll loop: an outage must cost seconds, not botocore's 60 s x retries.
    config = setup.registry._glue.meta.config  # type: ignore[attr-defined]
    assert (config.connect_timeout, config.read_timeout) == (5, 10)
    assert config.retries["total_max_attempts"] == 2


def test_iam_policy_adds_glue_get_schema_version(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.setenv(
        "DATAHUB_INGESTION_LAMBDA_MAPPING",
        json.dumps(
            {
                "urn:li:dataset:(urn:li:dataPlatform:hive,x,PROD)": "arn:aws:lambda:us-east-1:123456789012:function:f"
            }
        ),
    )
    monkeypatch.delenv("DATAHUB_INGESTION_LAMBDA_MAPPING_FILE", raising=False)
    monkeypatch.delenv("LAMBDA_TRIGGER_COMPLETION_QUEUE_URL", raising=False)
    assert cli.main(["iam-policy"]) == 0
    assert "glue:" not in capsys.readouterr().out
    monkeypatch.setenv("SCHEMA_REGISTRY_TYPE", "AWS_GLUE")
    assert cli.main(["iam-policy"]) == 0
    statements = json.loads(capsys.readouterr().out)["Statement"]
    glue = [s for s in statements if any(a.startswith("glue:") for a in s["Action"])]
    assert glue == [
        {
            "Sid": "ReadGlueSchemaVersions",
            "Effect": "Allow",
            "Action": ["glue:GetSchemaVersion"],
            "Resource": ["*"],
        }
    ]


def test_unusable_credentials_stop_the_start_with_one_line(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    secret = tmp_path / "user-info"
    secret.write_text("no-colon-" + PASSWORD.replace(":", ""))
    env = {
        k: v for k, v in os.environ.items() if k not in _REGISTRY_ENV and not k.startswith("AWS_")
    }
    env.update(
        {
            "DATAHUB_INGESTION_LAMBDA_MAPPING": json.dumps(
                {"urn:li:dataset:(urn:li:dataPlatform:hive,x,PROD)": "fn"}
            ),
            "AWS_REGION": "us-east-1",
            "SCHEMA_REGISTRY_TYPE": "KAFKA",
            "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO_FILE": str(secret),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "lambda_trigger_consumer"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "not starting" in lines[0]
    assert (
        f"LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO_FILE ({secret}) must be user:password"
        in lines[0]
    )
    assert PASSWORD.replace(":", "") not in output
