"""The lineage trigger decision state machine (triggers.py) and its ledger folding."""

from __future__ import annotations

import json

import pytest

from lambda_trigger.mapping import MappingError, parse_mapping
from lambda_trigger_consumer.ledger import LedgerView, trigger_record
from lambda_trigger_consumer.trigger_intents import TriggerBook, intent_key, state_key
from lambda_trigger_consumer.triggers import (
    OPERATION,
    RUN_SUCCESS,
    Absorbed,
    Intent,
    TriggerConfig,
    TriggerState,
    Wait,
    absorb,
    due,
    fire,
    run_id_for,
    wake_at,
    written,
)

A = "urn:li:dataset:(urn:li:dataPlatform:hive,a,PROD)"
B = "urn:li:dataset:(urn:li:dataPlatform:hive,b,PROD)"
C = "urn:li:dataset:(urn:li:dataPlatform:hive,c,PROD)"

CFG = TriggerConfig(
    on_upstream=frozenset({OPERATION, RUN_SUCCESS}),
    debounce_ms=300_000,
    cooldown_ms=3_600_000,
    max_depth=2,
)


def op(upstream: str, at: int, dataset: str = B) -> Intent:
    return Intent(dataset, upstream, OPERATION, at, (), None)


def test_a_burst_inside_the_window_gives_one_run() -> None:
    state = TriggerState(B)
    outcomes = [absorb(state, op(A, 1000 + i), CFG, now_ms=10_000 + i) for i in range(5)]
    assert outcomes == [Absorbed.OPENED] + [Absorbed.DEBOUNCED] * 4
    assert due(state, CFG, 10_000 + 299_999, active=False, rate_ok=True) == Wait.DEBOUNCE
    assert due(state, CFG, 10_000 + 300_000, active=False, rate_ok=True) is None
    firing = fire(state, 310_000)
    assert firing.run_id == run_id_for(B, 1)
    assert len(firing.reasons) == 5 and firing.reasons[0]["upstream"] == A
    assert not state.pending and state.firing is firing
    written(state)
    assert state.firing is None


def test_a_redelivered_or_older_event_is_not_counted_again() -> None:
    state = TriggerState(B)
    assert absorb(state, op(A, 5000), CFG, 0) == Absorbed.OPENED
    assert absorb(state, op(A, 5000), CFG, 1) == Absorbed.SEEN
    assert absorb(state, op(A, 4000), CFG, 2) == Absorbed.SEEN
    fire(state, 400_000)
    # After the fire, the same event (a redelivery) still opens nothing.
    assert absorb(state, op(A, 5000), CFG, 400_001) == Absorbed.SEEN
    assert not state.pending


def test_cooldown_holds_the_next_window_and_then_fires_once() -> None:
    state = TriggerState(B)
    absorb(state, op(A, 1), CFG, 0)
    fire(state, 300_000)
    written(state)
    absorb(state, op(A, 2), CFG, 400_000)
    absorb(state, op(A, 3), CFG, 500_000)
    assert due(state, CFG, 800_000, active=False, rate_ok=True) == Wait.COOLDOWN
    assert wake_at(state, CFG) == 300_000 + 3_600_000
    assert due(state, CFG, 3_900_000, active=False, rate_ok=True) is None
    assert fire(state, 3_900_000).run_id == run_id_for(B, 2)


def test_a_change_during_an_active_run_gives_one_follow_up() -> None:
    cfg = TriggerConfig(frozenset({OPERATION}), debounce_ms=0, cooldown_ms=0, max_depth=1)
    state = TriggerState(B)
    for i in range(3):
        absorb(state, op(A, 10 + i), cfg, 100 + i)
    assert due(state, cfg, 1000, active=True, rate_ok=True) == Wait.ACTIVE
    assert due(state, cfg, 2000, active=False, rate_ok=True) is None
    fire(state, 2000)
    assert not state.pending  # one follow-up for all three changes


def test_rate_limit_holds_the_window() -> None:
    state = TriggerState(B)
    absorb(state, op(A, 1), CFG, 0)
    assert due(state, CFG, 300_000, active=False, rate_ok=False) == Wait.RATE


def test_an_undecided_firing_counts_as_active() -> None:
    cfg = TriggerConfig(frozenset({OPERATION}), debounce_ms=0, cooldown_ms=0, max_depth=1)
    state = TriggerState(B)
    absorb(state, op(A, 1), cfg, 0)
    fire(state, 1)
    absorb(state, op(A, 2), cfg, 2)
    assert due(state, cfg, 3, active=False, rate_ok=True) == Wait.ACTIVE


def test_cycle_and_depth_are_refused() -> None:
    # A (manual run) -> B -> A: A is in the chain of B's run.
    to_a = Intent(A, B, RUN_SUCCESS, 10, ((A, "run-a"),), "run-b")
    state_a = TriggerState(A)
    assert absorb(state_a, to_a, CFG, 0) == Absorbed.CYCLE
    assert not state_a.pending and state_a.seen == {}
    # A -> B -> C -> D needs depth 3.
    d = "urn:li:dataset:(urn:li:dataPlatform:hive,d,PROD)"
    to_d = Intent(d, C, RUN_SUCCESS, 10, ((A, "ra"), (B, "rb")), "rc")
    assert absorb(TriggerState(d), to_d, CFG, 0) == Absorbed.DEPTH
    to_c = Intent(C, B, RUN_SUCCESS, 10, ((A, "ra"),), "rb")
    state_c = TriggerState(C)
    assert absorb(state_c, to_c, CFG, 0) == Absorbed.OPENED
    assert state_c.chain == [[A, "ra"], [B, "rb"]]


