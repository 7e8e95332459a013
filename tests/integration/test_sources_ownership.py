"""`sources sync` owns what it writes (issue 20): a source whose executorId, recipe or schedule
was edited in DataHub (the Ingestion page) is shown as a diff and left alone unless `--force`;
`mapping check --datahub` reports a source of ours whose executorId was changed."""

from __future__ import annotations

import copy
import io
import json
from argparse import Namespace
from typing import Any

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import DataHubIngestionSourceInfoClass

from lambda_trigger import mapping_cli
from lambda_trigger.mapping import parse_mapping
from lambda_trigger.sources import source_urn, sync

from .conftest import POLY, SIP, Env

pytestmark = pytest.mark.integration


def _edit_in_ui(env: Env, urn: str, edit: Any) -> None:
    """What the Ingestion page's UpdateIngestionSourceResolver does: rewrite the info aspect as
    the user (here: alice, who may manage ingestion); the UI form keeps no extraArgs of ours."""
    client = env.datahub()
    try:
        info = client._get(urn, DataHubIngestionSourceInfoClass)
        assert info is not None
        info = copy.deepcopy(info)
        info.config.extraArgs = None
        edit(info)
        client._emit(MetadataChangeProposalWrapper(entityUrn=urn, aspect=info))
    finally:
        client.close()


@pytest.mark.parametrize("field", ["executorId", "recipe", "schedule"])
def test_sync_refuses_to_overwrite_a_ui_edit_unless_forced(
    env: Env, field: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = parse_mapping(env.mapping, "test")
    client = env.datahub()
    try:
        sync(client, mapping, env.executor_id)
        sip = source_urn(env.executor_id, SIP)

        def edit(info: DataHubIngestionSourceInfoClass) -> None:
            if field == "executorId":
                info.config.executorId = "default"
            elif field == "recipe":
                info.config.recipe = info.config.recipe.replace('"earnings"', '"polygon"')
            else:
                from datahub.metadata.schema_classes import DataHubIngestionSourceScheduleClass

                info.schedule = DataHubIngestionSourceScheduleClass("0 * * * *", "UTC")

        _edit_in_ui(env, sip, edit)
        edited = env.gms.get_aspect(sip, "dataHubIngestionSourceInfo")
        version = env.gms.aspect_version(sip, "dataHubIngestionSourceInfo")

        result = sync(client, mapping, env.executor_id)
        assert list(result.refused) == [sip]
        assert sip not in result.written and source_urn(env.executor_id, POLY) in result.written
        assert env.gms.aspect_version(sip, "dataHubIngestionSourceInfo") == version
        assert env.gms.get_aspect(sip, "dataHubIngestionSourceInfo") == edited
        diff = result.refused[sip]
        assert diff.startswith(f"--- {sip} (in DataHub)\n+++ {sip} (mapping)\n")
        removed = [line for line in diff.splitlines() if line.startswith("-  ")]
        expected = {"executorId": '"default"', "recipe": "polygon", "schedule": "0 * * * *"}
        assert any(expected[field] in line for line in removed), diff

        # The command line: the diff on stderr, exit code 3, nothing written.
        monkeypatch.setenv("DATAHUB_GMS_URL", env.gms.url)
        monkeypatch.setenv("DATAHUB_GMS_TOKEN", env.gms.admin_token)
        monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_MAPPING", json.dumps(env.mapping))
        monkeypatch.setenv("LAMBDA_TRIGGER_EXECUTOR_ID", env.executor_id)
        from lambda_trigger import sources

        out, err = io.StringIO(), io.StringIO()
        assert sources.run(Namespace(force=False), out, err) == 3
        assert f"refused: {sip} was edited in DataHub" in err.getvalue()
        assert json.loads(out.getvalue())["refused"] == [sip]
        assert env.gms.get_aspect(sip, "dataHubIngestionSourceInfo") == edited

        out, err = io.StringIO(), io.StringIO()
        assert sources.run(Namespace(force=True), out, err) == 0, err.getvalue()
        restored = env.gms.get_aspect(sip, "dataHubIngestionSourceInfo")
        assert restored["config"]["executorId"] == env.executor_id
        assert json.loads(restored["config"]["recipe"])["source"]["config"]["target"] == "earnings"
        assert "schedule" not in restored
        assert restored["config"]["extraArgs"]["lambdaTriggerOrigin"] == "sync"
        # Unedited since: a plain sync writes again (nothing refused).
        assert sync(client, mapping, env.executor_id).refused == {}
    finally:
        client.close()


def test_mapping_check_reports_a_source_with_a_foreign_executor_id(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    client = env.datahub()
    try:
        sync(client, parse_mapping(env.mapping, "test"), env.executor_id)
    finally:
        client.close()
    sip = source_urn(env.executor_id, SIP)
    monkeypatch.setenv("DATAHUB_GMS_URL", env.gms.url)
    monkeypatch.setenv("DATAHUB_GMS_TOKEN", env.gms.admin_token)
    monkeypatch.setenv("LAMBDA_TRIGGER_EXECUTOR_ID", env.executor_id)
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(env.mapping))
    args = Namespace(mapping_command="check", files=[str(path)], datahub=True)

    out, err = io.StringIO(), io.StringIO()
    assert mapping_cli.run(args, out, err) == 0, err.getvalue()

    def to_default(info: DataHubIngestionSourceInfoClass) -> None:
        info.config.executorId = "default"

    _edit_in_ui(env, sip, to_default)
    out, err = io.StringIO(), io.StringIO()
    assert mapping_cli.run(args, out, err) == 1
    (line,) = [x for x in err.getvalue().splitlines() if x.startswith(sip)]
    assert "executorId 'default' is not" in line and "DataHub's own executor" in line
