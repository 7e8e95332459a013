"""The helpers of the real-services end-to-end test, without starting anything."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from devstack import services

from .expressions import load_dashboard
from .live import grafana_regex_value, patched_environ
from .render_dashboard import layout, legend
from .scrape import Scrape


def test_devstack_mapping_file_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(services.MAPPING_FILE_VARIABLE, raising=False)
    assert services.mapping_file() == services.SAMPLE_MAPPING
    copy = tmp_path / "mapping.yaml"
    monkeypatch.setenv(services.MAPPING_FILE_VARIABLE, str(copy))
    assert services.mapping_file() == copy.resolve()


def test_patched_environ_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBS_TEST_KEPT", "old")
    monkeypatch.delenv("OBS_TEST_NEW", raising=False)
    with patched_environ({"OBS_TEST_KEPT": "new", "OBS_TEST_NEW": "x"}):
        assert os.environ["OBS_TEST_KEPT"] == "new"
        assert os.environ["OBS_TEST_NEW"] == "x"
    assert os.environ["OBS_TEST_KEPT"] == "old"
    assert "OBS_TEST_NEW" not in os.environ


@pytest.mark.parametrize(
    "value", ["Hive sample loader (async)", "127.0.0.1:9102", "a|b", 'quote"d', "back\\slash"]
)
def test_grafana_regex_value_matches_only_the_value(value: str) -> None:
    literal = grafana_regex_value(value)
    # What PromQL's string literal hands to the regex engine: backslash escapes undone.
    pattern = re.sub(r"\\(.)", r"\1", literal)
    assert re.fullmatch(pattern, value)
    assert not re.fullmatch(pattern, value + "x")
    assert not re.fullmatch(pattern, "x" + value)


def test_scrape_reads_what_prometheus_client_exports() -> None:
    registry = CollectorRegistry()
    counter = Counter("demo_events", "events", ["kind"], registry=registry)
    counter.labels(kind="a").inc(2)
    counter.labels(kind="b").inc()
    Gauge("demo_level", "level", registry=registry).set(7)
    Histogram("demo_seconds", "time", ["op"], buckets=(1, 2), registry=registry).labels(
        op="x"
    ).observe(1.5)
    Info("demo", "build", registry=registry).info({"version": "1.2"})
    scrape = Scrape.parse(generate_latest(registry).decode())

    assert scrape.value("demo_events_total", {"kind": "a"}) == 2
    assert scrape.value("demo_events_total", {"kind": "c"}) is None
    assert scrape.total("demo_events_total") == 3
    assert scrape.total("demo_level") == 7
    assert scrape.value("demo_seconds_count", {"op": "x"}) == 1
    assert scrape.value("demo_seconds_bucket", {"op": "x", "le": "2.0"}) == 1
    assert scrape.label_sets("demo_info") == [{"version": "1.2"}]
    families = scrape.families
    assert (families["demo_events"].type, families["demo_events"].labels) == (
        "counter",
        frozenset({"kind"}),
    )
    assert families["demo_seconds"].labels == frozenset({"op"})  # `le` left out
    assert (families["demo_info"].type, families["demo_info"].labels) == (
        "gauge",
        frozenset({"version"}),
    )


def test_legend_formats_like_grafana() -> None:
    labels = {"route": "/api/ingestion/run", "status_code": "503"}
    assert legend("{{route}} {{ status_code }}", labels) == "/api/ingestion/run 503"
    assert legend("p95", labels) == "p95"
    assert legend(None, labels) == '{route="/api/ingestion/run", status_code="503"}'


def test_layout_repeats_the_target_row_once_per_target() -> None:
    dashboard = load_dashboard()
    once = layout(dashboard, ["only"])
    thrice = layout(dashboard, ["a", "b", "c"])
    repeated = [p for p, values in once if values]
    assert repeated, "the dashboard has a repeated row"
    assert len(thrice) == len(once) + 2 * len(repeated)
    assert {values["target"] for _p, values in thrice if values} == {"a", "b", "c"}
    # Copies of the row go below each other, nothing overlaps.
    cells: set[tuple[int, int]] = set()
    for panel, _values in thrice:
        pos = panel["gridPos"]
        for y in range(int(pos["y"]), int(pos["y"]) + int(pos["h"])):
            for x in range(int(pos["x"]), int(pos["x"]) + int(pos["w"])):
                assert (x, y) not in cells, panel.get("title")
                cells.add((x, y))
