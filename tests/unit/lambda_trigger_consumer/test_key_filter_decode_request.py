from __future__ import annotations

import pytest

from lambda_trigger_consumer.decode import (
    DecodeError,
    RegistryUnavailable,
    SchemaRegistry,
    decode_change_log,
)
from lambda_trigger_consumer.key_filter import is_execution_request_key
from lambda_trigger_consumer.request import Invalid, to_request

from .conftest import RegistryCalls, encode_mcl

RUN = "lt-20260101T120000001Z-abcdefghij"
URN = f"urn:li:dataHubExecutionRequest:{RUN}"
SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def _input(executor: str = "lambda-trigger", **args: str) -> dict[str, object]:
    return {
        "task": "LAMBDA_TRIGGER_RUN",
        "args": {"datasetUrn": SIP, **args},
        "executorId": executor,
        "source": {"type": "LAMBDA_TRIGGER_SDK"},
        "requestedAt": 1_700_000_000_000,
    }


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (URN.encode(), True),
        (URN, True),
        (SIP.encode(), False),
        (b"urn:li:dataHubExecutionRequestX", False),
        (b"", False),
        (None, False),
    ],
)
def test_key_filter(key: bytes | str | None, expected: bool) -> None:
    assert is_execution_request_key(key) is expected


def test_decode_round_trip_and_schema_cache(registry: tuple[SchemaRegistry, RegistryCalls]) -> None:
    client, calls = registry
    value = encode_mcl(URN, "dataHubExecutionRequestInput", _input(), actor="urn:li:corpuser:alice")
    first = decode_change_log(value, client)
    second = decode_change_log(value, client)
    assert first == second
    assert first.entity_urn == URN and first.aspect_name == "dataHubExecutionRequestInput"
    assert first.aspect is not None and first.aspect["executorId"] == "lambda-trigger"
    assert first.actor == "urn:li:corpuser:alice" and first.change_type == "UPSERT"
    assert calls.count == 1  # the schema is fetched once per id


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "framing"),
        (b"\x00\x00", "framing"),
        (b"\x01\x00\x00\x00\x07abc", "framing"),
        (b"\x00\x00\x00\x00\x63abc", "schema"),  # id 99: registry answers 404
        (b"\x00\x00\x00\x00\x07\xff\xff\xff", "avro"),
    ],
)
def test_decode_failures_have_reasons(
    registry: tuple[SchemaRegistry, RegistryCalls], value: bytes | None, reason: str
) -> None:
    with pytest.raises(DecodeError) as err:
        decode_change_log(value, registry[0])
    assert err.value.reason == reason
    assert not isinstance(err.value, RegistryUnavailable)


def test_registry_outage_is_transient(registry: tuple[SchemaRegistry, RegistryCalls]) -> None:
    with pytest.raises(RegistryUnavailable):
        decode_change_log(b"\x00\x00\x00\x01\xf4abc", registry[0])  # id 500 -> HTTP 503


def test_aspect_that_is_not_json(registry: tuple[SchemaRegistry, RegistryCalls]) -> None:
    value = encode_mcl(URN, "dataHubExecutionRequestInput", None)
    change = decode_change_log(value, registry[0])
    assert change.aspect is None
    # A JSON array is not an aspect.
    import json

    bad = encode_mcl(URN, "dataHubExecutionRequestInput", {"x": 1})
    change2 = decode_change_log(bad, registry[0])
    assert change2.aspect == {"x": 1}
    assert json.dumps(change2.aspect)


def test_to_request_accepts_only_our_upserts(
    registry: tuple[SchemaRegistry, RegistryCalls],
) -> None:
    def req(
        aspect_name: str = "dataHubExecutionRequestInput", change_type: str = "UPSERT", **kw: object
    ) -> object:
        aspect = kw.pop("aspect", _input())
        urn = str(kw.pop("urn", URN))
        value = encode_mcl(urn, aspect_name, aspect, change_type=change_type)  # type: ignore[arg-type]
        return to_request(decode_change_log(value, registry[0]), "lambda-trigger")

    ours = req()
    assert ours is not None and not isinstance(ours, Invalid)
    assert ours.run_id == RUN and ours.dataset_urn == SIP  # type: ignore[union-attr]
    assert ours.actor_urn == "urn:li:corpuser:datahub"  # type: ignore[union-attr]  # from created.actor
    assert req(change_type="CREATE") is not None
    assert req(change_type="RESTATE") is None
    assert req(change_type="DELETE") is None
    assert req(aspect_name="dataHubExecutionRequestResult", aspect={"status": "RUNNING"}) is None
    assert req(aspect=_input(executor="default")) is None  # DataHub's own executor's request
    invalid = req(aspect={**_input(), "args": {"datasetUrn": "urn:li:corpuser:x"}})
    assert isinstance(invalid, Invalid) and "must be a dataset URN" in invalid.message
