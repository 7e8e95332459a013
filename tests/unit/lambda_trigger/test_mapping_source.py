from __future__ import annotations

import os
from pathlib import Path

import pytest

from lambda_trigger.mapping import LambdaTarget, MappingError
from lambda_trigger.mapping_source import MappingSource
from lambda_trigger.settings import MappingSettings

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def _write(path: Path, function: str, mtime: int) -> None:
    path.write_text(
        f"rules:\n  - dataset: '{SIP}'\n    target: {{function: {function}, label: L-{function}}}\n"
    )
    os.utime(path, (mtime, mtime))


def _function(source: MappingSource) -> str:
    resolution = source.current().resolve(SIP)
    assert resolution is not None and isinstance(resolution.target, LambdaTarget)
    return resolution.target.function


def test_reload_on_change_keeps_previous_on_error(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    _write(path, "first", 1_000)
    results: list[bool] = []
    source = MappingSource(
        MappingSettings(mapping_file=str(path)), reload_seconds=0, on_reload=results.append
    )
    assert _function(source) == "first"
    assert source.current().labels() == {"L-first"}

    _write(path, "second", 2_000)
    assert _function(source) == "second"
    assert results == [True]

    path.write_text("rules: [broken\n")
    os.utime(path, (3_000, 3_000))
    assert _function(source) == "second"  # the bad file did not replace the good mapping
    assert results == [True, False]
    assert not source.reload_if_changed()  # unchanged since the failed attempt: not retried


def test_bad_mapping_is_fatal_at_start(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(f"rules:\n  - dataset: '{SIP}'\n    target: {{function: 'bad name'}}\n")
    with pytest.raises(MappingError, match=r"m\.yaml: rule #1 .*field 'target\.function'"):
        MappingSource(MappingSettings(mapping_file=str(path)))


def test_seed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_MAPPING", f'{{"{SIP}": "seed-fn"}}')
    monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_DEFAULT", "fallback-fn")
    monkeypatch.delenv("DATAHUB_INGESTION_LAMBDA_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = MappingSettings()
    assert settings.resolved_region() == "eu-west-1"
    monkeypatch.setenv("DATAHUB_INGESTION_LAMBDA_REGION", "us-west-2")
    assert MappingSettings().resolved_region() == "us-west-2"
    source = MappingSource(settings)
    assert _function(source) == "seed-fn"
    other = source.current().resolve("urn:li:dataset:(urn:li:dataPlatform:hive,x,PROD)")
    assert (
        other is not None
        and isinstance(other.target, LambdaTarget)
        and other.target.function == "fallback-fn"
    )
