from __future__ import annotations

from lambda_trigger_consumer.offsets import OffsetTracker

TP = ("MetadataChangeLog_Versioned_v1", 0)


def test_commit_never_passes_an_unfinished_record() -> None:
    t = OffsetTracker()
    t.seen(TP, 0)
    t.started(TP, 1)
    t.started(TP, 2)
    t.seen(TP, 3)
    assert t.committable() == {TP: 1}
    t.finished(TP, 2)
    assert t.committable() == {TP: 1}
    t.finished(TP, 1)
    assert t.committable() == {TP: 4}


def test_only_moved_offsets_are_reported() -> None:
    t = OffsetTracker()
    t.seen(TP, 9)
    t.mark_committed(t.committable())
    assert t.committable() == {}
    t.seen(TP, 10)
    assert t.committable() == {TP: 11}


def test_forget_and_pending_per_partition() -> None:
    other = ("t", 1)
    t = OffsetTracker()
    t.started(TP, 5)
    t.started(other, 1)
    assert t.pending([TP]) == 1 and t.pending() == 2
    t.forget([TP])
    assert t.pending() == 1
    assert TP not in t.committable()
    t.finished(TP, 5)  # a late finish for a revoked partition is harmless
    assert t.committable() == {other: 1}
