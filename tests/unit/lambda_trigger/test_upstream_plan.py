"""The plan of a "run with upstream" (common/lambda_trigger/upstream_plan.py)."""

from __future__ import annotations

import json

import pytest

from lambda_trigger.upstream_plan import (
    MAX_RUNS,
    Plan,
    PlanError,
    build_plan,
    child_run_id,
    decode_plan,
)


def ds(name: str) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:hive,{name},PROD)"


A, B, C, D, E, X = (ds(n) for n in "abcdex")


def plan_of(
    edges: dict[str, list[str]],
    root: str = C,
    depth: int = 3,
    unmapped: frozenset[str] = frozenset(),
    refused: frozenset[str] = frozenset(),
) -> Plan:
    return build_plan(
        root,
        depth,
        edges.get,
        lambda urn: urn not in unmapped,
        lambda urn: urn not in refused,
    )


def test_a_chain_runs_in_topological_waves_the_requested_dataset_last() -> None:
    plan = plan_of({C: [B], B: [A]})
    assert plan.waves == [[A], [B], [C]]
    assert plan.skipped == []
    assert plan.runs == 3


def test_a_diamond_shares_a_wave_and_waits_for_the_longest_path() -> None:
    # C reads B and D; B reads A; D reads A too; E is read by C directly
    plan = plan_of({C: [B, D, E], B: [A], D: [A]})
    assert plan.waves == [[A, E], [B, D], [C]]


def test_the_depth_limit_lists_the_first_datasets_beyond_it() -> None:
    plan = plan_of({C: [B], B: [A], A: [X]}, depth=2)
    assert plan.waves == [[A], [B], [C]]
    assert plan.skipped == [(X, "too_deep")]
    assert plan_of({C: [B], B: [A]}, depth=1).waves == [[B], [C]]


def test_a_dataset_reached_short_and_long_counts_by_its_shortest_distance() -> None:
    # A is a direct upstream of C and two hops away through B: depth 1 keeps it, and the
    # edge B -> A between two datasets of the plan still orders them.
    plan = plan_of({C: [A, B], B: [A], A: [X]}, depth=1)
    assert plan.waves == [[A], [B], [C]]
    assert plan.skipped == [(X, "too_deep")]


def test_cycle_members_are_skipped_and_the_order_passes_through_them() -> None:
    # A -> B <-> D -> C: B and D are a cycle, A still runs before C
    plan = plan_of({C: [D], D: [B], B: [D, A]})
    assert plan.waves == [[A], [C]]
    assert sorted(plan.skipped) == [(B, "cycle"), (D, "cycle")]


def test_a_cycle_through_the_requested_dataset_skips_the_others_in_it() -> None:
    plan = plan_of({C: [B], B: [C, A]})
    assert plan.waves == [[A], [C]]
    assert plan.skipped == [(B, "cycle")]


def test_a_self_edge_is_a_cycle() -> None:
    plan = plan_of({C: [B], B: [B]})
    assert plan.waves == [[C]]
    assert plan.skipped == [(B, "cycle")]


def test_unmapped_and_not_allowed_are_skipped_but_keep_the_order() -> None:
    plan = plan_of({C: [B], B: [A]}, unmapped=frozenset({B}))
    assert plan.waves == [[A], [C]]
    assert plan.skipped == [(B, "unmapped")]
    plan = plan_of({C: [B, D], B: [A]}, refused=frozenset({D}))
    assert plan.waves == [[A], [B], [C]]
    assert plan.skipped == [(D, "not_allowed")]


def test_no_upstreams_is_the_dataset_alone() -> None:
    plan = plan_of({})
    assert plan.waves == [[C]]
    assert plan.to_public()["waves"] == [[{"datasetUrn": C, "name": "c"}]]


def test_too_many_runs_is_refused_not_cut() -> None:
    ups = [ds(f"u{i}") for i in range(MAX_RUNS)]
    with pytest.raises(PlanError, match="at most"):
        plan_of({C: ups})
    with pytest.raises(PlanError):
        plan_of({C: [B]}, depth=6)


def test_public_shape_has_no_targets() -> None:
    public = plan_of({C: [B], B: [A], A: [X]}, depth=2).to_public()
    assert public == {
        "datasetUrn": C,
        "maxDepth": 2,
        "waves": [
            [{"datasetUrn": A, "name": "a"}],
            [{"datasetUrn": B, "name": "b"}],
            [{"datasetUrn": C, "name": "c"}],
        ],
        "skipped": [{"datasetUrn": X, "reason": "too_deep"}],
        "runs": 3,
    }


def test_encode_decode_round_trip_and_hostile_plans() -> None:
    plan = plan_of({C: [B], B: [A]})
    back = decode_plan(C, plan.encode())
    assert back.waves == plan.waves and back.max_depth == 3
    bad = [
        None,
        "not json",
        "[]",
        json.dumps({"maxDepth": 9, "waves": [[C]]}),
        json.dumps({"maxDepth": True, "waves": [[C]]}),
        json.dumps({"maxDepth": 2, "waves": []}),
        json.dumps({"maxDepth": 2, "waves": [[A], [C, B]]}),  # last wave not the dataset alone
        json.dumps({"maxDepth": 2, "waves": [[A], [A], [C]]}),  # twice
        json.dumps({"maxDepth": 2, "waves": [["urn:li:corpuser:x"], [C]]}),
        json.dumps({"maxDepth": 2, "waves": [[ds(f"u{i}") for i in range(MAX_RUNS)], [C]]}),
        "x" * 70_000,
    ]
    for raw in bad:
        with pytest.raises(PlanError):
            decode_plan(C, raw)


def test_child_run_ids_are_deterministic_and_distinct() -> None:
    assert child_run_id("lt-1", A) == child_run_id("lt-1", A)
    assert child_run_id("lt-1", A) != child_run_id("lt-1", B)
    assert child_run_id("lt-1", A) != child_run_id("lt-2", A)
    assert child_run_id("lt-1", A).startswith("lt-1-up-")
