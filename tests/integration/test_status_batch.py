"""Final statuses of many runs in one GMS call (status_writer.py, DataHubClient.write_results)
through the real acryl-datahub SDK against the GMS double: one call for several runs, a batch
GMS refuses writes nothing and each run then gets its own answer, no status is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from devstack.gms_double import GmsDouble
from lambda_trigger.contract import DataHubStatus, RunResult
from lambda_trigger.datahub import DataHubClient, PreconditionFailed, WriteRejected
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import DataHubSettings
from lambda_trigger.urns import execution_request_urn
from lambda_trigger_consumer.status_writer import StatusWriter

RESULT = "dataHubExecutionRequestResult"


def _result(status: DataHubStatus, nonce: str = "") -> RunResult:
    details = {"claim": nonce} if nonce else {}
    return RunResult(status, 1000, f"{status.value}", 5, details)


class _HeldClient(DataHubClient):
    """Its first single write waits until the test lets it go: the writes handed over
    meanwhile queue up and leave together."""

    hold = threading.Event()

    def write_result(self, run_id: str, result: RunResult) -> bool:
        self.hold.wait(60)
        return super().write_result(run_id, result)


@pytest.fixture
def client(gms: GmsDouble) -> Iterator[_HeldClient]:
    c = _HeldClient(DataHubSettings(gms_url=gms.url, gms_token=gms.admin_token, executor_id="x"))
    c.warm()  # as the consumer does: the SDK picks its ingestion mode from GMS's /config
    c.hold = threading.Event()
    c.hold.set()
    yield c
    c.close()


def _claimed(client: DataHubClient, n: int) -> list[str]:
    runs = [new_run_id() for _ in range(n)]
    for run_id in runs:
        assert client.claim(run_id, _result(DataHubStatus.RUNNING, nonce=run_id)).ours
    return runs


def _status(gms: GmsDouble, run_id: str) -> str | None:
    stored = gms.get_aspect(execution_request_urn(run_id), RESULT)
    return None if stored is None else str(stored["status"])


def _ingest_calls(gms: GmsDouble) -> int:
    return sum(
        1
        for r in gms.requests_seen()
        if r.method == "POST" and r.path.startswith(("/aspects", "/openapi/v3/entity/"))
    )


def test_write_results_is_one_call_for_many_runs(gms: GmsDouble, client: DataHubClient) -> None:
    runs = _claimed(client, 5)
    before = _ingest_calls(gms)
    client.write_results([(r, _result(DataHubStatus.SUCCESS)) for r in runs])
    assert _ingest_calls(gms) - before == 1
    assert [_status(gms, r) for r in runs] == ["SUCCESS"] * 5


def test_a_batch_gms_refuses_writes_none_of_its_runs(gms: GmsDouble, client: DataHubClient) -> None:
    runs = _claimed(client, 3)
    assert client.write_result(runs[1], _result(DataHubStatus.SUCCESS))  # final: immutable
    with pytest.raises((PreconditionFailed, WriteRejected)):
        client.write_results([(r, _result(DataHubStatus.FAILURE)) for r in runs])
    assert [_status(gms, r) for r in runs] == ["RUNNING", "SUCCESS", "RUNNING"]


def test_status_writer_falls_back_run_by_run_and_loses_nothing(
    gms: GmsDouble, client: _HeldClient
) -> None:
    runs = _claimed(client, 5)
    foreign = runs[2]
    assert client.write_result(foreign, _result(DataHubStatus.CANCELLED))  # someone else's end
    writer = StatusWriter(client, linger_seconds=0.001, max_batch=50)
    answers: dict[str, object] = {}

    def write(run_id: str) -> None:
        try:
            answers[run_id] = writer.write_result(run_id, _result(DataHubStatus.SUCCESS))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            answers[run_id] = exc

    first, rest = new_run_id(), runs
    assert client.claim(first, _result(DataHubStatus.RUNNING, nonce=first)).ours
    client.hold.clear()
    threads = [threading.Thread(target=write, args=(first,))]
    threads[0].start()
    deadline = time.monotonic() + 30
    while writer._thread is None or writer._queue:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for run_id in rest:
        threads.append(threading.Thread(target=write, args=(run_id,)))
        threads[-1].start()
    while len(writer._queue) < len(rest):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    before = _ingest_calls(gms)
    client.hold.set()
    for t in threads:
        t.join(60)
    writer.close()
    assert answers == {first: True, **{r: r != foreign for r in rest}}
    assert _status(gms, foreign) == "CANCELLED"
    assert all(_status(gms, r) == "SUCCESS" for r in [first, *rest] if r != foreign)
    # first alone, the refused batch of 5, then each of the 5 alone
    assert _ingest_calls(gms) - before == 1 + 1 + 5
