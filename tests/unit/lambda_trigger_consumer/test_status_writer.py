"""status_writer.py without a stack: coalescing, the fall-back when GMS refuses a batch, errors
reaching every waiting run, and the order of one run's writes. The GMS behaviour it relies on
(a batch is all or nothing) is tested against the GMS double in
tests/integration/test_status_batch.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from lambda_trigger.contract import DataHubStatus, RunResult
from lambda_trigger.datahub import DataHubUnavailable, PreconditionFailed
from lambda_trigger_consumer.status_writer import StatusWriter


def _result(status: DataHubStatus) -> RunResult:
    return RunResult(status, 1000, f"{status.value} report", 5, {})


class _DataHub:
    """Records the calls; `stored` is what DataHub would hold. The first call can be held
    until the test lets it go, so that the other writes queue up behind it meanwhile."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, DataHubStatus]]] = []
        self.stored: dict[str, DataHubStatus] = {}
        self.hold = threading.Event()
        self.hold.set()
        self.batch_error: Exception | None = None
        self.single_answers: dict[str, bool] = {}

    def write_result(self, run_id: str, result: RunResult) -> bool:
        self.hold.wait(30)
        self.calls.append([(run_id, result.status)])
        if not self.single_answers.get(run_id, True):
            return False
        self.stored[run_id] = result.status
        return True

    def write_results(self, results: list[tuple[str, RunResult]]) -> None:
        self.hold.wait(30)
        assert len({r for r, _ in results}) == len(results), "a run twice in one batch"
        self.calls.append([(r, res.status) for r, res in results])
        if self.batch_error is not None:
            raise self.batch_error
        for run_id, result in results:
            self.stored[run_id] = result.status


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _start(
    writer: StatusWriter, run_id: str, status: DataHubStatus, out: dict[str, object]
) -> threading.Thread:
    def go() -> None:
        try:
            out[f"{run_id}:{status.value}"] = writer.write_result(run_id, _result(status))
        except Exception as exc:
            out[f"{run_id}:{status.value}"] = exc

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def _queued(writer: StatusWriter, n: int) -> Callable[[], bool]:
    return lambda: len(writer._queue) == n


def test_writes_of_many_runs_share_one_call() -> None:
    datahub = _DataHub()
    writer = StatusWriter(datahub, linger_seconds=0.001, max_batch=50)  # type: ignore[arg-type]
    out: dict[str, object] = {}
    datahub.hold.clear()  # the first write goes alone and is held: the others queue
    threads = [_start(writer, "r0", DataHubStatus.SUCCESS, out)]
    _until(lambda: len(writer._queue) == 0 and writer._thread is not None)
    threads += [_start(writer, f"r{i}", DataHubStatus.SUCCESS, out) for i in range(1, 10)]
    _until(_queued(writer, 9))
    datahub.hold.set()
    for t in threads:
        t.join(30)
    writer.close()
    assert all(v is True for v in out.values()) and len(out) == 10
    assert [len(c) for c in datahub.calls] == [1, 9]  # 10 writes, 2 calls
    assert writer.batches == 1
    assert datahub.stored == {f"r{i}": DataHubStatus.SUCCESS for i in range(10)}


def test_a_refused_batch_is_written_run_by_run_and_each_run_gets_its_own_answer() -> None:
    datahub = _DataHub()
    datahub.batch_error = PreconditionFailed("Invalid update to immutable state (HTTP 422)")
    datahub.single_answers = {"r2": False}  # another writer's final status is there
    writer = StatusWriter(datahub, linger_seconds=0.001, max_batch=50)  # type: ignore[arg-type]
    out: dict[str, object] = {}
    datahub.hold.clear()
    threads = [_start(writer, "r0", DataHubStatus.SUCCESS, out)]
    _until(lambda: len(writer._queue) == 0 and writer._thread is not None)
    threads += [_start(writer, f"r{i}", DataHubStatus.FAILURE, out) for i in range(1, 4)]
    _until(_queued(writer, 3))
    datahub.hold.set()
    for t in threads:
        t.join(30)
    writer.close()
    assert out == {"r0:SUCCESS": True, "r1:FAILURE": True, "r2:FAILURE": False, "r3:FAILURE": True}
    # The refused batch, then each of its writes alone, in the order they were handed over.
    assert datahub.calls[1] == [(f"r{i}", DataHubStatus.FAILURE) for i in range(1, 4)]
    assert datahub.calls[2:] == [[(f"r{i}", DataHubStatus.FAILURE)] for i in range(1, 4)]
    assert datahub.stored == {
        "r0": DataHubStatus.SUCCESS,
        "r1": DataHubStatus.FAILURE,
        "r3": DataHubStatus.FAILURE,
    }


