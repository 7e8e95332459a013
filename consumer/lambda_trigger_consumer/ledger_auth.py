"""Authenticates the run ledger's records: an HMAC-SHA256 over each record's key and value.

Anyone who may produce to the ledger topic could otherwise write a run in any phase, naming any
function and any payload, and the owner would drive it (issue 19). Every record the consumers
write carries a Kafka header `lambda-trigger.mac` = `<key id>:<hex digest>`; a record without
one, with an unknown key id or a wrong digest is never folded into a run (runner.py skips it,
dead-letters it by reference and counts it).

Keys (docs/security.md, "The ledger key"):
- `LAMBDA_TRIGGER_LEDGER_KEYS`: comma-separated `kid:secret` pairs; the FIRST signs, all verify.
  Rotation: add the new key second everywhere, then move it first, then (once the ledger holds
  no record signed by the old one: every open run has been rewritten) drop the old one.
- `LAMBDA_TRIGGER_LEDGER_KEYS_FILE`: the same text in a file (a mounted Secret); read at start.
- Neither: the consumer refuses to start, unless `LAMBDA_TRIGGER_DEV_UNSIGNED_LEDGER=true`
  (local stacks only), which writes unsigned records and believes every record, loudly.

The header carries the MAC rather than the JSON value because tombstones have no value and must
be authenticated too (a forged tombstone would make a run vanish from its owner's view).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

MAC_HEADER = "lambda-trigger.mac"
# Domain separation: a digest made for the ledger is useless anywhere else the key might be used.
_CONTEXT = b"datahub-lambda-trigger/ledger/v1\x00"
_MIN_SECRET_BYTES = 16
_MAX_HEADER_BYTES = 200

# confluent-kafka's own header types: a list of pairs (what Message.headers() returns) or a dict.
Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None


class LedgerKeyError(ValueError):
    """The ledger key settings are unusable: the consumer does not start."""


class LedgerAuthSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    keys: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_LEDGER_KEYS")
    keys_file: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_LEDGER_KEYS_FILE")
    dev_unsigned: bool = Field(False, validation_alias="LAMBDA_TRIGGER_DEV_UNSIGNED_LEDGER")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # metric label: ok, unsigned, unknown_key, bad_mac, malformed_mac


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """`kid:secret, kid2:secret2` (commas or new lines) -> [(kid, secret)], signing key first."""
    keys: list[tuple[str, bytes]] = []
    for raw in text.replace("\n", ",").split(","):
        part = raw.strip()
        if not part:
            continue
        kid, sep, secret = part.partition(":")
        kid, secret = kid.strip(), secret.strip()
        if not sep or not kid or not secret:
            raise LedgerKeyError("a ledger key must be written kid:secret")
        if not kid.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(kid) > 64:
            raise LedgerKeyError(f"ledger key id {kid[:64]!r}: letters, digits, . _ - only")
        if len(secret.encode()) < _MIN_SECRET_BYTES:
            raise LedgerKeyError(
                f"ledger key {kid}: the secret must have at least {_MIN_SECRET_BYTES} bytes"
            )
        if any(kid == known for known, _ in keys):
            raise LedgerKeyError(f"ledger key id {kid} is listed twice")
        keys.append((kid, secret.encode()))
    return keys


def _message(key: bytes | None, value: bytes | None) -> bytes:
    """Length-prefixed, so that no (key, value) pair encodes like another; None != b""."""
    parts = [_CONTEXT]
    for field in (key, value):
        if field is None:
            parts.append(b"\xff")
        else:
            parts.append(b"\x01" + struct.pack(">Q", len(field)) + field)
    return b"".join(parts)


class LedgerSigner:
    """Signs with the first key, verifies with any. `None` keys: unsigned dev mode."""

    def __init__(self, keys: list[tuple[str, bytes]] | None) -> None:
        self._keys = dict(keys or [])
        self._signing = keys[0] if keys else None

    @property
    def enabled(self) -> bool:
        return self._signing is not None

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    @classmethod
    def from_settings(cls, settings: LedgerAuthSettings | None = None) -> LedgerSigner:
        settings = settings or LedgerAuthSettings()
        text = settings.keys or ""
        if settings.keys_file:
            try:
                text = ",".join(filter(None, [text, Path(settings.keys_file).read_text()]))
            except OSError as exc:
                raise LedgerKeyError(
                    f"LAMBDA_TRIGGER_LEDGER_KEYS_FILE cannot be read: {exc.strerror}"
                ) from exc
        keys = parse_keys(text)
        if keys:
            log.info(
                "run ledger records are signed with key %s and verified with %s",
                keys[0][0],
                ", ".join(kid for kid, _ in keys),
            )
            return cls(keys)
        if settings.dev_unsigned:
            log.error(
                "LAMBDA_TRIGGER_DEV_UNSIGNED_LEDGER=true: run ledger records are NOT "
                "authenticated; anyone who can produce to the ledger topic can start runs. "
                "Local stacks only: set LAMBDA_TRIGGER_LEDGER_KEYS."
            )
            return cls(None)
        raise LedgerKeyError(
            "no run ledger key: set LAMBDA_TRIGGER_LEDGER_KEYS (kid:secret) or "
            "LAMBDA_TRIGGER_LEDGER_KEYS_FILE; LAMBDA_TRIGGER_DEV_UNSIGNED_LEDGER=true runs "
            "without one on a local stack (docs/security.md)"
        )

    def headers(
        self, key: bytes | None, value: bytes | None
    ) -> list[tuple[str, str | bytes | None]]:
        if self._signing is None:
            return []
        kid, secret = self._signing
        digest = hmac.new(secret, _message(key, value), hashlib.sha256).hexdigest()
        return [(MAC_HEADER, f"{kid}:{digest}".encode())]

    def verify(self, key: bytes | None, value: bytes | None, headers: Headers) -> Verdict:
        if self._signing is None:
            return Verdict(True, "ok")
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        found = [v for k, v in pairs if k == MAC_HEADER]
        if not found or found[0] is None:
            return Verdict(False, "unsigned")
        if len(found) > 1:
            return Verdict(False, "malformed_mac")  # which one would count? neither
        raw = found[0]
        if isinstance(raw, str):
            raw = raw.encode()
        if len(raw) > _MAX_HEADER_BYTES:
            return Verdict(False, "malformed_mac")
        kid, sep, digest = raw.decode("ascii", errors="replace").partition(":")
        if not sep:
            return Verdict(False, "malformed_mac")
        secret = self._keys.get(kid)
        if secret is None:
            return Verdict(False, "unknown_key")
        expected = hmac.new(secret, _message(key, value), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, digest):
            return Verdict(False, "bad_mac")
        return Verdict(True, "ok")
