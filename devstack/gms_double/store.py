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

Reads are served from memory. With a `StateDb` (persist.py) every write is also applied to a
SQLite table laid out like `metadata_aspect_v2` (one row per urn/aspect/version), so a write
costs one or two row upserts, whatever the number of stored aspects.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

AspectKey = tuple[str, str]

# Values that JSON trees share between copies: immutable, so no copy is needed.
_ATOMS = (str, int, float, bool, type(None), bytes)


def copy_json(node: Any) -> Any:
    """A deep copy of a JSON tree (dicts, lists and scalars, what aspects and systemMetadata
    are), several times cheaper than copy.deepcopy, which pays for its memo and reduce protocol
    on every node; anything else inside is handed to copy.deepcopy."""
    kind = type(node)
    if kind is dict:
        return {key: copy_json(value) for key, value in node.items()}
    if kind is list:
        return [copy_json(value) for value in node]
    if kind in _ATOMS:
        return node
    return copy.deepcopy(node)


@dataclass
class AspectRow:
    """One row: the aspect's Pegasus JSON, its SystemMetadata JSON and the audit columns
    (`createdon`/`createdby`: when and by whom this value was written)."""

    value: dict[str, Any]
    system_metadata: dict[str, Any]
    created_on: int
    created_by: str

    def copy(self) -> AspectRow:
        return AspectRow(
            copy_json(self.value), copy_json(self.system_metadata), self.created_on, self.created_by
        )

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


class RowSink(Protocol):
    """Where the store mirrors each change (persist.StateDb); called under the double's lock."""

    def put_row(self, urn: str, aspect: str, version: int, row: AspectRow) -> None: ...

    def put_timeseries(self, urn: str, aspect: str, row: AspectRow) -> None: ...

    def delete_urn(self, urn: str) -> None: ...

    def drop_timeseries(self, urn: str, aspect: str) -> None: ...


class AspectStore:
    """Not thread-safe on its own: the double serialises every write under one lock, as the
    transaction around EntityServiceImpl.ingestAspectsToLocalDB does for one batch."""

    def __init__(self, sink: RowSink | None = None) -> None:
        self._state = StoreState()
        self._sink = sink
        # urn -> its versioned aspect names, so an entity's aspects are found without a scan.
        self._by_urn: dict[str, set[str]] = {}

    def attach(self, sink: RowSink | None) -> None:
        self._sink = sink

    # -- reads -------------------------------------------------------------------------------

    def latest(self, urn: str, aspect: str) -> AspectRow | None:
        row = self._state.latest.get((urn, aspect))
        return row.copy() if row else None

    def has_latest(self, urn: str, aspect: str) -> bool:
        """Whether the aspect is stored (without copying its row as `latest` does)."""
        return (urn, aspect) in self._state.latest

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
        return set(self._by_urn)

    def aspect_names(self, urn: str) -> set[str]:
        """The versioned aspects stored for `urn` (latest rows)."""
        return set(self._by_urn.get(urn, ()))

    def row_count(self, urn: str) -> int:
        """Rows of `urn` in metadata_aspect_v2: latest rows plus history rows."""
        return sum(
            1 + len(self._state.history.get((urn, a), [])) for a in self._by_urn.get(urn, ())
        )

    def timeseries_names(self, urn: str) -> set[str]:
        return {a for (u, a) in self._state.timeseries if u == urn}

    def __len__(self) -> int:
        return len(self._state.latest)

    # -- writes ------------------------------------------------------------------------------

    def put_latest(self, urn: str, aspect: str, row: AspectRow, *, keep_previous: bool) -> None:
        """Write row 0; with keep_previous the current row 0 becomes the next history row
        (aspectDao.saveLatestAspect's insert of the old value as version N)."""
        key = (urn, aspect)
        old = self._state.latest.get(key)
        if keep_previous and old is not None:
            history = self._state.history.setdefault(key, [])
            history.append(old)
            if self._sink is not None:
                self._sink.put_row(urn, aspect, len(history), old)
        self._state.latest[key] = row.copy()
        self._by_urn.setdefault(urn, set()).add(aspect)
        if self._sink is not None:
            self._sink.put_row(urn, aspect, 0, row)

    def put_timeseries(self, urn: str, aspect: str, row: AspectRow) -> None:
        self._state.timeseries[(urn, aspect)] = row.copy()
        if self._sink is not None:
            self._sink.put_timeseries(urn, aspect, row)

    def delete_urn(self, urn: str) -> tuple[int, int]:
        """EbeanAspectDao.deleteUrn: every row of the entity goes (all aspects, all versions);
        returns (versioned rows, timeseries values) removed."""
        rows = self.row_count(urn)
        for aspect in self._by_urn.pop(urn, set()):
            self._state.latest.pop((urn, aspect), None)
            self._state.history.pop((urn, aspect), None)
        timeseries = [k for k in self._state.timeseries if k[0] == urn]
        for key in timeseries:
            del self._state.timeseries[key]
        if self._sink is not None:
            self._sink.delete_urn(urn)
        return rows, len(timeseries)

    def drop_timeseries(self, urn: str, aspect: str) -> None:
        self._state.timeseries.pop((urn, aspect), None)
        if self._sink is not None:
            self._sink.drop_timeseries(urn, aspect)

    def clear(self) -> None:
        """Forget everything held in memory (before loading a persisted state)."""
        self._state = StoreState()
        self._by_urn = {}

    def load_row(self, urn: str, aspect: str, version: int, row: AspectRow) -> None:
        """Restore one persisted row (history rows must come in ascending version order)."""
        key = (urn, aspect)
        if version == 0:
            self._state.latest[key] = row
            self._by_urn.setdefault(urn, set()).add(aspect)
        else:
            self._state.history.setdefault(key, []).append(row)

    def load_timeseries(self, urn: str, aspect: str, row: AspectRow) -> None:
        self._state.timeseries[(urn, aspect)] = row

    def rows(self) -> list[tuple[str, str, int, AspectRow]]:
        """Every versioned row as (urn, aspect, version, row): what a StateDb is filled from."""
        out = [(u, a, 0, r) for (u, a), r in self._state.latest.items()]
        for (u, a), hist in self._state.history.items():
            out.extend((u, a, i + 1, r) for i, r in enumerate(hist))
        return out

    def timeseries_rows(self) -> list[tuple[str, str, AspectRow]]:
        return [(u, a, r) for (u, a), r in self._state.timeseries.items()]

    # -- persistence ---------------------------------------------------------------------------

    def load_json(self, data: dict[str, Any]) -> None:
        """Load the JSON state document of older doubles (persist.py imports it once)."""

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
        self._by_urn = {}
        for urn, aspect in state.latest:
            self._by_urn.setdefault(urn, set()).add(aspect)
