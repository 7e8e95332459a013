"""DataHubClient(present_for_seconds=...): a dataset GMS said exists is believed for that long
(the consumer's two checks per run, and a burst's many runs of one dataset, cost one read);
a missing or removed one is asked about again every time. Against the GMS double."""

from __future__ import annotations

import uuid

from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import StatusClass

from lambda_trigger.datahub import DataHubClient

from .conftest import Env


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _set_removed(client: DataHubClient, urn: str, removed: bool) -> None:
    client.graph.emit_mcp(MetadataChangeProposalWrapper(entityUrn=urn, aspect=StatusClass(removed)))


def test_present_is_believed_for_its_window_and_nothing_else_is(env: Env) -> None:
    urn = f"urn:li:dataset:(urn:li:dataPlatform:hive,cache.t_{uuid.uuid4().hex[:8]},PROD)"
    clock = _Clock()
    client = DataHubClient(env.datahub_settings(), present_for_seconds=10.0, clock=clock)
    writer = env.datahub()
    try:
        assert client.dataset_state(urn) == "missing"
        _set_removed(writer, urn, False)
        assert client.dataset_state(urn) == "present"  # "missing" was not kept
        _set_removed(writer, urn, True)
        clock.now += 9.0
        assert client.dataset_state(urn) == "present"  # within the window: not asked
        clock.now += 2.0
        assert client.dataset_state(urn) == "removed"  # after it: asked
        _set_removed(writer, urn, False)
        assert client.dataset_state(urn) == "present"  # "removed" was not kept
        # Off (the default, as the api uses it): every call asks.
        plain = DataHubClient(env.datahub_settings())
        _set_removed(writer, urn, True)
        assert plain.dataset_state(urn) == "removed"
        assert client.dataset_state(urn) == "present"
        plain.close()
    finally:
        client.close()
        writer.close()
