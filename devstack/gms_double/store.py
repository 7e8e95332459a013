"""The double's stand-in for GMS's `metadata_aspect_v2` table (and, for timeseries, its index).

Versioning follows EntityServiceImpl's documented scheme (metadata-io/.../entity/
EntityServiceImpl.java, class comment): the latest value of an aspect is row version 0; when a new
value replaces it, the old one keeps the number it had (1 for the first value, then 2, ...), so
"version 1" is the oldest and version 0 always the latest. Reads with a negative version count
back from the newest (EntityServiceImpl.calculateVersionNumber).

`systemMetadata.version` (a string) carries the row's own number: "1" for the first value of an
aspect, "2" after the first change, ... (EntityServiceImpl.applyUpsert: `rowNextVersion`). That is
the number `If-Version-Match` compares with (ConditionalWriteValidator).

Timeseries aspects are not stored in SQL by GMS (they go straight to Elasticsearch through the
MCL); the double keeps only the latest value per URN/aspect so tests can look at it.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

AspectKey = tuple[str, str]


@dataclass
class AspectRow:
    """One row: the aspect's Pegasus JSON, its SystemMetadata JSON and the audit columns
    (`createdon`/`createdby`: when and by whom this value was written)."""

    value: dict[str, Any]
    system_metadata: dict[str, Any]
    created_on: int
    created_by: str

    def copy(self) -> AspectRow:
        return copy.deepcopy(self)

    def version_number(self, history_len: int) -> int:
        # ConditionalWriteValidator: systemMetadata.version when present, else the row version
        # floored at 1 (row 0 -> 1).
        raw = self.system_metadata.get("version")
        if raw is not None:
            try:
                return int(raw)
            except ValueError:
                pass
        return max(1, history_len + 1)


@dataclass
class StoreState:
    latest: dict[AspectKey, AspectRow] = field(default_factory=dict)
    # history[key][i] is row version i + 1 (oldest first).
    history: dict[AspectKey, list[AspectRow]] = field(default_factory=dict)
    timeseries: dict[AspectKey, AspectRow] = field(default_factory=dict)


class AspectStore:
    """Not thread-safe on its own: the double serialises every write under one lock, as the
    transaction around EntityServiceImpl.ingestAspectsToLocalDB does for one batch."""

    def __init__(self) -> None:
        self._state = StoreState()

    # -- reads -------------------------------------------------------------------------------

    def latest(self, urn: str, aspect: str) -> AspectRow | None:
        row = self._state.latest.get((urn, aspect))
        return row.copy() if row else None

    def history_len(self, urn: str, aspect: str) -> int:
        return len(self._state.history.get((urn, aspect), []))

    def get(self, urn: str, aspect: str, version: int = 0) -> tuple[AspectRow, int] | None:
        """EntityServiceImpl.getAspectVersionPair: version 0 latest, N the N-th oldest, negative
        counts back from the newest (-1 is the newest)."""
        key = (urn, aspect)
        history = self._state.history.get(key, [])
        latest = self._state.latest.get(key)
        if version < 0:
            # calculateVersionNumber: aspectDao.getMaxVersion + version + 1.
            version = len(history) + version + 1
        if version == 0:
            return (latest.copy(), 0) if latest else None
        if 1 <= version <= len(history):
            return history[version - 1].copy(), version
        return None

    def timeseries_latest(self, urn: str, aspect: str) -> AspectRow | None:
        row = self._state.timeseries.get((urn, aspect))
        return row.copy() if row else None

    def urns(self) -> set[str]:
        return {urn for urn, _ in self._state.latest}

    def __len__(self) -> int:
        return len(self._state.latest)

    # -- writes ------------------------------------------------------------------------------

    def put_latest(self, urn: str, aspect: str, row: AspectRow, *, keep_previous: bool) -> None:
        """Write row 0; with keep_previous the current row 0 becomes the next history row
        (aspectDao.saveLatestAspect's insert of the old value as version N)."""
        key = (urn, aspect)
        old = self._state.latest.get(key)
        if keep_previous and old is not None:
            self._state.history.setdefault(key, []).append(old)
        self._state.latest[key] = row.copy()

    def put_timeseries(self, urn: str, aspect: str, row: AspectRow) -> None:
        self._state.timeseries[(urn, aspect)] = row.copy()

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        def rows(table: dict[AspectKey, AspectRow]) -> list[dict[str, Any]]:
            return [{"urn": u, "aspect": a, **asdict(r)} for (u, a), r in sorted(table.items())]

        return {
            "latest": rows(self._state.latest),
            "history": [
                {"urn": u, "aspect": a, "rows": [asdict(r) for r in hist]}
                for (u, a), hist in sorted(self._state.history.items())
            ],
            "timeseries": rows(self._state.timeseries),
        }

    def load_json(self, data: dict[str, Any]) -> None:
        def row(d: dict[str, Any]) -> AspectRow:
            return AspectRow(d["value"], d["system_metadata"], d["created_on"], d["created_by"])

        state = StoreState()
        for d in data.get("latest", []):
            state.latest[(d["urn"], d["aspect"])] = row(d)
        for d in data.get("history", []):
            state.history[(d["urn"], d["aspect"])] = [row(r) for r in d["rows"]]
        for d in data.get("timeseries", []):
            state.timeseries[(d["urn"], d["aspect"])] = row(d)
        self._state = state


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace the state file in one rename so a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
