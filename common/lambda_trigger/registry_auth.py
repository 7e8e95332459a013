"""Schema registry credentials: out of the URL, from a setting or a mounted secret file.

`SCHEMA_REGISTRY_URL=https://user:pass@host/` is how many people first try basic auth, and a URL
is printed everywhere (start-up lines, dependency lines, `/readyz`). So settings.py moves the
user info out of the URL as it reads it (`split_url_credentials`), and only the clean URL goes
on. `resolve_registry_auth` then picks the one credential to send, from the settings in
docs/schema-registries.md, and refuses ambiguous or malformed ones with a message that names
the setting, never its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

USER_INFO = "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO"
USER_INFO_FILE = "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO_FILE"
BEARER_TOKEN = "LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN"
BEARER_TOKEN_FILE = "LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN_FILE"
# What DataHub's own containers take (docs/deploy/confluent-cloud.md): datahub-actions and
# datahub-frontend read KAFKA_PROPERTIES_*, GMS reads SPRING_KAFKA_PROPERTIES_* (Spring's
# relaxed binding of spring.kafka.properties.basic.auth.user.info). The bearer names are the
# same pass-through for Confluent's `bearer.auth.token`.
USER_INFO_DATAHUB = (
    "KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO",
    "SPRING_KAFKA_PROPERTIES_BASIC_AUTH_USER_INFO",
)
BEARER_TOKEN_DATAHUB = (
    "KAFKA_PROPERTIES_BEARER_AUTH_TOKEN",
    "SPRING_KAFKA_PROPERTIES_BEARER_AUTH_TOKEN",
)
URL_SETTING = "SCHEMA_REGISTRY_URL"


class RegistryAuthError(ValueError):
    """A credential setting that cannot be used; the message names it, never its value."""


@dataclass(frozen=True)
class RegistryAuth:
    kind: Literal["basic", "bearer"]
    secret: str = ""  # "user:password" for basic, the token for bearer
    setting: str = ""  # where it came from, for the operator's line

    def __repr__(self) -> str:
        return f"RegistryAuth(kind={self.kind!r}, setting={self.setting!r})"

    @property
    def username(self) -> str:
        return self.secret.split(":", 1)[0]

    @property
    def password(self) -> str:
        return self.secret.split(":", 1)[1] if ":" in self.secret else ""


def split_url_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without user info, "user:password" percent-decoded or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user_info = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return clean, user_info


def _read_secret_file(path: str, setting: str) -> str:
    try:
        # Kubernetes secret files often end in a newline that is not part of the secret.
        text = Path(path).read_text("utf-8").strip()
    except OSError as exc:
        raise RegistryAuthError(f"{setting}: cannot read {path}: {exc.strerror}") from exc
    if not text:
        raise RegistryAuthError(f"{setting}: {path} is empty")
    return text


def _one(
    value: str | None, file: str | None, name: str, file_name: str, aliases: tuple[str, ...]
) -> tuple[str, str] | None:
    if value and file:
        raise RegistryAuthError(f"set {name} or {file_name}, not both")
    if file:
        return _read_secret_file(file, file_name), f"{file_name} ({file})"
    if value:
        return value, f"{name} (or {' / '.join(aliases)})"
    return None


def resolve_registry_auth(
    *,
    user_info: str | None = None,
    user_info_file: str | None = None,
    bearer_token: str | None = None,
    bearer_token_file: str | None = None,
    url_user_info: str | None = None,
) -> RegistryAuth | None:
    """The credential to send, or None. A setting beats credentials found in the URL; basic
    and bearer together are refused (the registry would see only one of them)."""
    basic = _one(user_info, user_info_file, USER_INFO, USER_INFO_FILE, USER_INFO_DATAHUB)
    bearer = _one(
        bearer_token, bearer_token_file, BEARER_TOKEN, BEARER_TOKEN_FILE, BEARER_TOKEN_DATAHUB
    )
    if basic and bearer:
        raise RegistryAuthError(
            f"both basic auth ({basic[1]}) and a bearer token ({bearer[1]}) are set: keep one"
        )
    if bearer:
        return RegistryAuth("bearer", bearer[0], bearer[1])
    if basic is None and url_user_info is not None:
        basic = url_user_info, f"the user info in {URL_SETTING}"
    if basic is None:
        return None
    secret, setting = basic
    if ":" not in secret:
        raise RegistryAuthError(f"{setting} must be user:password (no ':' found)")
    return RegistryAuth("basic", secret, setting)
