"""Kafka connection security for every confluent_kafka client the services build.

The consumer, its producers (run ledger, dead letters) and its AdminClient all take their
librdkafka configuration from `kafka_client_config()`, so TLS, SASL and MSK IAM are set once and
are the same for every client. Four sources are read, the first one that sets a property wins
(docs/kafka-and-registries.md#precedence):

1. `LAMBDA_TRIGGER_KAFKA_CONFIG` (JSON of raw librdkafka properties): the escape hatch for one
   exact property, so it must beat everything else;
2. the named `LAMBDA_TRIGGER_KAFKA_*` settings (this service's own, `KafkaSecuritySettings`);
3. `KAFKA_PROPERTIES_*`: what DataHub's Python containers (datahub-actions, the executor) read,
   mapped the way DataHub maps them (drop the prefix, lower-case, `_` -> `.`; `OAUTH_CB` stays
   `oauth_cb`), so a pod sharing datahub-actions' environment connects as it does;
4. `SPRING_KAFKA_PROPERTIES_*`: GMS's Java client names, translated where librdkafka has an
   equivalent (JAAS username/password, `AWS_MSK_IAM`, PEM trust stores) and dropped, with a
   warning, where it has none (JKS stores): last, because the translation is the least exact.

`oauth_cb` callbacks are wrapped per client (`for_client`) so a token provider knows which
client asks (tests count them) and so one client's failure to get a token is named.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

DOCS = "docs/kafka-and-registries.md"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
# `oauthbearer-unsecured-test` signs nothing: it is for a broker's unsecured OAUTHBEARER
# validator (the local stack's tests), never for a real cluster.
KafkaAuth = Literal[
    "none", "msk-iam", "scram-sha-256", "scram-sha-512", "plain", "oauthbearer-unsecured-test"
]
_MECHANISM: dict[str, str] = {
    "scram-sha-256": "SCRAM-SHA-256",
    "scram-sha-512": "SCRAM-SHA-512",
    "plain": "PLAIN",
    "msk-iam": "OAUTHBEARER",
    "oauthbearer-unsecured-test": "OAUTHBEARER",
}
# oauth_cb values DataHub's Python containers name for MSK IAM (datahub-actions' and the
# executor's copies): read as "use MSK IAM", since their modules are not installed here.
_DATAHUB_MSK_CALLBACKS = {
    "datahub_actions.utils.kafka_msk_iam:oauth_cb",
    "datahub_executor.common.kafka_msk_iam:oauth_cb",
    "datahub_executor.kafka_msk_iam:oauth_cb",
}


class KafkaSecuritySettings(BaseSettings):
    """The named settings (the Helm chart renders exactly these names)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    security_protocol: SecurityProtocol | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL"
    )
    auth: KafkaAuth | None = Field(None, validation_alias="LAMBDA_TRIGGER_KAFKA_AUTH")
    sasl_username: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_KAFKA_SASL_USERNAME")
    sasl_password: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD")
    # A mounted Secret: read at start, so the password is never in the pod spec.
    sasl_password_file: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD_FILE"
    )
    ssl_ca_location: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION"
    )
    ssl_cert_location: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION"
    )
    ssl_key_location: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_KAFKA_SSL_KEY_LOCATION"
    )
    ssl_key_password: str | None = Field(
        None, validation_alias="LAMBDA_TRIGGER_KAFKA_SSL_KEY_PASSWORD"
    )
    msk_region: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "LAMBDA_TRIGGER_KAFKA_MSK_REGION",
            "DATAHUB_INGESTION_LAMBDA_REGION",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
        ),
    )


class KafkaSecurityError(ValueError):
    """A setting that cannot work; the message names it and the docs section."""


# --- token providers -------------------------------------------------------------------------

OAuthResult = tuple[str, float] | tuple[str, float, str, dict[str, str]]


class TokenProvider(Protocol):
    """Gives a SASL/OAUTHBEARER token to the named client: (token, expiry in epoch seconds)
    or (token, expiry, principal, extensions), as confluent-kafka's `oauth_cb` returns."""

    def token(self, client: str, oauthbearer_config: str | None) -> OAuthResult: ...


