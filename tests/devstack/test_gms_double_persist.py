"""The GMS double's SQLite state (devstack/gms_double/persist.py): written row by row, restored
whole, older JSON state imported. No broker needed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from devstack.gms_double.persist import StateDb
from devstack.gms_double.store import AspectRow, AspectStore

URN = "urn:li:dataHubExecutionRequest:persist-1"


def _row(status: str, version: str) -> AspectRow:
    return AspectRow({"status": status}, {"version": version}, 1, "urn:li:corpuser:datahub")


def test_a_write_touches_only_its_own_rows(tmp_path: Path) -> None:
    db = StateDb(tmp_path / "state.sqlite3")
    store = AspectStore(db)
    for i in range(200):  # a store that is not empty
        store.put_latest(
            f"urn:li:dataHubExecutionRequest:other-{i}", "x", _row("A", "1"), keep_previous=False
        )
    db.commit()
    conn = db._conn  # the connection's change counter, read without a second connection
    before = conn.total_changes
    store.put_latest(URN, "dataHubExecutionRequestResult", _row("RUNNING", "1"), keep_previous=True)
    db.commit()
    assert conn.total_changes - before == 1  # the new latest row only
    before = conn.total_changes
    store.put_latest(URN, "dataHubExecutionRequestResult", _row("SUCCESS", "2"), keep_previous=True)
    db.commit()
    assert conn.total_changes - before == 2  # the old value as version 1, the new latest
    db.close()


def test_state_is_restored_with_history_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = StateDb(path)
    store = AspectStore(db)
    store.put_latest(URN, "dataHubExecutionRequestResult", _row("RUNNING", "1"), keep_previous=True)
    store.put_latest(URN, "dataHubExecutionRequestResult", _row("SUCCESS", "2"), keep_previous=True)
    store.put_latest(
        "urn:li:dataHubExecutionRequest:gone", "k", _row("A", "1"), keep_previous=False
    )
    store.put_timeseries(URN, "ts", _row("T", "1"))
    assert store.delete_urn("urn:li:dataHubExecutionRequest:gone") == (1, 0)
    db.put_setting("admin_token", "tok")
    db.close()

    again = StateDb(path)
    restored = AspectStore()
    settings = again.load(restored)
    assert settings == {"admin_token": "tok"}
    latest = restored.get(URN, "dataHubExecutionRequestResult", 0)
    oldest = restored.get(URN, "dataHubExecutionRequestResult", 1)
    assert latest is not None and latest[0].value == {"status": "SUCCESS"}
    assert oldest is not None and oldest[0].value == {"status": "RUNNING"}
    assert restored.timeseries_latest(URN, "ts") is not None
    assert restored.urns() == {URN}
    again.close()


def test_an_older_json_state_file_is_imported_once(tmp_path: Path) -> None:
    path = tmp_path / "gms-state.json"
    legacy = {
        "format": 1,
        "admin_token": "legacy-token",
        "credentials": {"tokens": {}, "sessions": {}},
        "store": {
            "latest": [
                {
                    "urn": URN,
                    "aspect": "dataHubExecutionRequestResult",
                    "value": {"status": "RUNNING"},
                    "system_metadata": {"version": "1"},
                    "created_on": 5,
                    "created_by": "urn:li:corpuser:datahub",
                }
            ],
            "history": [],
            "timeseries": [],
        },
    }
    path.write_text(json.dumps(legacy))
    db = StateDb(path)
    store = AspectStore()
    settings = db.load(store)
    db.close()
    assert settings["admin_token"] == "legacy-token"
    assert store.latest(URN, "dataHubExecutionRequestResult") is not None
    assert (tmp_path / "gms-state.json.json-backup").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM metadata_aspect_v2").fetchone() == (1,)
