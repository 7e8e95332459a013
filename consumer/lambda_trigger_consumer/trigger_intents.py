# Trigger intents and trigger decision states as run-ledger records (docs/triggers.md).
"""The ledger records of lineage triggers, and the owner's folded view of them.

Both go to the ledger partition of the *downstream* dataset (ledger.partition_for), so the one
consumer that owns that partition sees every upstream event for the dataset and decides alone.

- Intent: key `trigger-intent:<dataset>|<event>|<upstream>|<eventMs>`, written by whichever
  consumer read the upstream event. Deterministic: a redelivered event rewrites the same key.
  The owner tombstones it once the decision state that counts it is stored, so compaction
  keeps only intents not yet counted.
- State: key `trigger-state:<dataset>`, the owner's full TriggerState (triggers.py), never
  tombstoned (one small record per triggered dataset); compaction keeps the newest.

Records are built with ledger.trigger_record (the ledger's own format), read back with
ledger.decode_trigger_record, and produced with LedgerWriter: never by hand.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from lambda_trigger_consumer.ledger import (
    TRIGGER_KEY_PREFIX,
    LedgerWriter,
    decode_trigger_record,
    trigger_record,
)
from lambda_trigger_consumer.triggers import Intent, TriggerState

log = logging.getLogger(__name__)
INTENT_PREFIX = f"{TRIGGER_KEY_PREFIX}intent:"
STATE_PREFIX = f"{TRIGGER_KEY_PREFIX}state:"


def intent_key(intent: Intent) -> str:
    return f"{INTENT_PREFIX}{intent.dataset}|{intent.event}|{intent.upstream}|{intent.event_ms}"


def state_key(dataset: str) -> str:
    return f"{STATE_PREFIX}{dataset}"


def write_intent(ledger: LedgerWriter, intent: Intent) -> None:
    """Raises KafkaException when the broker did not take it (the caller retries)."""
    key = intent_key(intent)
    ledger.write(
        key,
        intent.dataset,
        trigger_record("trigger_intent", key, intent.dataset, intent=intent.to_dict()),
    )


def write_state(ledger: LedgerWriter, state: TriggerState, seq: int) -> None:
    key = state_key(state.dataset)
    ledger.write(
        key,
        state.dataset,
        trigger_record("trigger_state", key, state.dataset, state=state.to_dict(), seq=seq),
    )


def drop_intent(ledger: LedgerWriter, key: str, dataset: str) -> None:
    ledger.write(key, dataset, None)


class TriggerBook:
    """What the owned ledger partitions say about triggers (ledger.LedgerView feeds it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # partition -> dataset -> (seq, state); partition -> key -> intent
        self._states: dict[int, dict[str, tuple[int, TriggerState]]] = {}
        self._intents: dict[int, dict[str, Intent]] = {}
        self.changed = threading.Event()

    # --- ledger.TriggerSink ---------------------------------------------------------------

    def reset(self, partition: int) -> None:
        with self._lock:
            self._states[partition] = {}
            self._intents[partition] = {}

    def apply(self, partition: int, key: str, value: bytes | None) -> None:
        with self._lock:
            states = self._states.setdefault(partition, {})
            intents = self._intents.setdefault(partition, {})
            if value is None:
                intents.pop(key, None)
                return
            try:
                data: dict[str, Any] = decode_trigger_record(value)
                if data["kind"] == "trigger_intent":
                    intents[key] = Intent.from_dict(data["intent"])
                elif data["kind"] == "trigger_state":
                    state = TriggerState.from_dict(data["state"])
                    seq = int(data.get("seq") or 0)
                    current = states.get(state.dataset)
                    if current is None or current[0] <= seq:  # an old echo never wins
                        states[state.dataset] = (seq, state)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("skipping a trigger ledger record %s: %s", key, exc)
                return
        self.changed.set()

    # --- the decider's side ---------------------------------------------------------------

    def stored(self, partition: int, dataset: str, seq: int, state: TriggerState) -> None:
        """The owner's own state, as soon as the broker has it."""
        with self._lock:
            states = self._states.setdefault(partition, {})
            current = states.get(dataset)
            if current is None or current[0] <= seq:
                states[dataset] = (seq, state)

    def dropped(self, partition: int, key: str) -> None:
        with self._lock:
            self._intents.get(partition, {}).pop(key, None)

    def snapshot(
        self, partition: int
    ) -> tuple[dict[str, tuple[int, TriggerState]], dict[str, Intent]]:
        with self._lock:
            states = {
                d: (seq, TriggerState.from_dict(s.to_dict()))
                for d, (seq, s) in self._states.get(partition, {}).items()
            }
            return states, dict(self._intents.get(partition, {}))