def test_datahub_away_reaches_every_waiting_run_and_a_later_write_lands() -> None:
    datahub = _DataHub()
    datahub.batch_error = DataHubUnavailable("503")
    writer = StatusWriter(datahub, linger_seconds=0.001, max_batch=50)  # type: ignore[arg-type]
    out: dict[str, object] = {}
    datahub.hold.clear()
    threads = [_start(writer, "r0", DataHubStatus.SUCCESS, out)]
    _until(lambda: len(writer._queue) == 0 and writer._thread is not None)
    threads += [_start(writer, f"r{i}", DataHubStatus.SUCCESS, out) for i in (1, 2)]
    _until(_queued(writer, 2))
    datahub.hold.set()
    for t in threads:
        t.join(30)
    assert out["r0:SUCCESS"] is True
    assert isinstance(out["r1:SUCCESS"], DataHubUnavailable)
    assert isinstance(out["r2:SUCCESS"], DataHubUnavailable)
    assert "r1" not in datahub.stored  # not lost: the caller (the run driver) retries
    datahub.batch_error = None
    assert writer.write_result("r1", _result(DataHubStatus.SUCCESS)) is True
    writer.close()
    assert datahub.stored["r1"] == DataHubStatus.SUCCESS


def test_one_runs_writes_go_in_order_never_in_one_batch() -> None:
    datahub = _DataHub()
    writer = StatusWriter(datahub, linger_seconds=0.001, max_batch=50)  # type: ignore[arg-type]
    out: dict[str, object] = {}
    datahub.hold.clear()
    threads = [_start(writer, "x", DataHubStatus.SUCCESS, out)]
    _until(lambda: len(writer._queue) == 0 and writer._thread is not None)
    threads.append(_start(writer, "a", DataHubStatus.RUNNING, out))  # the older write
    _until(_queued(writer, 1))
    threads.append(_start(writer, "a", DataHubStatus.SUCCESS, out))  # the final one, later
    _until(_queued(writer, 2))
    threads.append(_start(writer, "b", DataHubStatus.FAILURE, out))
    _until(_queued(writer, 3))
    datahub.hold.set()
    for t in threads:
        t.join(30)
    writer.close()
    assert datahub.calls[1] == [("a", DataHubStatus.RUNNING), ("b", DataHubStatus.FAILURE)]
    assert datahub.calls[2] == [("a", DataHubStatus.SUCCESS)]
    assert datahub.stored["a"] == DataHubStatus.SUCCESS  # the final status is not overwritten


def test_max_batch_is_kept_and_the_rest_follows() -> None:
    datahub = _DataHub()
    writer = StatusWriter(datahub, linger_seconds=0.001, max_batch=3)  # type: ignore[arg-type]
    out: dict[str, object] = {}
    datahub.hold.clear()
    threads = [_start(writer, "r0", DataHubStatus.SUCCESS, out)]
    _until(lambda: len(writer._queue) == 0 and writer._thread is not None)
    for i in range(1, 8):
        threads.append(_start(writer, f"r{i}", DataHubStatus.SUCCESS, out))
        _until(_queued(writer, i))
    datahub.hold.set()
    for t in threads:
        t.join(30)
    writer.close()
    assert [[r for r, _ in c] for c in datahub.calls] == [
        ["r0"],
        ["r1", "r2", "r3"],
        ["r4", "r5", "r6"],
        ["r7"],
    ]


@pytest.mark.parametrize(("linger", "most"), [(0.0, 50), (0.005, 1)])
def test_batching_off_writes_each_alone_from_the_callers_thread(linger: float, most: int) -> None:
    datahub = _DataHub()
    writer = StatusWriter(datahub, linger_seconds=linger, max_batch=most)  # type: ignore[arg-type]
    assert writer.write_result("r0", _result(DataHubStatus.SUCCESS)) is True
    assert writer._thread is None
    assert datahub.calls == [[("r0", DataHubStatus.SUCCESS)]]


def test_after_close_a_write_is_refused_as_datahub_away() -> None:
    writer = StatusWriter(_DataHub(), linger_seconds=0.001)  # type: ignore[arg-type]
    writer.close()
    with pytest.raises(DataHubUnavailable):
        writer.write_result("r0", _result(DataHubStatus.SUCCESS))
