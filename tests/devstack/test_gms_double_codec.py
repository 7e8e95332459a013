"""The GMS double's cheap write-path helpers (issue 24): the MCL datum compiled once, with record
unions named for fastavro (devstack/gms_double/mcl.py AvroDatum), must encode exactly what
fastavro writes when it resolves each union itself; JSON-tree copies (store.copy_json) must be
as independent as deep copies. No broker needed."""

from __future__ import annotations

import io
from typing import Any

import fastavro

from devstack.gms_double.mcl import MclCodec
from devstack.gms_double.store import AspectRow, copy_json


def _untupled(datum: Any) -> Any:
    """The datum with every `(name, record)` union pick replaced by the bare record."""
    if isinstance(datum, tuple):
        return _untupled(datum[1])
    if isinstance(datum, dict):
        return {k: _untupled(v) for k, v in datum.items()}
    if isinstance(datum, list):
        return [_untupled(v) for v in datum]
    return datum


def _full_mcl() -> dict[str, Any]:
    stamp = {"time": 1764100000000, "actor": "urn:li:corpuser:alice"}
    return {
        "auditHeader": {
            "time": 5,
            "server": "gms",
            "appName": "datahub",
            "messageId": b"0123456789abcdef",
        },
        "entityType": "dataHubExecutionRequest",
        "entityUrn": "urn:li:dataHubExecutionRequest:codec-1",
        "entityKeyAspect": {"value": b'{"id":"codec-1"}', "contentType": "application/json"},
        "changeType": "UPSERT",
        "aspectName": "dataHubExecutionRequestInput",
        "aspect": {"value": b'{"task":"RUN"}', "contentType": "application/json"},
        "systemMetadata": {
            "runId": "no-run-id-provided",
            "lastObserved": 1764100000000,
            "version": "2",
            "properties": {"appSource": "ui"},
            "aspectCreated": stamp,
            "aspectModified": {**stamp, "impersonator": "urn:li:corpuser:bob"},
            "notInTheSchema": "dropped",
        },
        "headers": {"If-Version-Match": "1"},
        "previousAspectValue": {"value": b'{"task":"OLD"}', "contentType": "application/json"},
        "previousSystemMetadata": {"runId": "earlier", "version": "1"},
        "created": stamp,
    }


def test_named_unions_encode_what_fastavro_resolves_itself() -> None:
    codec = MclCodec()
    sparse = {"entityType": "dataset", "changeType": "DELETE", "created": {"time": 1, "actor": "a"}}
    for mcl in (_full_mcl(), sparse):
        datum = codec.to_datum(mcl)
        resolved = io.BytesIO()
        fastavro.schemaless_writer(resolved, codec._parsed, _untupled(datum))
        raw = codec.encode(mcl)
        assert raw[5:] == resolved.getvalue()
        decoded = codec.decode(raw)
        assert decoded["entityType"] == mcl["entityType"]
    decoded = codec.decode(codec.encode(_full_mcl()))
    sm = decoded["systemMetadata"]
    assert sm["aspectModified"]["impersonator"] == "urn:li:corpuser:bob"
    assert sm["properties"] == {"appSource": "ui"}
    assert sm["lastRunId"] == "no-run-id-provided"  # the schema's default for an absent field
    assert "notInTheSchema" not in sm
    assert decoded["previousSystemMetadata"]["runId"] == "earlier"
    assert decoded["auditHeader"]["messageId"] == b"0123456789abcdef"


def test_json_copies_share_nothing_mutable() -> None:
    value = {"a": [{"b": 1}, "x"], "c": {"d": None, "e": b"raw"}}
    row = AspectRow(value, {"properties": {"k": "v"}}, 1, "urn:li:corpuser:alice")
    copied = row.copy()
    assert copied == row
    copied.value["a"][0]["b"] = 2
    copied.value["c"]["d"] = "set"
    copied.system_metadata["properties"]["k"] = "changed"
    assert value == {"a": [{"b": 1}, "x"], "c": {"d": None, "e": b"raw"}}
    assert row.system_metadata == {"properties": {"k": "v"}}
    assert copy_json([1, {"t": (1, 2)}]) == [1, {"t": (1, 2)}]