def test_an_event_kind_not_listed_is_ignored() -> None:
    cfg = TriggerConfig(frozenset({RUN_SUCCESS}), debounce_ms=0, cooldown_ms=0, max_depth=1)
    assert absorb(TriggerState(B), op(A, 1), cfg, 0) == Absorbed.IGNORED


def test_state_round_trips_through_json() -> None:
    state = TriggerState(B)
    absorb(state, op(A, 1), CFG, 0)
    fire(state, 300_000)
    absorb(state, op(A, 2), CFG, 300_001)
    again = TriggerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


def test_book_folds_records_and_an_old_state_echo_never_wins() -> None:
    book = TriggerBook()
    view = LedgerView()
    view.trigger_sink = book
    view.assign(0)
    intent = op(A, 7)
    key = intent_key(intent)
    view.apply(0, key, trigger_record("trigger_intent", key, B, intent=intent.to_dict()))
    newer = TriggerState(B, fired=2)
    older = TriggerState(B, fired=1)
    skey = state_key(B)
    view.apply(0, skey, trigger_record("trigger_state", skey, B, state=newer.to_dict(), seq=5))
    view.apply(0, skey, trigger_record("trigger_state", skey, B, state=older.to_dict(), seq=4))
    states, intents = book.snapshot(0)
    assert states[B][1].fired == 2 and intents == {key: intent}
    assert view.size() == 0  # trigger records are not runs
    view.apply(0, key, None)
    assert book.snapshot(0)[1] == {}
    view.assign(0)  # a new assignment replays from the start
    assert book.snapshot(0) == ({}, {})


def _mapping(rule: dict[str, object], targets: dict[str, object] | None = None) -> object:
    return parse_mapping({"targets": targets or {"t": {"function": "f"}}, "rules": [rule]}, "test")


def test_mapping_trigger_on_an_exact_rule_or_its_target() -> None:
    trig = {"onUpstream": ["operation"], "debounceSeconds": 5, "cooldownSeconds": 0}
    mapping = _mapping({"dataset": B, "target": "t", "trigger": trig})
    found = mapping.triggers()  # type: ignore[attr-defined]
    assert found[B].debounce_seconds == 5 and found[B].max_depth == 1
    inherited = _mapping(
        {"dataset": C, "target": "t"}, {"t": {"function": "f", "trigger": trig}}
    ).triggers()  # type: ignore[attr-defined]
    assert set(inherited) == {C}


@pytest.mark.parametrize(
    "rule",
    [
        {"platform": "hive", "target": "t", "trigger": {"onUpstream": ["operation"]}},
        {"dataset": B, "target": "t", "trigger": {"onUpstream": ["sometimes"]}},
        {"dataset": B, "target": "t", "trigger": {"onUpstream": []}},
        {"dataset": B, "target": "t", "trigger": {"onUpstream": ["operation"], "maxDepth": 0}},
        {"dataset": B, "target": "t", "trigger": {"onUpstream": ["operation"], "debounce": 1}},
    ],
)
def test_mapping_refuses_bad_triggers(rule: dict[str, object]) -> None:
    with pytest.raises(MappingError):
        _mapping(rule)


def test_msk_policy_reads_the_timeseries_topic_only_with_triggers() -> None:
    from lambda_trigger.kafka_policy import MskAccess, msk_statements

    cluster = "arn:aws:kafka:us-east-1:123456789012:cluster/dh/abc-1"
    names = {
        "mcl_topic": "MetadataChangeLog_Versioned_v1",
        "ledger_topic": "runs",
        "dead_letter_topic": "dlq",
        "group_id": "g",
    }
    plain = {
        s["Sid"]: s["Resource"] for s in msk_statements(MskAccess.for_cluster(cluster, **names))
    }
    with_triggers = {
        s["Sid"]: s["Resource"]
        for s in msk_statements(
            MskAccess.for_cluster(
                cluster, **names, timeseries_topic="MetadataChangeLog_Timeseries_v1"
            )
        )
    }
    ts = "arn:aws:kafka:us-east-1:123456789012:topic/dh/abc-1/MetadataChangeLog_Timeseries_v1"
    assert ts not in plain["MskReadTopics"] and ts in with_triggers["MskReadTopics"]
    assert with_triggers["MskConsumerGroup"] == [
        "arn:aws:kafka:us-east-1:123456789012:group/dh/abc-1/g",
        "arn:aws:kafka:us-east-1:123456789012:group/dh/abc-1/g-triggers",
    ]
    assert plain["MskConsumerGroup"] == ["arn:aws:kafka:us-east-1:123456789012:group/dh/abc-1/g"]
