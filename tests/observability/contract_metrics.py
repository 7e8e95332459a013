"""The metrics docs/contract.md promises, read from its "Prometheus metrics" tables.

The tables are the single source of truth: dashboards, alert rules and the stand-in exporter
are checked against (or built from) what this module parses, so a metric that is renamed in
the contract and not in a panel fails a test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_PATH = REPO_ROOT / "docs" / "contract.md"

METRIC_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "info"})
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus itself writes for every scrape target, usable in any expression.
BUILTIN_SERIES: Mapping[str, frozenset[str]] = {"up": TARGET_LABELS}

_SECTION_HEADING = "## Prometheus metrics"
_JOB_RE = re.compile(r"job name `(?P<job>[a-z0-9_-]+)`")
_ROW_RE = re.compile(
    r"^\|\s*`(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(?P<type>[a-z]+)\s*\|(?P<labels>.*)\|\s*$"
)
_LABEL_RE = re.compile(r"`(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)`(?:\s*\((?P<values>[^)]*)\))?")
_VALUE_RE = re.compile(r"`([^`]*)`")


class ContractFormatError(ValueError):
    """docs/contract.md's metric tables are not in the expected shape."""


@dataclass(frozen=True)
class MetricSpec:
    """One row of a contract metric table."""

    name: str
    type: str
    labels: tuple[str, ...]
    job: str
    # Values the contract enumerates for a label, e.g. reason -> (framing, schema, avro, aspect).
    label_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def series_names(self) -> frozenset[str]:
        """Names of the series a Prometheus client exports for this metric (no `_created`)."""
        if self.type == "counter":
            return frozenset({self.name if self.name.endswith("_total") else f"{self.name}_total"})
        if self.type == "gauge":
            return frozenset({self.name})
        if self.type == "histogram":
            return frozenset({f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum"})
        if self.type == "summary":
            return frozenset({self.name, f"{self.name}_count", f"{self.name}_sum"})
        # info: prometheus-client's Info("x") exports the series x_info.
        return frozenset({self.name if self.name.endswith("_info") else f"{self.name}_info"})

    def allowed_labels(self, series_name: str) -> frozenset[str]:
        """Labels a selector of `series_name` may match on."""
        extra: set[str] = set()
        if self.type == "histogram" and series_name.endswith("_bucket"):
            extra.add("le")
        if self.type == "summary" and series_name == self.name:
            extra.add("quantile")
        return frozenset(self.labels) | TARGET_LABELS | extra


def parse_contract(path: Path = CONTRACT_PATH) -> list[MetricSpec]:
    """Every metric row of the "Prometheus metrics" section, with the job named above its table."""
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == _SECTION_HEADING)
    except StopIteration:
        raise ContractFormatError(f"{path}: no '{_SECTION_HEADING}' section") from None
    specs: list[MetricSpec] = []
    job: str | None = None
    for lineno, line in enumerate(lines[start + 1 :], start=start + 2):
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            found = _JOB_RE.search(line)
            if found:
                job = found.group("job")
            continue
        row = _ROW_RE.match(line)
        if row is None:
            continue  # table header or separator
        if job is None:
            raise ContractFormatError(f"{path}:{lineno}: metric row before any 'job name `...`'")
        mtype = row.group("type")
        if mtype not in METRIC_TYPES:
            raise ContractFormatError(f"{path}:{lineno}: unknown metric type {mtype!r}")
        labels: list[str] = []
        values: dict[str, tuple[str, ...]] = {}
        for match in _LABEL_RE.finditer(row.group("labels")):
            label = match.group("label")
            labels.append(label)
            if match.group("values"):
                values[label] = tuple(_VALUE_RE.findall(match.group("values")))
        specs.append(
            MetricSpec(
                name=row.group("name"),
                type=mtype,
                labels=tuple(labels),
                job=job,
                label_values=values,
            )
        )
    if not specs:
        raise ContractFormatError(f"{path}: the '{_SECTION_HEADING}' section lists no metric")
    return specs


@dataclass(frozen=True)
class SeriesInfo:
    """What a series name stands for: its contract metric (None for Prometheus' own `up`)."""

    name: str
    spec: MetricSpec | None
    labels: frozenset[str]


def series_index(specs: Iterable[MetricSpec]) -> dict[str, SeriesInfo]:
    """Series name -> metric, for every series the contract's metrics export, plus `up`."""
    index: dict[str, SeriesInfo] = {
        name: SeriesInfo(name, None, labels) for name, labels in BUILTIN_SERIES.items()
    }
    for spec in specs:
        for series in spec.series_names():
            if series in index:
                raise ContractFormatError(f"series {series} is exported by two metrics")
            index[series] = SeriesInfo(series, spec, spec.allowed_labels(series))
    return index
