"""DataHub's own CLI (`datahub put`) and SDK emitters against a GMS double behaving as DataHub
v1.2.0 (ExecuteIngestionAuthValidator before PR #14253, write_auth.py): a request input without
`source.ingestionSource` is refused for the admin too, with GMS's message; the same input naming
the dataset's source is accepted. Runs in every normal conformance run; the whole suite runs
strict with GMS_DOUBLE_DATAHUB_VERSION=v1.2.0."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cli, request_input, request_urn
from datahub.configuration.common import OperationalError
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import ExecutionRequestInputClass

from devstack.gms_double import GmsDouble

pytestmark = pytest.mark.integration
INPUT = "dataHubExecutionRequestInput"
MESSAGE = "Couldn't find the ingestion source details for "


@pytest.fixture(scope="module")
def double(kafka_bootstrap: str) -> Iterator[GmsDouble]:
    suffix = uuid.uuid4().hex[:10]
    gms = GmsDouble(
        kafka_bootstrap,
        versioned_topic=f"strict-{suffix}.MetadataChangeLog_Versioned_v1",
        timeseries_topic=f"strict-{suffix}.MetadataChangeLog_Timeseries_v1",
        datahub_version="v1.2.0",
    ).start()
    try:
        yield gms
    finally:
        gms.stop()


def test_datahub_put_without_source_is_refused_and_with_it_accepted(
    cli: Cli, double: GmsDouble, tmp_path: Path
) -> None:
    bare = request_input()
    bare["source"] = {"type": "CLI"}
    urn = request_urn("strict")
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(bare))
    done = cli("put", "--urn", urn, "--aspect", INPUT, "-d", str(path))
    assert MESSAGE + urn in done.stdout + done.stderr
    assert "Update succeeded" not in done.stdout
    assert double.get_aspect(urn, INPUT) is None

    named = request_input()
    path.write_text(json.dumps(named))
    done = cli("put", "--urn", urn, "--aspect", INPUT, "-d", str(path))
    assert done.returncode == 0, done.stderr
    assert "Update succeeded with status 200" in done.stdout
    assert double.get_aspect(urn, INPUT) == named


@pytest.mark.parametrize("openapi", [False, True], ids=["restli", "openapi"])
def test_sdk_emitter_without_source_is_refused(double: GmsDouble, openapi: bool) -> None:
    bare = request_input()
    bare["source"] = {"type": "AIRFLOW"}
    urn = request_urn("strict-sdk")
    emitter = DatahubRestEmitter(
        double.url, token=double.admin_token, retry_max_times=0, openapi_ingestion=openapi
    )
    with pytest.raises(OperationalError) as caught:
        emitter.emit_mcp(
            MetadataChangeProposalWrapper(
                entityUrn=urn, aspect=ExecutionRequestInputClass.from_obj(bare)
            )
        )
    assert MESSAGE + urn in str(caught.value.message) + json.dumps(caught.value.info)
    assert double.get_aspect(urn, INPUT) is None
