"""The run ledger's record folding, and the destination-record parser (no broker needed)."""

from __future__ import annotations

import json

import pytest

from lambda_trigger.contract import RunRequest
from lambda_trigger_consumer.completion import parse_destination_record
from lambda_trigger_consumer.ledger import (
    LedgerFormatError,
    LedgerView,
    Phase,
    RunEntry,
    cancel_record,
    completion_record,
    fold,
    invalid_record,
    partition_for,
    request_record,
)

DATASET = "urn:li:dataset:(urn:li:dataPlatform:athena,db.table,PROD)"
URN_PREFIX = "urn:li:dataHubExecutionRequest:"


def _request(run_id: str = "lt-1") -> RunRequest:
    return RunRequest(run_id, DATASET, "lambda-trigger", "SDK", 1000, actor_urn="urn:li:corpuser:a")


def test_a_request_starts_a_run_and_a_redelivered_one_changes_nothing() -> None:
    entry = fold(None, request_record(_request(), "urn:li:corpuser:w"), "lt-1")
    assert entry is not None and entry.phase == Phase.REQUESTED
    assert entry.run_request() == _request() and entry.writer == "urn:li:corpuser:w"
    entry.phase = Phase.INVOKING
    again = fold(entry, request_record(_request(), "urn:li:corpuser:w"), "lt-1")
    assert again is not None and again.phase == Phase.INVOKING


def test_snapshots_replace_older_ones_but_never_newer_ones() -> None:
    newer = RunEntry("lt-1", DATASET, Phase.STARTED, seq=3)
    older = RunEntry("lt-1", DATASET, Phase.CLAIMED, seq=2)
    assert fold(older, newer.to_json(), "lt-1") == newer
    kept = fold(newer, older.to_json(), "lt-1")
    assert kept is not None and kept.phase == Phase.STARTED


def test_facts_survive_a_snapshot_written_before_the_owner_read_them() -> None:
    entry = fold(None, request_record(_request(), None), "lt-1")
    entry = fold(entry, cancel_record("lt-1", DATASET, "urn:li:corpuser:c"), "lt-1")
    entry = fold(entry, completion_record("lt-1", DATASET, {"condition": "Success"}), "lt-1")
    snapshot = RunEntry("lt-1", DATASET, Phase.STARTED, seq=1)  # written without them
    after = fold(entry, snapshot.to_json(), "lt-1")
    assert after is not None and after.cancel_by == "urn:li:corpuser:c"
    assert after.completion == {"condition": "Success"}


def test_a_tombstone_ends_the_run_and_a_closing_run_ignores_old_echoes() -> None:
    entry = RunEntry("lt-1", DATASET, Phase.STARTED, seq=1)
    assert fold(entry, None, "lt-1") is None
    entry.closing = True
    assert fold(entry, RunEntry("lt-1", DATASET, Phase.STARTED, seq=5).to_json(), "lt-1") is entry


def test_an_invalid_request_and_a_foreign_record() -> None:
    entry = fold(None, invalid_record("lt-2", "args must be a map"), "lt-2")
    assert entry is not None and entry.invalid == "args must be a map"
    with pytest.raises(LedgerFormatError):
        fold(None, b"not json", "lt-3")
    with pytest.raises(LedgerFormatError):
        fold(None, json.dumps({"kind": "weird"}).encode(), "lt-3")


def test_every_run_of_a_dataset_has_one_partition() -> None:
    assert {partition_for(DATASET, f"lt-{i}", 6) for i in range(50)} == {
        partition_for(DATASET, "x", 6)
    }
    assert 0 <= partition_for(None, "lt-9", 6) < 6


def test_the_view_counts_a_partition_only_once_it_is_read_to_its_end() -> None:
    view = LedgerView()
    view.assign(0)
    view.apply(0, "lt-1", request_record(_request(), None))
    assert list(view.runs()) == []
    view.loaded(0)
    assert [e.run_id for _p, e in view.runs()] == ["lt-1"]
    assert view.take_touched() == {"lt-1": 0} and view.take_touched() == {}
    view.close_local(0, "lt-1")
    assert list(view.runs()) == []
    view.revoke(0)
    assert not view.owns(0)


