# The trigger decision for one downstream dataset, as a pure state machine (docs/triggers.md).
"""Debounce, cooldown, follow-up, cycle and depth decisions for data-aware runs.

No Kafka, no clock, no DataHub here: the decider (trigger_decider.py) feeds intents and the
time in, and records the state this module returns in the run ledger, so that whoever owns
the dataset's ledger partition next (a restart, a rebalance) decides from the same state.

- `absorb` takes one upstream event (an intent) into the state: a new window, a join of the
  open window (debounced), an event already seen (a redelivery), or a refusal (cycle, depth).
- `due` says whether the open window fires now: its debounce has passed, the cooldown since
  the last fire has passed, no run of the dataset is active (a change during a run gives one
  follow-up run after it, since the window just waits), and the global rate limit allows.
- `fire` closes the window into a `Firing`: the run id is fixed before DataHub is written, so
  a decider that dies between the two rewrites the very same request (idempotent).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

OPERATION = "operation"
RUN_SUCCESS = "run_success"


class Absorbed(StrEnum):
    OPENED = "opened"  # a new window
    DEBOUNCED = "debounced"  # joined the open window
    SEEN = "seen"  # this event (or a newer one of the same upstream) is already counted
    CYCLE = "cycle"  # the dataset is already in the event's chain
    DEPTH = "depth"  # the chain is as long as maxDepth allows
    IGNORED = "ignored"  # the event kind is not in onUpstream


class Wait(StrEnum):
    DEBOUNCE = "debounce"
    COOLDOWN = "cooldown"
    ACTIVE = "active"
    RATE = "rate"


@dataclass(frozen=True)
class TriggerConfig:
    on_upstream: frozenset[str]
    debounce_ms: int
    cooldown_ms: int
    max_depth: int


@dataclass(frozen=True)
class Intent:
    """One upstream event, for one downstream dataset."""

    dataset: str  # the downstream (triggered) dataset
    upstream: str
    event: str  # OPERATION or RUN_SUCCESS
    event_ms: int  # the operation's timestampMillis, or when the upstream run ended
    # The runs that led here, oldest first: [dataset, runId or None for an outside change].
    chain: tuple[tuple[str, str | None], ...] = ()
    upstream_run: str | None = None  # RUN_SUCCESS: the upstream run id

    @property
    def key(self) -> str:
        """Which upstream source: a redelivered or older event of it is not counted twice."""
        return f"{self.event}|{self.upstream}"

    def full_chain(self) -> tuple[tuple[str, str | None], ...]:
        return (*self.chain, (self.upstream, self.upstream_run))

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "upstream": self.upstream,
            "event": self.event,
            "event_ms": self.event_ms,
            "chain": [list(c) for c in self.chain],
            "upstream_run": self.upstream_run,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Intent:
        return cls(
            dataset=str(data["dataset"]),
            upstream=str(data["upstream"]),
            event=str(data["event"]),
            event_ms=int(data["event_ms"]),
            chain=tuple((str(c[0]), c[1]) for c in data.get("chain") or []),
            upstream_run=data.get("upstream_run"),
        )


@dataclass
class Firing:
    """A decided run: written to the ledger before the request is written to DataHub."""

    run_id: str
    requested_at_ms: int
    reasons: list[dict[str, Any]]
    chain: list[list[str | None]]


@dataclass
class TriggerState:
    dataset: str
    seen: dict[str, int] = field(default_factory=dict)  # Intent.key -> newest event_ms
    window_start_ms: int | None = None  # when the open window's first event was absorbed
    reasons: list[dict[str, Any]] = field(default_factory=list)  # the open window's events
    chain: list[list[str | None]] = field(default_factory=list)  # merged chains, no repeats
    last_fired_ms: int | None = None
    fired: int = 0  # how many runs this dataset's trigger has started (names the next one)
    firing: Firing | None = None
    cooldown_noted: bool = False  # the open window's cooldown wait is counted once

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "seen": self.seen,
            "window_start_ms": self.window_start_ms,
            "reasons": self.reasons,
            "chain": self.chain,
            "last_fired_ms": self.last_fired_ms,
            "fired": self.fired,
            "firing": None if self.firing is None else self.firing.__dict__,
            "cooldown_noted": self.cooldown_noted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TriggerState:
        firing = data.get("firing")
        return cls(
            dataset=str(data["dataset"]),
            seen={str(k): int(v) for k, v in (data.get("seen") or {}).items()},
            window_start_ms=data.get("window_start_ms"),
            reasons=list(data.get("reasons") or []),
            chain=[list(c) for c in data.get("chain") or []],
            last_fired_ms=data.get("last_fired_ms"),
            fired=int(data.get("fired") or 0),
            firing=Firing(**firing) if isinstance(firing, dict) else None,
            cooldown_noted=bool(data.get("cooldown_noted")),
        )

    @property
    def pending(self) -> bool:
        return self.window_start_ms is not None


def absorb(state: TriggerState, intent: Intent, config: TriggerConfig, now_ms: int) -> Absorbed:
    """Count one upstream event (mutates `state` unless refused or already seen)."""
    if intent.event not in config.on_upstream:
        return Absorbed.IGNORED
    if intent.event_ms <= state.seen.get(intent.key, -1):
        return Absorbed.SEEN
    chain = intent.full_chain()
    if any(dataset == state.dataset for dataset, _run in chain):
        return Absorbed.CYCLE
    if len(chain) > config.max_depth:
        return Absorbed.DEPTH
    state.seen[intent.key] = intent.event_ms
    opened = state.window_start_ms is None
    if opened:
        state.window_start_ms = now_ms
        state.reasons = []
        state.chain = []
        state.cooldown_noted = False
    state.reasons.append(
        {"upstream": intent.upstream, "event": intent.event, "eventTimeMs": intent.event_ms}
        | ({"upstreamRunId": intent.upstream_run} if intent.upstream_run else {})
    )
    for dataset, run in chain:
        if [dataset, run] not in state.chain:
            state.chain.append([dataset, run])
    return Absorbed.OPENED if opened else Absorbed.DEBOUNCED


def due(
    state: TriggerState, config: TriggerConfig, now_ms: int, *, active: bool, rate_ok: bool
) -> Wait | None:
    """None: fire the open window now. Else why it waits. Only for a pending state."""
    assert state.window_start_ms is not None
    if now_ms < state.window_start_ms + config.debounce_ms:
        return Wait.DEBOUNCE
    if state.last_fired_ms is not None and now_ms < state.last_fired_ms + config.cooldown_ms:
        return Wait.COOLDOWN
    if active or state.firing is not None:
        return Wait.ACTIVE
    if not rate_ok:
        return Wait.RATE
    return None


def wake_at(state: TriggerState, config: TriggerConfig) -> int | None:
    """The earliest time the open window may fire (None: nothing pending)."""
    if state.window_start_ms is None:
        return None
    at = state.window_start_ms + config.debounce_ms
    if state.last_fired_ms is not None:
        at = max(at, state.last_fired_ms + config.cooldown_ms)
    return at


def run_id_for(dataset: str, number: int) -> str:
    """Deterministic: the same dataset's n-th triggered run always has the same id."""
    digest = hashlib.sha256(dataset.encode()).hexdigest()[:16]
    return f"lineage-{digest}-{number}"


def fire(state: TriggerState, now_ms: int) -> Firing:
    """Close the open window into a decided run (record it before writing DataHub)."""
    assert state.window_start_ms is not None
    state.fired += 1
    firing = Firing(
        run_id=run_id_for(state.dataset, state.fired),
        requested_at_ms=now_ms,
        reasons=list(state.reasons),
        chain=[list(c) for c in state.chain],
    )
    state.firing = firing
    state.last_fired_ms = now_ms
    state.window_start_ms = None
    state.reasons = []
    state.chain = []
    state.cooldown_noted = False
    return firing


def written(state: TriggerState) -> None:
    """The firing's request is in DataHub: the run is DataHub's (and the driver's) now."""
    state.firing = None
