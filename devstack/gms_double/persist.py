"""The double's state on disk: a SQLite file written row by row, never rewritten whole.

The layout follows GMS's own SQL table, `metadata_aspect_v2` (metadata-io/.../entity/ebean/
EbeanAspectV2.java: urn, aspect, version, metadata, systemmetadata, createdon, createdby; version 0
is the latest value, 1..N the history), so a write is what it is in GMS: an upsert of the new
version-0 row plus, when the value changed, an insert of the old one under its own number.
Timeseries values (kept latest-only by the double) and the double's own settings (admin token,
registered tokens and sessions) sit in two small side tables.

WAL journaling with `synchronous=NORMAL`: a commit appends to the write-ahead log and does not
fsync the database, so write cost stays flat as the file grows; a crash of the machine (not of the
process) may lose the last writes, which is fine for a test double.

A state file from before this module (one JSON document) is imported once and replaced.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from devstack.gms_double.store import AspectRow, AspectStore

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metadata_aspect_v2 (
    urn TEXT NOT NULL,
    aspect TEXT NOT NULL,
    version INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    systemmetadata TEXT NOT NULL,
    createdon INTEGER NOT NULL,
    createdby TEXT NOT NULL,
    PRIMARY KEY (urn, aspect, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeseries_latest (
    urn TEXT NOT NULL,
    aspect TEXT NOT NULL,
    metadata TEXT NOT NULL,
    systemmetadata TEXT NOT NULL,
    createdon INTEGER NOT NULL,
    createdby TEXT NOT NULL,
    PRIMARY KEY (urn, aspect)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS double_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class StateDb:
    """One SQLite connection, used under the double's write lock (and its own lock, since the
    connection is shared between the HTTP handler threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        legacy = _legacy_json(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._legacy = legacy
        self._pending = False

    # -- loading -----------------------------------------------------------------------------

    def is_empty(self) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM metadata_aspect_v2 LIMIT 1").fetchone()
        return row is None and self._legacy is None

    def load(self, store: AspectStore) -> dict[str, Any]:
        """Fill `store` from disk; returns the settings (admin_token, credentials)."""
        store.clear()
        if self._legacy is not None:
            return self._import_legacy(store, self._legacy)
        with self._lock:
            for urn, aspect, version, meta, sm, on, by in self._conn.execute(
                "SELECT urn, aspect, version, metadata, systemmetadata, createdon, createdby "
                "FROM metadata_aspect_v2 ORDER BY urn, aspect, version"
            ):
                store.load_row(
                    urn, aspect, version, AspectRow(json.loads(meta), json.loads(sm), on, by)
                )
            for urn, aspect, meta, sm, on, by in self._conn.execute(
                "SELECT urn, aspect, metadata, systemmetadata, createdon, createdby "
                "FROM timeseries_latest"
            ):
                store.load_timeseries(
                    urn, aspect, AspectRow(json.loads(meta), json.loads(sm), on, by)
                )
            settings = {
                name: json.loads(value)
                for name, value in self._conn.execute("SELECT name, value FROM double_settings")
            }
        return settings

    def _import_legacy(self, store: AspectStore, data: dict[str, Any]) -> dict[str, Any]:
        store.load_json(data.get("store", {}))
        self._legacy = None
        for urn, aspect, version, row in store.rows():
            self.put_row(urn, aspect, version, row)
        for urn, aspect, row in store.timeseries_rows():
            self.put_timeseries(urn, aspect, row)
        settings = {
            "admin_token": data.get("admin_token"),
            "credentials": data.get("credentials", {}),
        }
        for name, value in settings.items():
            if value is not None:
                self.put_setting(name, value)
        self.commit()
        log.info("imported the JSON state file %s into SQLite", self.path)
        return settings

    # -- writes (RowSink) --------------------------------------------------------------------

    def put_row(self, urn: str, aspect: str, version: int, row: AspectRow) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO metadata_aspect_v2 VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    urn,
                    aspect,
                    version,
                    _dump(row.value),
                    _dump(row.system_metadata),
                    row.created_on,
                    row.created_by,
                ),
            )
            self._pending = True

    def put_timeseries(self, urn: str, aspect: str, row: AspectRow) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO timeseries_latest VALUES (?, ?, ?, ?, ?, ?)",
                (
                    urn,
                    aspect,
                    _dump(row.value),
                    _dump(row.system_metadata),
                    row.created_on,
                    row.created_by,
                ),
            )
            self._pending = True

    def delete_urn(self, urn: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM metadata_aspect_v2 WHERE urn = ?", (urn,))
            self._conn.execute("DELETE FROM timeseries_latest WHERE urn = ?", (urn,))
            self._pending = True

    def drop_timeseries(self, urn: str, aspect: str) -> None:
        with self._lock:
            self._conn.execute(
                "DELETE FROM timeseries_latest WHERE urn = ? AND aspect = ?", (urn, aspect)
            )
            self._pending = True

    def put_setting(self, name: str, value: Any) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO double_settings VALUES (?, ?)", (name, _dump(value))
            )
            self._pending = True

    def commit(self) -> None:
        """End the write's transaction (GMS commits once per ingested batch)."""
        with self._lock:
            if self._pending:
                self._conn.commit()
                self._pending = False

    def close(self) -> None:
        self.commit()
        with self._lock:
            self._conn.close()


def _legacy_json(path: Path) -> dict[str, Any] | None:
    """A JSON state file of an older double: read it, and move it aside for SQLite."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head == _SQLITE_MAGIC:
        return None
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is neither a SQLite database nor a JSON state file")
    path.replace(path.with_name(path.name + ".json-backup"))
    return data
