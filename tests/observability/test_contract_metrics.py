"""docs/contract.md's metric tables are read as intended."""

from __future__ import annotations

from pathlib import Path

import pytest

from .contract_metrics import (
    ContractFormatError,
    MetricSpec,
    SeriesInfo,
    parse_contract,
    series_index,
)

JOBS = {"lambda-trigger-consumer", "lambda-trigger-api"}


def test_contract_lists_metrics_of_both_jobs(contract_specs: list[MetricSpec]) -> None:
    assert {s.job for s in contract_specs} == JOBS
    for spec in contract_specs:
        prefix = (
            "lambda_trigger_consumer_"
            if spec.job == "lambda-trigger-consumer"
            else "lambda_trigger_api_"
        )
        assert spec.name.startswith(prefix), spec
    names = [s.name for s in contract_specs]
    assert len(names) == len(set(names))
    # Both services publish a build-info metric the dashboard's instance variables read.
    assert "lambda_trigger_consumer_info" in names
    assert "lambda_trigger_api_info" in names


def test_labels_and_enumerated_values(contract_specs: list[MetricSpec]) -> None:
    by_name = {s.name: s for s in contract_specs}
    invocations = by_name["lambda_trigger_consumer_invocations_total"]
    assert invocations.type == "counter"
    assert invocations.labels == ("target", "outcome")
    assert set(invocations.label_values["outcome"]) >= {"success", "function_error", "invoke_error"}
    assert by_name["lambda_trigger_consumer_accepted_requests_total"].labels == ()
    assert by_name["lambda_trigger_api_requests_total"].labels == ("route", "method", "status_code")


def test_series_names_per_type(contract_index: dict[str, SeriesInfo]) -> None:
    hist = "lambda_trigger_consumer_invocation_duration_seconds"
    for suffix in ("_bucket", "_count", "_sum"):
        assert hist + suffix in contract_index
    assert hist not in contract_index  # a histogram has no series under its bare name
    assert "le" in contract_index[hist + "_bucket"].labels
    assert "le" not in contract_index[hist + "_count"].labels
    assert "lambda_trigger_consumer_info" in contract_index
    assert "lambda_trigger_consumer_info_info" not in contract_index
    assert "lambda_trigger_consumer_invocations_created" not in contract_index
    assert contract_index["up"].labels == {"job", "instance"}


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "contract.md"
    path.write_text(body, encoding="utf-8")
    return path


def test_format_errors(tmp_path: Path) -> None:
    with pytest.raises(ContractFormatError, match="no '## Prometheus metrics'"):
        parse_contract(_write(tmp_path, "# nothing\n"))
    with pytest.raises(ContractFormatError, match="lists no metric"):
        parse_contract(
            _write(tmp_path, "## Prometheus metrics\n\ntext\n## Next\n| `a_total` | counter | |\n")
        )
    with pytest.raises(ContractFormatError, match="unknown metric type"):
        parse_contract(_write(tmp_path, "## Prometheus metrics\njob name `j`\n| `a` | meter | |\n"))
    with pytest.raises(ContractFormatError, match="before any"):
        parse_contract(_write(tmp_path, "## Prometheus metrics\n| `a` | gauge | |\n"))


def test_info_without_suffix_and_duplicates(tmp_path: Path) -> None:
    specs = parse_contract(
        _write(
            tmp_path,
            "## Prometheus metrics\nX (job name `j`):\n"
            "| name | type | labels |\n|---|---|---|\n"
            "| `build` | info | `version` |\n| `c` | counter | `a` (`x`, `y`), `b` |\n",
        )
    )
    assert specs[0].series_names() == {"build_info"}
    assert specs[1].series_names() == {"c_total"}
    assert specs[1].labels == ("a", "b")
    assert dict(specs[1].label_values) == {"a": ("x", "y")}
    with pytest.raises(ContractFormatError, match="two metrics"):
        series_index([specs[1], MetricSpec("c_total", "counter", (), "j")])
