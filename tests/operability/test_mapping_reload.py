"""Mapping reloads: by content hash, never half a file, the last good mapping kept."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from lambda_trigger.mapping import LambdaTarget
from lambda_trigger.mapping_source import MappingInfoCollector, MappingSource, mapping_hash
from lambda_trigger.settings import MappingSettings

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLY = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
FULL = f"""\
targets:
  earnings: {{function: earnings-lambda, label: Earnings loader}}
  polygon: {{function: polygon-lambda, label: Polygon loader}}
  fallback: {{function: fallback-lambda, label: Fallback}}
default: fallback
rules:
  - dataset: "{SIP}"
    target: earnings
  - dataset: "{POLY}"
    target: polygon
"""
# A prefix of FULL cut at a line end: valid YAML, valid mapping, one rule fewer. POLY would
# silently fall through to `default`, a different Lambda.
PARTIAL = FULL[: FULL.index('  - dataset: "' + POLY)]


def _function(source: MappingSource, dataset: str) -> str:
    resolution = source.current().resolve(dataset)
    assert resolution is not None and isinstance(resolution.target, LambdaTarget)
    return resolution.target.function


class Writer:
    """Plays a process that writes the file in place, in two chunks, around our reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[str] = []
        self.sleeps = 0

    def sleep(self, _seconds: float) -> None:
        self.sleeps += 1
        if self.pending:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(self.pending.pop(0))


def _source(path: Path, writer: Writer, results: list[bool]) -> MappingSource:
    return MappingSource(
        MappingSettings(mapping_file=str(path)),
        reload_seconds=3600,
        on_reload=results.append,
        sleep=writer.sleep,
    )


def test_a_valid_prefix_caught_mid_write_is_never_installed(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(FULL.replace("polygon-lambda", "polygon-v1"))
    writer, results = Writer(path), list[bool]()
    source = _source(path, writer, results)
    before = source.hash

    # The writer truncated the file and wrote the first chunk; it finishes while we settle.
    path.write_text(PARTIAL)
    writer.pending = [FULL[len(PARTIAL) :]]
    assert source.reload_if_changed() is False
    assert _function(source, POLY) == "polygon-v1"  # the old mapping, not the default
    assert source.hash == before and results == []

    assert source.reload_if_changed() is True  # next check: the complete file
    assert _function(source, POLY) == "polygon-lambda"
    assert results == [True]
    assert source.hash == mapping_hash(source.current()) != before


def test_a_partial_invalid_file_is_rejected_counted_once_and_the_last_good_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(FULL)
    writer, results = Writer(path), list[bool]()
    source = _source(path, writer, results)
    good = source.hash

    path.write_text(FULL[: FULL.index("target: polygon") + 10])  # cut inside a rule
    with caplog.at_level(logging.ERROR, logger="lambda_trigger.mapping_source"):
        assert source.reload_if_changed() is False
        assert source.reload_if_changed() is False  # the same bad content: not again
    assert results == [False]
    error = source.last_error or ""
    assert error.startswith(f"{path}: rule #2") and "unknown target 'po'" in error
    assert [r.getMessage() for r in caplog.records] == [
        f"mapping reload rejected, keeping the mapping in force (hash {good}): {error}"
    ]
    assert source.hash == good and _function(source, POLY) == "polygon-lambda"
    assert source.status() == {"mappingHash": good, "mappingReloadError": source.last_error}

    path.write_text(FULL)  # fixed: the same content as the mapping in force
    assert source.reload_if_changed() is False
    assert source.status() == {"mappingHash": good}


def test_changes_are_found_by_content_not_mtime(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(FULL)
    os.utime(path, (1_000, 1_000))
    writer, results = Writer(path), list[bool]()
    source = _source(path, writer, results)

    os.utime(path, (2_000, 2_000))  # touched, same content: nothing to reload
    assert source.reload_if_changed() is False and writer.sleeps == 0

    path.write_text(FULL.replace("polygon-lambda", "polygon-v2"))
    os.utime(path, (2_000, 2_000))  # new content, same mtime
    assert source.reload_if_changed() is True
    assert _function(source, POLY) == "polygon-v2" and results == [True]


def test_the_hash_ignores_formatting_and_the_info_metric_reports_it(tmp_path: Path) -> None:
    yaml_file, json_file = tmp_path / "m.yaml", tmp_path / "m.json"
    yaml_file.write_text("# comment\n" + FULL)
    source = MappingSource(MappingSettings(mapping_file=str(yaml_file)))
    document = {
        "rules": [{"dataset": SIP, "target": "earnings"}, {"dataset": POLY, "target": "polygon"}],
        "default": "fallback",
        "targets": {
            "fallback": {"function": "fallback-lambda", "label": "Fallback"},
            "polygon": {"function": "polygon-lambda", "label": "Polygon loader"},
            "earnings": {
                "function": "earnings-lambda",
                "label": "Earnings loader",
                "invocationType": "RequestResponse",
            },
        },
    }
    json_file.write_text(json.dumps(document))
    other = MappingSource(MappingSettings(mapping_file=str(json_file)))
    assert source.hash == other.hash and len(source.hash) == 12

    registry = CollectorRegistry()
    registry.register(MappingInfoCollector("lambda_trigger_consumer", source))
    assert (
        registry.get_sample_value("lambda_trigger_consumer_mapping_info", {"hash": source.hash})
        == 1.0
    )
    yaml_file.write_text(FULL.replace("Fallback", "Other"))
    source.reload_if_changed()
    samples = [s for m in registry.collect() for s in m.samples if s.name.endswith("_mapping_info")]
    assert [(s.labels, s.value) for s in samples] == [({"hash": source.hash}, 1.0)]
    assert source.hash != other.hash
