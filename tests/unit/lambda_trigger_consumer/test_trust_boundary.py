"""Pure checks of the consumer's Kafka trust boundary (issue 19): the ledger MAC and its keys,
the shape and binding of destination records, and facts the owner refused staying refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambda_trigger_consumer.completion import parse_destination_record, unbound_reason
from lambda_trigger_consumer.ledger import RunEntry, Target, fold
from lambda_trigger_consumer.ledger_auth import (
    MAC_HEADER,
    LedgerAuthSettings,
    LedgerKeyError,
    LedgerSigner,
    parse_keys,
)

OLD = "old:0123456789abcdef-old-secret"
NEW = "new:fedcba9876543210-new-secret"


def test_a_record_signed_with_a_listed_key_verifies_and_nothing_else_does() -> None:
    signer = LedgerSigner(parse_keys(OLD))
    headers = signer.headers(b"lt-1", b'{"kind":"request"}')
    assert signer.verify(b"lt-1", b'{"kind":"request"}', headers).ok
    assert signer.verify(b"lt-2", b'{"kind":"request"}', headers).reason == "bad_mac"
    assert signer.verify(b"lt-1", b'{"kind":"state"}', headers).reason == "bad_mac"
    assert signer.verify(b"lt-1", None, headers).reason == "bad_mac"  # not a tombstone
    assert signer.verify(b"lt-1", b"x", []).reason == "unsigned"
    assert signer.verify(b"lt-1", b"x", [(MAC_HEADER, b"nocolon")]).reason == "malformed_mac"
    other = LedgerSigner(parse_keys("x:another-secret-0000000"))
    assert other.verify(b"lt-1", b'{"kind":"request"}', headers).reason == "unknown_key"


def test_tombstones_are_signed_too() -> None:
    signer = LedgerSigner(parse_keys(OLD))
    assert signer.verify(b"lt-1", None, signer.headers(b"lt-1", None)).ok
    assert not signer.verify(b"lt-1", b"", signer.headers(b"lt-1", None)).ok


def test_rotation_the_first_key_signs_all_verify() -> None:
    before = LedgerSigner(parse_keys(OLD))
    during = LedgerSigner(parse_keys(f"{NEW},{OLD}"))
    after = LedgerSigner(parse_keys(NEW))
    old_record = before.headers(b"k", b"v")
    new_record = during.headers(b"k", b"v")
    assert during.verify(b"k", b"v", old_record).ok
    assert new_record[0][1].startswith(b"new:")  # type: ignore[union-attr]
    assert after.verify(b"k", b"v", new_record).ok
    assert after.verify(b"k", b"v", old_record).reason == "unknown_key"


@pytest.mark.parametrize("text", ["nokid", "k:short", "a b:0123456789abcdef0", f"{OLD},{OLD}"])
def test_bad_keys_are_refused(text: str) -> None:
    with pytest.raises(LedgerKeyError):
        parse_keys(text)


def test_no_key_refuses_to_start_unless_the_dev_flag_says_so(tmp_path: Path) -> None:
    with pytest.raises(LedgerKeyError, match="no run ledger key"):
        LedgerSigner.from_settings(LedgerAuthSettings(keys=None, keys_file=None))
    assert not LedgerSigner.from_settings(LedgerAuthSettings(keys=None, dev_unsigned=True)).enabled
    secret = tmp_path / "keys"
    secret.write_text(OLD + "\n")
    assert LedgerSigner.from_settings(
        LedgerAuthSettings(keys=None, keys_file=str(secret))
    ).key_ids == ["old"]


ARN = "arn:aws:lambda:us-east-1:123456789012:function:loader"


def _record(**context: Any) -> str:
    base = {
        "requestId": "r-1",
        "functionArn": f"{ARN}:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    return json.dumps(
        {
            "version": "1.0",
            "requestContext": {**base, **context},
            "requestPayload": {
                "runId": "lt-1",
                "executionRequestUrn": "urn:li:dataHubExecutionRequest:lt-1",
            },
            "responseContext": {"statusCode": 200},
            "responsePayload": {"ok": True},
        }
    )


@pytest.mark.parametrize(
    "context",
    [
        {"requestId": ""},
        {"requestId": 7},
        {"functionArn": "loader"},
        {"functionArn": "arn:aws:sqs:us-east-1:123456789012:q"},
        {"condition": "Whatever"},
        {"approximateInvokeCount": 0},
        {"approximateInvokeCount": True},
    ],
)
def test_a_request_context_not_shaped_like_awss_is_malformed(context: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="requestContext"):
        parse_destination_record(_record(**context), "urn:li:dataHubExecutionRequest:")


def _target(function: str, region: str | None = None) -> Target:
    return Target("lambda-event", "t", "T", "exact", function=function, region=region)


def test_a_completion_counts_only_for_the_runs_own_invoke_and_function() -> None:
    parsed = parse_destination_record(_record(), "urn:li:dataHubExecutionRequest:")
    assert parsed is not None
    completion = parsed[2]
    assert unbound_reason(completion, "r-1", _target("loader")) is None
    assert unbound_reason(completion, "r-1", _target(ARN)) is None
    assert unbound_reason(completion, "r-1", _target("123456789012:function:loader")) is None
    assert unbound_reason(completion, "r-1", _target("loader", "us-east-1")) is None
    assert unbound_reason(completion, "r-2", _target("loader")) is not None
    assert unbound_reason(completion, None, _target("loader")) is not None
    assert unbound_reason(completion, "r-1", _target("other")) is not None
    assert unbound_reason(completion, "r-1", _target("loader", "eu-west-1")) is not None
    other_account = "arn:aws:lambda:us-east-1:210987654321:function:loader"
    assert unbound_reason(completion, "r-1", _target(other_account)) is not None


def _fact(kind: str, **fields: Any) -> bytes:
    return json.dumps({"v": 1, "kind": kind, "run_id": "lt-1", **fields}).encode()


def test_a_forged_completion_read_first_does_not_hide_the_genuine_one() -> None:
    entry = RunEntry("lt-1", "urn:d", request_id="r-1")
    entry = fold(entry, _fact("completion", completion={"requestId": "forged"}), "lt-1")
    entry = fold(entry, _fact("completion", completion={"requestId": "r-1"}), "lt-1")
    assert entry is not None and entry.completion == {"requestId": "r-1"}


def test_refused_facts_are_not_brought_back_by_a_merge() -> None:
    read = fold(None, _fact("cancel", cancel_by="urn:li:corpuser:mallory"), "lt-1")
    assert read is not None and read.cancel_by == "urn:li:corpuser:mallory"
    # The owner refused it and wrote its snapshot: the fact read earlier must not come back.
    snapshot = RunEntry("lt-1", "urn:d", cancels_ignored=["urn:li:corpuser:mallory"], seq=2)
    merged = fold(read, snapshot.to_json(), "lt-1")
    assert merged is not None and merged.cancel_by is None
    again = fold(merged, _fact("cancel", cancel_by="urn:li:corpuser:mallory"), "lt-1")
    assert again is not None and again.cancel_by is None
    allowed = fold(again, _fact("cancel", cancel_by="urn:li:corpuser:alice"), "lt-1")
    assert allowed is not None and allowed.cancel_by == "urn:li:corpuser:alice"
