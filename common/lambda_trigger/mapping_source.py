"""The current mapping, reloaded when the file's content changes.

How a reload decides (every `reload_seconds`, from a watcher thread or lazily on `current()`):

1. Read the file's bytes and hash them (SHA-256). The same hash as the installed file: nothing
   to do. The mtime is never trusted: a `touch` reloads nothing, and an edit that keeps the
   mtime (coarse timestamps, `cp -p`, a writer finishing within the same tick) is still seen.
2. Read it again after `settle_seconds`. Different bytes: the file is being written; install
   nothing and look again at the next check. A writer that writes in place (an editor, `cp`,
   `cat > file`) can leave a prefix that is still valid YAML with fewer rules: those datasets
   would silently fall through to `default`, a different job.
3. Parse and validate exactly the bytes that were hashed. A file that does not validate is
   rejected: the last good mapping stays in force, and the rejection is logged and reported
   through `on_reload(False)` once per distinct bad content (not at every check, so the error
   counter and its alert mean "an edit was rejected").
4. Install the new mapping in one assignment; `current()` returns either the old or the new
   one, never a mixture.

The safe way to publish a mapping is still an atomic rename (write `m.yaml.tmp`, then `mv`);
Kubernetes ConfigMap volumes do exactly that. At start a bad mapping is fatal instead:
`MappingSource(...)` raises MappingError.

`hash` identifies the mapping in force: the SHA-256 of its validated document in canonical
JSON (first 12 hex digits), so the api and the consumer report the same value for the same
mapping however the file is formatted, and different values when one of them runs an older
one (`*_mapping_info{hash=...}`, `/readyz`, `datahub-lambda-trigger mapping check`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import InfoMetricFamily
from prometheus_client.registry import Collector

from lambda_trigger.mapping import Mapping, MappingError, load_mapping
from lambda_trigger.settings import MappingSettings

log = logging.getLogger(__name__)


def mapping_hash(mapping: Mapping) -> str:
    """What `*_mapping_info{hash}` reports: equal for equal mappings, whatever the formatting,
    comments or source form (flat seed form or document)."""
    document = mapping.document.model_dump(mode="json", by_alias=True, exclude_none=True)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class MappingSource:
    def __init__(
        self,
        settings: MappingSettings,
        *,
        reload_seconds: float = 10.0,
        on_reload: Callable[[bool], None] | None = None,
        settle_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._reload_seconds = reload_seconds
        self._on_reload = on_reload
        self._settle = settle_seconds
        self._sleep = sleep  # tests stand in for a writer that finishes during the settle time
        self._lock = threading.Lock()
        self._path = Path(settings.mapping_file) if settings.mapping_file else None
        raw = self._read_bytes() if self._path else None
        self._mapping = self._load(raw)
        self._file_hash = _digest(raw)
        self._rejected_hash: str | None = None
        self.hash = mapping_hash(self._mapping)
        self.last_error: str | None = None
        self._checked = time.monotonic()

    def _read_bytes(self) -> bytes:
        assert self._path is not None
        try:
            return self._path.read_bytes()
        except OSError as exc:
            raise MappingError(
                f"{self._path}: cannot read the mapping file: {exc.strerror or exc}"
            ) from None

    def _load(self, raw: bytes | None) -> Mapping:
        text = None
        if raw is not None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MappingError(f"{self._path}: not UTF-8 text: {exc}") from None
        s = self._settings
        return load_mapping(s.mapping_file, s.mapping_inline, s.default_lambda, file_text=text)

    def current(self) -> Mapping:
        due = self._path is not None and time.monotonic() - self._checked >= self._reload_seconds
        # Never wait behind a reload in progress (it may be settling): the mapping in force
        # is valid until the new one is installed.
        if due and self._lock.acquire(blocking=False):
            try:
                self._reload_locked()
            finally:
                self._lock.release()
        return self._mapping

    def reload_if_changed(self) -> bool:
        """Returns True when a new mapping was installed."""
        with self._lock:
            return self._reload_locked()

    def _reload_locked(self) -> bool:
        self._checked = time.monotonic()
        if self._path is None:
            return False
        try:
            first = self._read_bytes()
        except MappingError as exc:
            return self._reject(None, str(exc))
        digest = _digest(first)
        if digest == self._file_hash:
            self.last_error = None
            return False
        if digest == self._rejected_hash:
            return False  # already logged and counted
        if self._settle > 0:
            self._sleep(self._settle)
            try:
                second = self._read_bytes()
            except MappingError as exc:
                return self._reject(None, str(exc))
            if second != first:
                log.info("mapping file %s is being written; checking again later", self._path)
                return False
        try:
            mapping = self._load(first)
        except MappingError as exc:
            return self._reject(digest, str(exc))
        old = self.hash
        self._mapping = mapping
        self._file_hash = digest
        self._rejected_hash = None
        self.last_error = None
        self.hash = mapping_hash(mapping)
        log.info(
            "mapping reloaded from %s: hash %s -> %s (%d rules, %d named targets)",
            mapping.source,
            old,
            self.hash,
            len(mapping.document.rules),
            len(mapping.document.targets),
        )
        if self._on_reload:
            self._on_reload(True)
        return True

    def _reject(self, digest: str | None, error: str) -> bool:
        if digest is None and self.last_error == error:
            return False  # the same unreadable file: already logged and counted
        self._rejected_hash = digest
        self.last_error = error
        log.error(
            "mapping reload rejected, keeping the mapping in force (hash %s): %s", self.hash, error
        )
        if self._on_reload:
            self._on_reload(False)
        return False

    def status(self) -> dict[str, object]:
        """For /readyz: which mapping runs, and why the file's newer content does not."""
        detail: dict[str, object] = {"mappingHash": self.hash}
        if self.last_error:
            detail["mappingReloadError"] = self.last_error
        return detail


def _digest(raw: bytes | None) -> str | None:
    return hashlib.sha256(raw).hexdigest() if raw is not None else None


class MappingInfoCollector(Collector):
    """`<prefix>_mapping_info{hash="..."} 1`: read at scrape time, so the value is the mapping
    in force at that moment. Both services register one; a dashboard table shows them side
    by side, and differing hashes mean one service still runs an older mapping."""

    def __init__(self, prefix: str, source: MappingSource) -> None:
        self._prefix = prefix
        self._source = source

    def collect(self) -> Iterator[InfoMetricFamily]:
        self._source.current()  # a due reload check also happens for a service without traffic
        yield InfoMetricFamily(
            f"{self._prefix}_mapping",
            "Content hash of the mapping in force",
            value={"hash": self._source.hash},
        )
