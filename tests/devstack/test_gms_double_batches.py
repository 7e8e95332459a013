"""The GMS double under many writers at once (issue 24), and batch writes with conditions.

- GMS commits a write, then produces its MCLs and waits for them outside the transaction
  (EntityServiceImpl.emitMCL): one write waiting for the broker must not hold up another's
  commit, and MCLs of one URN still leave in commit order.
- A batch (OpenAPI v3's list POST, Rest.li's ingestProposalBatch) is validated as a whole: one
  failed `If-Version-Match` fails the whole request and writes none of it, for an API request
  (EntityServiceImpl.ingestAspectsToLocalDB: `throw new ValidationException(exceptions)`).
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.gms_double import GmsDouble
from devstack.gms_double.mcl import Delivery, MclRequest, ProducedMcl

pytestmark = pytest.mark.integration

RESULT = "dataHubExecutionRequestResult"


@pytest.fixture(scope="module")
def double(kafka_bootstrap: str) -> Iterator[GmsDouble]:
    suffix = uuid.uuid4().hex[:10]
    gms = GmsDouble(
        kafka_bootstrap,
        versioned_topic=f"test-gms-batches-{suffix}.MetadataChangeLog_Versioned_v1",
        timeseries_topic=f"test-gms-batches-{suffix}.MetadataChangeLog_Timeseries_v1",
        versioned_partitions=3,
        timeseries_partitions=1,
    ).start()
    try:
        yield gms
    finally:
        gms.stop()


def _urn() -> str:
    return f"urn:li:dataHubExecutionRequest:b-{uuid.uuid4().hex[:12]}"


def _auth(gms: GmsDouble) -> dict[str, str]:
    return {"Authorization": f"Bearer {gms.admin_token}", "X-RestLi-Protocol-Version": "2.0.0"}


def _proposal(urn: str, value: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    proposal: dict[str, Any] = {
        "entityType": "dataHubExecutionRequest",
        "entityUrn": urn,
        "changeType": "UPSERT",
        "aspectName": RESULT,
        "aspect": {"value": json.dumps(value), "contentType": "application/json"},
    }
    if headers:
        proposal["headers"] = headers
    return proposal


def _write(gms: GmsDouble, urn: str, status: str) -> httpx.Response:
    return httpx.post(
        f"{gms.url}/aspects?action=ingestProposal",
        headers=_auth(gms),
        json={"proposal": _proposal(urn, {"status": status}), "async": "false"},
        timeout=60,
    )


def test_a_write_waiting_for_its_mcls_does_not_hold_up_another_write(double: GmsDouble) -> None:
    held, release = _urn(), threading.Event()
    producer = double._producer
    assert producer is not None
    real = producer.produce

    class _Held(Delivery):
        def __init__(self, inner: Delivery) -> None:
            super().__init__(0)
            self._inner = inner

        def wait(self, timeout: float = 35.0) -> list[ProducedMcl]:
            release.wait(60)  # the broker "has not acknowledged" until the test says so
            return self._inner.wait(timeout)

    def produce(requests: list[MclRequest]) -> Delivery:
        delivery = real(requests)
        return _Held(delivery) if any(r.key == held for r in requests) else delivery

    assert double._pipeline is not None
    double._pipeline._producer = produce
    try:
        answers: list[int] = []
        first = threading.Thread(
            target=lambda: answers.append(_write(double, held, "RUNNING").status_code)
        )
        first.start()
        # The held write is committed (readable) before it waits for its MCLs.
        for _ in range(600):
            if double.get_aspect(held, RESULT) is not None:
                break
            threading.Event().wait(0.05)
        assert double.get_aspect(held, RESULT) == {"status": "RUNNING"}
        other = _urn()
        assert _write(double, other, "RUNNING").status_code == 200  # not behind the held one
        assert first.is_alive()  # still waiting for "the broker"
        release.set()
        first.join(60)
        assert answers == [200]
    finally:
        release.set()
        double._pipeline._producer = real


def test_concurrent_writes_of_one_urn_leave_their_mcls_in_commit_order(double: GmsDouble) -> None:
    urn = _urn()
    before = len(double.mcl_log())
    statuses = [f"RUNNING-{t}-{i}" for t in range(4) for i in range(10)]

    def writer(t: int) -> None:
        for i in range(10):
            assert _write(double, urn, f"RUNNING-{t}-{i}").status_code == 200

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    mcls = [m for m in double.mcl_log()[before:] if m.key == urn and m.aspect_name == RESULT]
    assert len(mcls) == len(statuses)
    versions = [int(m.value["systemMetadata"]["version"]) for m in mcls]
    assert versions == sorted(versions) == list(range(1, len(statuses) + 1))
    offsets = [m.offset for m in mcls]
    assert offsets == sorted(offsets)  # one partition per URN: broker order = commit order
    # Each MCL's previous value is the value the MCL before it carried.
    for prev, cur in itertools.pairwise(mcls):
        assert cur.value["previousAspectValue"]["value"] == prev.value["aspect"]["value"]


def test_openapi_batch_with_one_failed_precondition_writes_nothing(double: GmsDouble) -> None:
    ok, stale = _urn(), _urn()
    assert _write(double, stale, "RUNNING").status_code == 200
    before = len(double.mcl_log())
    answer = httpx.post(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest?async=false",
        headers=_auth(double),
        json=[
            {"urn": ok, RESULT: {"value": {"status": "SUCCESS"}}},
            {
                "urn": stale,
                RESULT: {"value": {"status": "SUCCESS"}, "headers": {"If-Version-Match": "-1"}},
            },
        ],
        timeout=60,
    )
    assert answer.status_code == 412
    assert "Expected version -1, actual version 1" in json.dumps(answer.json())
    assert double.get_aspect(ok, RESULT) is None  # the unconditional item was not written
    assert double.get_aspect(stale, RESULT) == {"status": "RUNNING"}
    assert len(double.mcl_log()) == before


def test_restli_batch_with_one_refused_item_writes_nothing(double: GmsDouble) -> None:
    ok, final = _urn(), _urn()
    assert _write(double, final, "SUCCESS").status_code == 200
    before = len(double.mcl_log())
    answer = httpx.post(
        f"{double.url}/aspects?action=ingestProposalBatch",
        headers=_auth(double),
        json={
            "proposals": [
                _proposal(ok, {"status": "FAILURE"}),
                _proposal(final, {"status": "FAILURE"}),  # immutable: SUCCESS is stored
            ],
            "async": "false",
        },
        timeout=60,
    )
    assert answer.status_code == 422
    assert "Invalid update to immutable state" in answer.json()["message"]
    assert double.get_aspect(ok, RESULT) is None
    assert double.get_aspect(final, RESULT) == {"status": "SUCCESS"}
    assert len(double.mcl_log()) == before


def test_batch_with_per_item_conditions_that_hold_writes_every_item(double: GmsDouble) -> None:
    a, b = _urn(), _urn()
    assert _write(double, b, "RUNNING").status_code == 200
    answer = httpx.post(
        f"{double.url}/openapi/v3/entity/dataHubExecutionRequest?async=false",
        headers=_auth(double),
        json=[
            {
                "urn": a,
                RESULT: {"value": {"status": "RUNNING"}, "headers": {"If-Version-Match": "-1"}},
            },
            {
                "urn": b,
                RESULT: {"value": {"status": "SUCCESS"}, "headers": {"If-Version-Match": "1"}},
            },
        ],
        timeout=60,
    )
    assert answer.status_code == 200
    assert double.get_aspect(a, RESULT) == {"status": "RUNNING"}
    assert double.get_aspect(b, RESULT) == {"status": "SUCCESS"}
