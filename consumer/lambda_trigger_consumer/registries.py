"""Which schema registry the consumer reads MCL schemas from, as DataHub's SCHEMA_REGISTRY_TYPE
says, and how the dependency monitor names and probes it.

- INTERNAL (GMS's `/schema-registry/api/`, the quickstart's) and KAFKA (any Confluent-compatible
  registry: Confluent Platform or Cloud, Karapace, Apicurio's ccompat API): Confluent framing,
  `decode.SchemaRegistry`, with basic auth or a bearer token (lambda_trigger.registry_auth);
- AWS_GLUE: Glue framing and `glue:GetSchemaVersion` (glue_registry.py), with the consumer's
  AWS credentials, in AWS_GLUE_SCHEMA_REGISTRY_REGION or else the consumer's region, at
  AWS_ENDPOINT_URL_GLUE / AWS_ENDPOINT_URL when set (boto3 reads those itself).

Nothing here puts a credential into a string: the URL is the clean one settings.py left, the
hint names settings, and the probes' reasons come from status codes and OS errors.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import httpx
from botocore.config import Config

from lambda_trigger.registry_auth import (
    BEARER_TOKEN,
    USER_INFO,
    RegistryAuth,
    resolve_registry_auth,
)
from lambda_trigger.settings import ConsumerSettings
from lambda_trigger_consumer.aws_session import new_session
from lambda_trigger_consumer.decode import Registry, SchemaRegistry
from lambda_trigger_consumer.glue_registry import GlueSchemaRegistry


@dataclass(frozen=True)
class RegistrySetup:
    registry: Registry
    address: str  # for dependency lines and /readyz: never with credentials
    hint: str  # what to check when it is down


class _Bearer(httpx.Auth):
    """`Authorization: Bearer <token>`, as Confluent's `bearer.auth.credentials.source=STATIC_TOKEN`."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_Bearer(<hidden>)"


def _httpx_auth(auth: RegistryAuth | None) -> httpx.Auth | None:
    if auth is None:
        return None
    if auth.kind == "bearer":
        return _Bearer(auth.secret)
    return httpx.BasicAuth(auth.username, auth.password)


def _confluent_hint(settings: ConsumerSettings, auth: RegistryAuth | None) -> str:
    where = (
        "DataHub's INTERNAL registry is <gms>/schema-registry/api/"
        if settings.schema_registry_type == "INTERNAL"
        else "a Confluent-compatible registry's base URL"
    )
    credentials = (
        f"the credentials in {auth.setting}"
        if auth is not None
        else f"{USER_INFO} / {BEARER_TOKEN} if it needs credentials"
    )
    return (
        f"check SCHEMA_REGISTRY_URL ({where}), SCHEMA_REGISTRY_TYPE "
        f"({settings.schema_registry_type}), {credentials}, and that it answers"
    )


GLUE_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 2, "mode": "standard"}
)
GLUE_HINT = (
    "check SCHEMA_REGISTRY_TYPE (AWS_GLUE), AWS_GLUE_SCHEMA_REGISTRY_REGION or the AWS region, "
    "AWS_ENDPOINT_URL if set, and that the consumer's IAM role has glue:GetSchemaVersion "
    "(datahub-lambda-trigger iam-policy)"
)


def build_registry(settings: ConsumerSettings, region: str | None) -> RegistrySetup:
    """Raises lambda_trigger.registry_auth.RegistryAuthError for unusable credentials."""
    if settings.schema_registry_type == "AWS_GLUE":
        glue = new_session().client(
            "glue",
            region_name=settings.glue_registry_region or region or "us-east-1",
            # A schema is fetched on the poll loop: a Glue outage must cost seconds (the
            # record then waits, partition blocked), never botocore's 60 s timeouts times
            # its retries, which would outlast the liveness probe's 60 s loop age.
            config=GLUE_CLIENT_CONFIG,
        )
        return RegistrySetup(
            GlueSchemaRegistry(glue), f"AWS Glue at {glue.meta.endpoint_url}", GLUE_HINT
        )
    auth = resolve_registry_auth(
        user_info=_secret(settings.schema_registry_user_info),
        user_info_file=settings.schema_registry_user_info_file,
        bearer_token=_secret(settings.schema_registry_bearer_token),
        bearer_token_file=settings.schema_registry_bearer_token_file,
        url_user_info=settings.schema_registry_url_user_info,
    )
    registry = SchemaRegistry(
        settings.schema_registry_url,
        auth=_httpx_auth(auth),
        auth_setting=auth.setting if auth is not None else None,
    )
    return RegistrySetup(registry, settings.schema_registry_url, _confluent_hint(settings, auth))


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return str(get()) if callable(get) else None
