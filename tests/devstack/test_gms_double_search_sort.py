"""The GMS double's search sorts as ESUtils.buildSortOrder does: each criterion's field in its
order (numbers as numbers), documents without the field last, then urn ascending."""

from __future__ import annotations

from devstack.gms_double.search import SearchIndex
from devstack.gms_double.store import AspectRow, AspectStore

KEY = "dataHubExecutionRequestKey"
INPUT = "dataHubExecutionRequestInput"


def _store(requested: dict[str, int | None]) -> AspectStore:
    store = AspectStore()
    for run_id, at in requested.items():
        urn = f"urn:li:dataHubExecutionRequest:{run_id}"
        store.put_latest(urn, KEY, AspectRow({"id": run_id}, {}, 0, "x"), keep_previous=False)
        value = {"task": "t", "args": {}, "executorId": "e", "source": {"type": "s"}}
        if at is not None:
            value["requestedAt"] = at
        store.put_latest(urn, INPUT, AspectRow(value, {}, 0, "x"), keep_previous=False)
    return store


def _order(store: AspectStore, order: str, count: int = 10) -> list[str]:
    page = SearchIndex(store).scroll(
        types=["EXECUTION_REQUEST"],
        query="*",
        or_filters=None,
        count=count,
        scroll_id=None,
        include_soft_deleted=False,
        sort=[{"field": "requestTimeMs", "sortOrder": order}],
    )
    return [hit.urn.rsplit(":", 1)[1] for hit in page.hits]


def test_descending_and_ascending_sort_numbers_as_numbers_missing_last_ties_by_urn() -> None:
    # 9 < 10 as numbers (as text "9" > "10"); b and c tie; z has no requestedAt.
    store = _store({"a": 9, "b": 10, "c": 10, "d": 100, "z": None})
    assert _order(store, "DESCENDING") == ["d", "b", "c", "a", "z"]
    assert _order(store, "ASCENDING") == ["a", "b", "c", "d", "z"]