@dataclass
class MskIamTokenProvider:
    """MSK IAM: a SigV4-presigned `kafka-cluster:Connect` URL from aws-msk-iam-sasl-signer,
    signed with botocore's default credential chain (IRSA's web identity token, the instance
    role, AWS_* variables), the same chain boto3 uses for Lambda. The signer's expiry is
    15 minutes after signing; librdkafka asks again at 80 % of that, before it runs out."""

    region: str
    calls: dict[str, int] = field(default_factory=dict)

    def token(self, client: str, oauthbearer_config: str | None) -> OAuthResult:
        # Imported here: only the consumer image carries the signer (and boto3).
        import botocore.session
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        self.calls[client] = self.calls.get(client, 0) + 1
        # The signer fails with "'NoneType' object has no attribute 'access_key'" when the
        # chain finds nothing: say what is missing instead.
        if botocore.session.Session().get_credentials() is None:
            raise RuntimeError(
                "no AWS credentials found (IRSA web identity token, EKS Pod Identity, instance "
                "role or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            )
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(self.region)
        return token, expiry_ms / 1000.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class UnsecuredTestTokenProvider:
    """An unsigned JWS (`alg: none`) as Kafka's OAuthBearerUnsecuredValidatorCallbackHandler
    accepts it: for the local stack's OAUTHBEARER listener, where an MSK token cannot be
    checked. `principal` is the `sub` claim (the broker's principal for this client); with
    `per_client`, each client authenticates as `<principal>-<client>`."""

    principal: str = "lambda-trigger"
    lifetime_seconds: float = 3600.0
    per_client: bool = False
    calls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def token(self, client: str, oauthbearer_config: str | None) -> OAuthResult:
        with self._lock:
            self.calls[client] = self.calls.get(client, 0) + 1
        now = time.time()
        expiry = now + self.lifetime_seconds
        sub = f"{self.principal}-{client}" if self.per_client else self.principal
        header = _b64url(json.dumps({"alg": "none"}).encode())
        claims = _b64url(json.dumps({"sub": sub, "iat": int(now), "exp": int(expiry)}).encode())
        return f"{header}.{claims}.", expiry, sub, {}


@dataclass
class _ImportedCallback:
    """A `module:function` oauth_cb named in KAFKA_PROPERTIES_OAUTH_CB, as DataHub resolves it."""

    function: Callable[[str | None], OAuthResult]

    def token(self, client: str, oauthbearer_config: str | None) -> OAuthResult:
        return self.function(oauthbearer_config)


def _import_callback(reference: str) -> TokenProvider:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise KafkaSecurityError(
            f"KAFKA_PROPERTIES_OAUTH_CB={reference!r} is not <module>:<function>; "
            f"see {DOCS}#precedence"
        )
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise KafkaSecurityError(
            f"KAFKA_PROPERTIES_OAUTH_CB={reference!r} cannot be imported ({exc}); for MSK IAM set "
            f"LAMBDA_TRIGGER_KAFKA_AUTH=msk-iam instead, see {DOCS}#msk-iam"
        ) from exc
    return _ImportedCallback(function)


def for_client(config: Mapping[str, Any], client: str) -> dict[str, Any]:
    """`config` for one named client (consumer, ledger, dead-letter, admin, ...): a token
    provider in it becomes that client's own `oauth_cb`. Other settings are copied as they are."""
    out = dict(config)
    provider: TokenProvider | None = out.pop(_PROVIDER_KEY, None)
    if provider is not None:
        last_logged = [-_TOKEN_LOG_SECONDS]

        def oauth_cb(oauthbearer_config: str | None) -> OAuthResult:
            try:
                return provider.token(client, oauthbearer_config)
            except Exception as exc:
                # librdkafka only says "token refresh failed": say which client and why, once
                # a minute (librdkafka asks again every few seconds while it has no token).
                now = time.monotonic()
                if now - last_logged[0] < _TOKEN_LOG_SECONDS:
                    raise
                last_logged[0] = now
                log.error(
                    "Kafka OAUTHBEARER token for the %s client failed: %s: %s; check the AWS "
                    "credentials and LAMBDA_TRIGGER_KAFKA_MSK_REGION, see %s#token-refresh-failed",
                    client,
                    type(exc).__name__,
                    exc,
                    DOCS,
                )
                raise

        out["oauth_cb"] = oauth_cb
    return out


_TOKEN_LOG_SECONDS = 60.0

# Held in the shared dict until `for_client` turns it into a per-client oauth_cb; librdkafka
# never sees this key (every client is built through for_client).
_PROVIDER_KEY = "_lambda_trigger_token_provider"


# --- DataHub's names -------------------------------------------------------------------------

# Java-client properties that librdkafka does not know: passing them would stop the client
# from starting ("No such configuration property"). Translated below where possible.
_JAVA_ONLY_PREFIXES = (
    "sasl.jaas.",
    "sasl.client.callback.",
    "sasl.login.",
    "ssl.truststore.",
    "ssl.keystore.",
    "basic.auth.",
    "schema.registry.",
    "specific.avro.",
    "value.subject.",
    "key.subject.",
)
_JAAS_OPTION = re.compile(r"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;]+))""")


def datahub_properties(environ: Mapping[str, str], prefix: str) -> dict[str, str]:
    """`<prefix>SECURITY_PROTOCOL=SASL_SSL` -> `security.protocol`, as DataHub maps them
    (datahub-actions: drop the prefix, lower-case, `_` -> `.`, empty values ignored)."""
    out: dict[str, str] = {}
    for name, value in environ.items():
        if name.upper().startswith(prefix) and value:
            key = name[len(prefix) :]
            out["oauth_cb" if key.upper() == "OAUTH_CB" else key.lower().replace("_", ".")] = value
    return out


def _translate_java(props: dict[str, str], source: str) -> dict[str, Any]:
    """Java/Spring client properties -> librdkafka's, where there is an equivalent."""
    out: dict[str, Any] = {}
    mechanism = props.get("sasl.mechanism", "").upper()
    if mechanism == "AWS_MSK_IAM":
        out["auth"] = "msk-iam"  # the Java IAMLoginModule: librdkafka does it with OAUTHBEARER
    jaas = props.get("sasl.jaas.config", "")
    if "ScramLoginModule" in jaas or "PlainLoginModule" in jaas:
        options = {
            m.group(1): m.group(2) or m.group(3) or m.group(4) for m in _JAAS_OPTION.finditer(jaas)
        }
        if options.get("username"):
            out["sasl.username"] = options["username"]
        if options.get("password"):
            out["sasl.password"] = options["password"]
    if props.get("ssl.truststore.type", "").upper() == "PEM" and props.get(
        "ssl.truststore.location"
    ):
        out["ssl.ca.location"] = props["ssl.truststore.location"]
    for key, value in props.items():
        if key.startswith(_JAVA_ONLY_PREFIXES):
            continue
        if key == "sasl.mechanism" and mechanism == "AWS_MSK_IAM":
            continue
        out[key] = value
    dropped = sorted(
        k
        for k in props
        if k.startswith(("ssl.truststore.", "ssl.keystore."))
        and not (k.startswith("ssl.truststore.") and "ssl.ca.location" in out)
    )
    if dropped:
        log.warning(
            "%s: %s are Java key stores that librdkafka cannot read; set "
            "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION (and _CERT/_KEY_LOCATION for mTLS) to PEM "
            "files, see %s#tls-and-mtls",
            source,
            ", ".join(dropped),
            DOCS,
        )
    return out


# --- the one function ------------------------------------------------------------------------


@dataclass
class KafkaClientConfig:
    """The librdkafka properties shared by every client, plus where each came from."""

    properties: dict[str, Any]
    sources: dict[str, str]
    provider: TokenProvider | None = None

    def for_client(self, client: str) -> dict[str, Any]:
        return for_client(self.properties, client)

    def user_properties(self) -> dict[str, Any]:
        """What the user set (any source but the bootstrap): wins over the consumer's
        librdkafka defaults (kafka_defaults.py)."""
        return {
            k: v
            for k, v in self.properties.items()
            if k in self.sources and k != "bootstrap.servers"
        }

    def describe(self) -> str:
        """One line for the start-up log: protocol, mechanism, user, CA; never a secret."""
        p = self.properties
        parts = [f"security.protocol={p.get('security.protocol', 'PLAINTEXT')}"]
        for key in (
            "sasl.mechanism",
            "sasl.username",
            "ssl.ca.location",
            "ssl.certificate.location",
        ):
            if key in p:
                parts.append(f"{key}={p[key]}")
        if self.provider is not None:
            parts.append(f"token={type(self.provider).__name__}")
        origin = sorted({s for k, s in self.sources.items() if k != "bootstrap.servers"})
        return ", ".join(parts) + (f" (from {', '.join(origin)})" if origin else "")


def _read_secret_file(path: str, setting: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise KafkaSecurityError(
            f"{setting}={path}: {exc.strerror or exc}; see {DOCS}#scram-and-plain"
        ) from exc


def _read_settings() -> KafkaSecuritySettings:
    try:
        return KafkaSecuritySettings()
    except ValidationError as exc:
        # One line per wrong value instead of pydantic's traceback.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise KafkaSecurityError(f"{problems}; see {DOCS}#kafka-settings") from exc


def _named_layer(settings: KafkaSecuritySettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if settings.auth is not None:
        out["auth"] = settings.auth
    if settings.security_protocol is not None:
        out["security.protocol"] = settings.security_protocol
    password = settings.sasl_password
    if password is None and settings.sasl_password_file:
        password = _read_secret_file(
            settings.sasl_password_file, "LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD_FILE"
        )
    for key, value in (
        ("sasl.username", settings.sasl_username),
        ("sasl.password", password),
        ("ssl.ca.location", settings.ssl_ca_location),
        ("ssl.certificate.location", settings.ssl_cert_location),
        ("ssl.key.location", settings.ssl_key_location),
        ("ssl.key.password", settings.ssl_key_password),
    ):
        if value:
            out[key] = value
    return out


def _normalise(props: Mapping[str, Any]) -> dict[str, Any]:
    # librdkafka takes `sasl.mechanisms` and `sasl.mechanism` as one property; merge them
    # under one name so a higher source replaces a lower one.
    out = dict(props)
    if "sasl.mechanisms" in out:
        out.setdefault("sasl.mechanism", out.pop("sasl.mechanisms"))
        out.pop("sasl.mechanisms", None)
    return out


def kafka_client_config(
    bootstrap_servers: str,
    config_json: str | None = None,
    *,
    settings: KafkaSecuritySettings | None = None,
    environ: Mapping[str, str] | None = None,
    provider: TokenProvider | None = None,
    region: str | None = None,
) -> KafkaClientConfig:
    """Every Kafka client's security configuration (see the module docstring for the order).

    `provider` replaces the token provider `LAMBDA_TRIGGER_KAFKA_AUTH` would pick (tests count
    calls with it); `region` is the service's AWS region, MSK's when
    LAMBDA_TRIGGER_KAFKA_MSK_REGION is not set. Raises KafkaSecurityError for settings that
    cannot work.
    """
    env = os.environ if environ is None else environ
    named = settings if settings is not None else _read_settings()
    if named.msk_region is None and region:
        named = named.model_copy(update={"msk_region": region})
    try:
        raw = json.loads(config_json) if config_json else {}
    except ValueError as exc:
        raise KafkaSecurityError(
            f"LAMBDA_TRIGGER_KAFKA_CONFIG is not JSON ({exc}); see {DOCS}#precedence"
        ) from exc
    if not isinstance(raw, dict):
        raise KafkaSecurityError(f"LAMBDA_TRIGGER_KAFKA_CONFIG must be a JSON object; see {DOCS}")
    layers: list[tuple[str, dict[str, Any]]] = [
        # lowest first: each later layer replaces the properties it sets
        (
            "SPRING_KAFKA_PROPERTIES_*",
            _translate_java(
                _normalise(datahub_properties(env, "SPRING_KAFKA_PROPERTIES_")),
                "SPRING_KAFKA_PROPERTIES_*",
            ),
        ),
        (
            "KAFKA_PROPERTIES_*",
            _translate_java(
                _normalise(datahub_properties(env, "KAFKA_PROPERTIES_")), "KAFKA_PROPERTIES_*"
            ),
        ),
        ("LAMBDA_TRIGGER_KAFKA_*", _named_layer(named)),
        ("LAMBDA_TRIGGER_KAFKA_CONFIG", _normalise(raw)),
    ]
    merged: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    sources: dict[str, str] = {"bootstrap.servers": "KAFKA_BOOTSTRAP_SERVERS"}
    for name, layer in layers:
        if "auth" in layer or "sasl.mechanism" in layer:
            # A source that picks the mechanism decides the whole of it: a lower source's
            # callback or `auth` must not survive next to another mechanism.
            for stale in ("auth", "oauth_cb", "sasl.oauthbearer.method"):
                if stale not in layer:
                    merged.pop(stale, None)
                    sources.pop(stale, None)
        for key, value in layer.items():
            merged[key] = value
            sources[key] = name
    auth = merged.pop("auth", None)
    auth_source = sources.pop("auth", None)
    if auth is not None:
        _apply_auth(merged, sources, str(auth), auth_source or "", named, provider)
    elif merged.get("sasl.mechanism", "").upper() == "OAUTHBEARER" and _is_msk_default(merged):
        # DataHub's Helm chart (datahub.kafka.iam.python.env) gives its Python services
        # SASL_SSL + OAUTHBEARER + method=default and nothing else: that is MSK IAM there.
        _apply_auth(merged, sources, "msk-iam", sources["sasl.mechanism"], named, provider)
    callback = merged.pop("oauth_cb", None)
    chosen: TokenProvider | None = merged.pop(_PROVIDER_KEY, None)
    if isinstance(callback, str):
        chosen = (
            _msk_provider(named, provider, sources.get("oauth_cb", ""))
            if callback in _DATAHUB_MSK_CALLBACKS
            else _import_callback(callback)
        )
    elif callable(callback):
        chosen = _ImportedCallback(callback)
    sources.pop("oauth_cb", None)
    if merged.get("sasl.mechanism", "").upper() != "OAUTHBEARER":
        chosen = None  # librdkafka refuses a token callback for any other mechanism
    if chosen is not None:
        merged[_PROVIDER_KEY] = chosen
    _check(merged, sources)
    return KafkaClientConfig(merged, sources, chosen)


def _is_msk_default(props: Mapping[str, Any]) -> bool:
    return (
        "oauth_cb" not in props
        and str(props.get("sasl.oauthbearer.method", "default")).lower() == "default"
        and "sasl.oauthbearer.config" not in props
    )


def _msk_provider(
    named: KafkaSecuritySettings, provider: TokenProvider | None, source: str
) -> TokenProvider:
    if provider is not None:
        return provider
    if not named.msk_region:
        raise KafkaSecurityError(
            f"MSK IAM ({source}) needs a region: set LAMBDA_TRIGGER_KAFKA_MSK_REGION (or "
            f"AWS_REGION); see {DOCS}#msk-iam"
        )
    return MskIamTokenProvider(named.msk_region)


def _apply_auth(
    merged: dict[str, Any],
    sources: dict[str, str],
    auth: str,
    source: str,
    named: KafkaSecuritySettings,
    provider: TokenProvider | None,
) -> None:
    if auth == "none":
        for key in ("sasl.mechanism", "sasl.username", "sasl.password", "oauth_cb"):
            merged.pop(key, None)
        merged.setdefault(
            "security.protocol", "SSL" if "ssl.ca.location" in merged else "PLAINTEXT"
        )
        return
    merged["sasl.mechanism"] = _MECHANISM[auth]
    sources["sasl.mechanism"] = source
    if "security.protocol" not in merged:
        merged["security.protocol"] = "SASL_SSL"
        sources["security.protocol"] = source
    if auth in ("scram-sha-256", "scram-sha-512", "plain"):
        merged.pop("oauth_cb", None)
        missing = [k for k in ("sasl.username", "sasl.password") if not merged.get(k)]
        if missing:
            raise KafkaSecurityError(
                f"LAMBDA_TRIGGER_KAFKA_AUTH={auth} needs LAMBDA_TRIGGER_KAFKA_SASL_USERNAME and "
                f"LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD (or _PASSWORD_FILE); missing: "
                f"{', '.join(missing)}; see {DOCS}#scram-and-plain"
            )
        return
    merged.pop("oauth_cb", None)
    merged.pop("sasl.oauthbearer.method", None)
    # OAUTHBEARER has no username or password (librdkafka warns about them): the unsecured
    # test token uses the username as its principal.
    username = merged.pop("sasl.username", None)
    merged.pop("sasl.password", None)
    if auth == "msk-iam":
        merged[_PROVIDER_KEY] = _msk_provider(named, provider, source)
    else:
        merged[_PROVIDER_KEY] = provider or UnsecuredTestTokenProvider(username or "lambda-trigger")
    sources["oauth_cb"] = source


def _check(merged: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    protocol = str(merged.get("security.protocol", "PLAINTEXT")).upper()
    mechanism = merged.get("sasl.mechanism")
    if mechanism and not protocol.startswith("SASL_"):
        raise KafkaSecurityError(
            f"sasl.mechanism={mechanism} (from {sources.get('sasl.mechanism')}) needs "
            f"security.protocol SASL_SSL or SASL_PLAINTEXT, not {protocol} (from "
            f"{sources.get('security.protocol', 'the default')}); see {DOCS}#precedence"
        )
    for key in ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location"):
        path = merged.get(key)
        if isinstance(path, str) and path not in ("probe",) and not os.path.exists(path):
            raise KafkaSecurityError(
                f"{key}={path} (from {sources.get(key)}) does not exist in this container; "
                f"see {DOCS}#tls-and-mtls"
            )
    if ("ssl.certificate.location" in merged) != ("ssl.key.location" in merged):
        raise KafkaSecurityError(
            "mTLS needs both LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION and "
            f"LAMBDA_TRIGGER_KAFKA_SSL_KEY_LOCATION; see {DOCS}#tls-and-mtls"
        )