def _record(**overrides: object) -> str:
    record = {
        "version": "1.0",
        "timestamp": "2026-11-29T10:00:00.000Z",
        "requestContext": {
            "requestId": "req-1",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
            "condition": "Success",
            "approximateInvokeCount": 1,
        },
        "requestPayload": {
            "runId": "lt-1",
            "executionRequestUrn": URN_PREFIX + "lt-1",
            "datasetUrn": DATASET,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "responsePayload": {"rows": 3},
    }
    record.update(overrides)
    return json.dumps(record)


def test_destination_records_are_matched_by_the_run_id_in_the_request_payload() -> None:
    parsed = parse_destination_record(_record(), URN_PREFIX)
    assert parsed is not None
    run_id, dataset, completion = parsed
    assert (run_id, dataset) == ("lt-1", DATASET)
    assert completion["condition"] == "Success" and completion["requestId"] == "req-1"
    assert json.loads(completion["response"]) == {"rows": 3}
    other = _record(requestPayload={"orderIds": [1, 2]})  # another function's event
    assert parse_destination_record(other, URN_PREFIX) is None
    with pytest.raises(ValueError):
        parse_destination_record('{"hello": 1}', URN_PREFIX)
    with pytest.raises(ValueError):
        parse_destination_record("not json", URN_PREFIX)


def test_the_view_copies_only_the_runs_asked_for_and_counts_all_without_copying() -> None:
    view = LedgerView()
    for partition in (0, 1):
        view.assign(partition)
        view.loaded(partition)
    other = "urn:li:dataset:(urn:li:dataPlatform:athena,db.other,PROD)"
    for i, (partition, dataset) in enumerate([(0, DATASET), (1, DATASET), (1, other)]):
        request = RunRequest(f"lt-{i}", dataset, "lambda-trigger", "SDK", 1000)
        view.apply(partition, f"lt-{i}", request_record(request, None))
    assert [(p, e.run_id) for p, e in view.runs(where=lambda e: e.dataset_urn == DATASET)] == [
        (0, "lt-0"),
        (1, "lt-1"),
    ]
    assert [e.run_id for _p, e in view.runs(partition=1)] == ["lt-1", "lt-2"]
    # A copy: changing it leaves the view's run alone.
    _p, copy = next(view.runs(partition=0))
    copy.phase = Phase.STARTED
    stored = view.get(0, "lt-0")
    assert stored is not None and stored.phase == Phase.REQUESTED
    census = view.census()
    assert [(c.partition, c.run_id, c.phase, c.has_result) for c in census] == [
        (0, "lt-0", Phase.REQUESTED, False),
        (1, "lt-1", Phase.REQUESTED, False),
        (1, "lt-2", Phase.REQUESTED, False),
    ]
    before = view.generation
    view.revoke(1)  # the driver looks at every run again when the owned partitions change
    assert view.generation > before
    assert [c.run_id for c in view.census()] == ["lt-0"]


def test_a_datasets_runs_are_found_through_its_index_as_the_runs_change() -> None:
    """Issue 24: the run driver asks for a dataset's open runs before every start; the view
    answers from an index, which follows every way a run arrives, changes and ends."""
    view = LedgerView()
    view.assign(0)
    other = "urn:li:dataset:(urn:li:dataPlatform:athena,db.other,PROD)"
    for i, dataset in enumerate([DATASET, DATASET, other]):
        request = RunRequest(f"lt-{i}", dataset, "lambda-trigger", "SDK", 1000)
        view.apply(0, f"lt-{i}", request_record(request, None))
    assert view.runs_of(0, DATASET) == []  # not read to its end yet
    view.loaded(0)
    assert sorted(e.run_id for e in view.runs_of(0, DATASET)) == ["lt-0", "lt-1"]
    assert [e.run_id for e in view.runs_of(0, other)] == ["lt-2"]
    assert view.runs_of(1, DATASET) == []  # not ours
    # The owner's snapshot replaces the entry: still found, as it is now.
    entry = view.get(0, "lt-0")
    assert entry is not None
    entry.phase, entry.seq = Phase.CLAIMED, 1
    view.update_local(0, entry)
    assert {e.run_id: e.phase for e in view.runs_of(0, DATASET)}["lt-0"] == Phase.CLAIMED
    # A closing run is not open; a tombstone removes it from the index too.
    view.close_local(0, "lt-0")
    assert [e.run_id for e in view.runs_of(0, DATASET)] == ["lt-1"]
    view.apply(0, "lt-0", None)
    view.apply(0, "lt-1", None)
    assert view.runs_of(0, DATASET) == []
    assert view._partitions[0].by_dataset == {other: {"lt-2"}}
    # A copy: changing it leaves the view's run alone.
    found = view.runs_of(0, other)[0]
    found.phase = Phase.STARTED
    stored = view.get(0, "lt-2")
    assert stored is not None and stored.phase == Phase.REQUESTED
