"""What the consumer's warm-up covers (warm.py): every mapped target once, and the MCL
topic's schema in the registry client's cache."""

from __future__ import annotations

import json

import httpx
import pytest

from lambda_trigger.mapping import load_mapping
from lambda_trigger_consumer.decode import RegistryUnavailable, SchemaRegistry
from lambda_trigger_consumer.warm import mapped_targets

from .conftest import MCL_SCHEMA_PATH

SFN = "arn:aws:states:eu-west-1:123456789012:stateMachine:loader"


def test_every_mapped_target_once_as_the_driver_resolves_it() -> None:
    mapping = load_mapping(
        None,
        json.dumps(
            {
                "targets": {
                    "sync": {"function": "earnings", "qualifier": "live"},
                    "event": {"function": "fire", "invocationType": "Event"},
                    "flow": {"type": "stepfunctions", "stateMachineArn": SFN},
                },
                "rules": [
                    {
                        "dataset": "urn:li:dataset:(urn:li:dataPlatform:hive,a,PROD)",
                        "target": "sync",
                    },
                    {
                        "tag": "urn:li:tag:x",
                        "target": {"function": "inline", "region": "us-west-2"},
                    },
                    # the same function as `sync` once more: warmed once
                    {"platform": "hive", "target": {"function": "earnings", "qualifier": "live"}},
                ],
                "default": "flow",
            }
        ),
        None,
    )
    got = {
        (t.kind, t.function or t.state_machine_arn, t.qualifier, t.region)
        for t in mapped_targets(mapping)
    }
    assert got == {
        ("lambda", "earnings", "live", None),
        ("lambda-event", "fire", None, None),
        ("stepfunctions", SFN, None, None),
        ("lambda", "inline", None, "us-west-2"),
    }
    assert len(mapped_targets(mapping)) == 4


def _registry(handle: httpx.MockTransport) -> SchemaRegistry:
    return SchemaRegistry("http://registry/api/", client=httpx.Client(transport=handle))


def test_prefetch_caches_the_latest_schema_so_the_first_record_fetches_nothing() -> None:
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/api/subjects/MetadataChangeLog_Versioned_v1-value/versions/latest":
            return httpx.Response(
                200,
                json={
                    "subject": "x",
                    "version": 3,
                    "id": 11,
                    "schema": MCL_SCHEMA_PATH.read_text(),
                },
            )
        return httpx.Response(404)

    registry = _registry(httpx.MockTransport(handle))
    assert registry.prefetch("MetadataChangeLog_Versioned_v1-value") == 11
    assert registry.schema(11) is not None
    assert calls == ["/api/subjects/MetadataChangeLog_Versioned_v1-value/versions/latest"]


def test_prefetch_of_an_unknown_subject_is_no_error_but_an_outage_is() -> None:
    registry = _registry(httpx.MockTransport(lambda _r: httpx.Response(404)))
    assert registry.prefetch("other-naming-strategy") is None
    failing = _registry(httpx.MockTransport(lambda _r: httpx.Response(503)))
    with pytest.raises(RegistryUnavailable):
        failing.prefetch("MetadataChangeLog_Versioned_v1-value")
