"""Every PromQL expression of the Grafana dashboard and the Prometheus alert rules."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .contract_metrics import REPO_ROOT
from .promql import analyse, parse_label_values, substitute_grafana_variables

DASHBOARD_PATH = REPO_ROOT / "grafana" / "dashboards" / "lambda-trigger.json"
RULES_PATH = REPO_ROOT / "grafana" / "alerts" / "lambda-trigger.rules.yml"
RULES_TEST_PATH = REPO_ROOT / "grafana" / "alerts" / "lambda-trigger.rules.test.yml"

# Values for Grafana's built-in variables when an expression is run outside Grafana.
GRAFANA_BUILTINS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# The dashboard's own variables are multi-value with "All" = ".*" and only used in `=~`
# matchers (test_dashboard checks that), so ".*" stands for "every instance / target".
DASHBOARD_TEST_VALUES: Mapping[str, str] = {
    **GRAFANA_BUILTINS,
    "instance": ".*",
    "api_instance": ".*",
    "target": ".*",
}

Kind = Literal["panel", "variable", "alert", "alert-selector"]


@dataclass(frozen=True)
class NamedExpr:
    """One expression to run, where it comes from, and whether it must return series.

    `expr` is the expression as written (Grafana variables not substituted); for a `variable`
    it is the selector of a `label_values(selector, label)` query and `label` the label.
    Alert expressions compare against thresholds and return nothing while all is well, so for
    alerts the full expression is only checked for errors (`expect_series=False`) and each of
    its vector selectors, as `alert-selector`, must return series.
    """

    source: str
    expr: str
    kind: Kind
    expect_series: bool = True
    label: str | None = None

    def concrete(self, values: Mapping[str, str] = DASHBOARD_TEST_VALUES) -> str:
        return substitute_grafana_variables(self.expr, values)


def load_dashboard(path: Path = DASHBOARD_PATH) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dashboard is a JSON object")
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """All panels, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions(path: Path = DASHBOARD_PATH) -> list[NamedExpr]:
    dashboard = load_dashboard(path)
    out: list[NamedExpr] = []
    for panel in iter_panels(dashboard):
        if panel.get("type") == "row":
            continue
        for target in panel.get("targets", []):
            source = f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}"
            out.append(NamedExpr(source, str(target.get("expr", "")), "panel"))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        selector, label = parse_label_values(text)
        if selector is None:
            continue
        out.append(NamedExpr(f"variable ${variable['name']}", selector, "variable", label=label))
    return out


def load_rules(path: Path = RULES_PATH) -> list[dict[str, Any]]:
    """Every rule (alerting and recording) of a Prometheus rule file, group name added."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules: list[dict[str, Any]] = []
    for group in data["groups"]:
        for rule in group["rules"]:
            rules.append({**rule, "group": group["name"]})
    return rules


def alert_expressions(path: Path = RULES_PATH) -> list[NamedExpr]:
    out: list[NamedExpr] = []
    for rule in load_rules(path):
        name = rule.get("alert") or rule.get("record")
        expr = str(rule["expr"])
        out.append(NamedExpr(f"alert {name}", expr, "alert", expect_series=False))
        seen: set[str] = set()
        for selector in analyse(expr).selectors:
            if selector.text in seen:
                continue
            seen.add(selector.text)
            out.append(
                NamedExpr(f"alert {name} selector {selector.text}", selector.text, "alert-selector")
            )
    return out


def all_expressions(
    dashboard_path: Path = DASHBOARD_PATH, rules_path: Path = RULES_PATH
) -> list[NamedExpr]:
    return dashboard_expressions(dashboard_path) + alert_expressions(rules_path)
