"""Read a service's live /metrics page: sample values by name and labels, family types.

Parses the Prometheus text format with prometheus_client's own parser, so what is read is
exactly what a Prometheus scraping the service sees (minus `job` / `instance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

LabelSet = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Family:
    """One metric family as exposed: its type (`info` shows as a gauge in the text format)."""

    name: str
    type: str
    sample_names: frozenset[str]
    # Label names of the family's samples, without `le` / `quantile`.
    labels: frozenset[str]


@dataclass(frozen=True)
class Scrape:
    """One read of a /metrics page."""

    samples: Mapping[tuple[str, LabelSet], float]
    families: Mapping[str, Family]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[tuple[str, LabelSet], float] = {}
        families: dict[str, Family] = {}
        for family in text_string_to_metric_families(text):
            names: set[str] = set()
            labels: set[str] = set()
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
                if sample.name.endswith("_created"):
                    continue
                names.add(sample.name)
                labels |= set(sample.labels) - {"le", "quantile"}
            families[family.name] = Family(
                family.name, family.type, frozenset(names), frozenset(labels)
            )
        return cls(samples, families)

    def __repr__(self) -> str:
        return f"Scrape({len(self.samples)} samples)"

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """The sample with exactly these labels, or None when it is not exported."""
        return self.samples.get((name, frozenset((labels or {}).items())))

    def total(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
        wanted = set((labels or {}).items())
        return sum(
            value
            for (sample, label_set), value in self.samples.items()
            if sample == name and wanted <= label_set
        )

    def label_sets(self, name: str) -> list[dict[str, str]]:
        """The label sets `name` is exported with."""
        return [dict(labels) for (sample, labels) in self.samples if sample == name]

    def sample_names(self) -> frozenset[str]:
        return frozenset(name for name, _labels in self.samples)


def scrape(base_url: str, *, timeout: float = 5.0) -> Scrape:
    """GET <base_url>/metrics and parse it."""
    response = httpx.get(f"{base_url.rstrip('/')}/metrics", timeout=timeout)
    response.raise_for_status()
    return Scrape.parse(response.text)
