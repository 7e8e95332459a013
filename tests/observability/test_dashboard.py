"""grafana/dashboards/lambda-trigger.json: structure, variables, and metrics from the contract."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .checks import expression_problems
from .contract_metrics import MetricSpec, SeriesInfo
from .expressions import (
    DASHBOARD_PATH,
    DASHBOARD_TEST_VALUES,
    GRAFANA_BUILTINS,
    NamedExpr,
    dashboard_expressions,
    iter_panels,
    load_dashboard,
)
from .promql import analyse, grafana_variables, parse_label_values

MULTI_VALUE_VARIABLES = ("instance", "api_instance", "target")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(dashboard) if p.get("type") != "row"]


@pytest.fixture(scope="module")
def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_is_a_grafana_10_11_dashboard(dashboard: dict[str, Any]) -> None:
    json.loads(DASHBOARD_PATH.read_text(encoding="utf-8"))  # strict JSON, no trailing commas
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] == "lambda-trigger"
    assert dashboard["title"]
    # Provisioned dashboards must not carry a database id.
    assert "id" not in dashboard or dashboard["id"] is None


def test_datasource_and_query_variables(variables: dict[str, dict[str, Any]]) -> None:
    ds = variables["datasource"]
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"
    for name in MULTI_VALUE_VARIABLES:
        var = variables[name]
        assert var["type"] == "query", name
        assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
        assert var["multi"] is True and var["includeAll"] is True, name
        assert var["allValue"] == ".*", name
        assert var["definition"] == var["query"], name
    selector, label = parse_label_values(variables["instance"]["query"])
    assert label == "instance"
    assert selector is not None and selector.startswith("lambda_trigger_consumer_")
    selector, label = parse_label_values(variables["api_instance"]["query"])
    assert label == "instance"
    assert selector is not None and selector.startswith("lambda_trigger_api_")
    selector, label = parse_label_values(variables["target"]["query"])
    assert label == "target"
    assert selector is not None and "$instance" in selector


def test_every_panel_queries_prometheus(panels: list[dict[str, Any]]) -> None:
    assert len(panels) >= 20
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        where = f"panel {panel['id']} {panel['title']!r}"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel.get("targets"), f"{where} has no targets"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{where}: duplicate refId"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{where} target {target['refId']} has no expr"
            assert target["datasource"] == panel["datasource"], where
        assert panel.get("description"), f"{where} has no description"


def test_layout_fits_and_does_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{panel['title']!r} overlaps {other!r}"


def test_per_target_row_is_repeated(dashboard: dict[str, Any]) -> None:
    top = dashboard["panels"]
    rows = [i for i, p in enumerate(top) if p["type"] == "row"]
    repeated = [i for i in rows if top[i].get("repeat") == "target"]
    assert len(repeated) == 1
    start = repeated[0]
    end = next((i for i in rows if i > start), len(top))
    inner = top[start + 1 : end] + top[start].get("panels", [])
    assert inner, "the per-target row has no panels"
    for panel in inner:
        for target in panel["targets"]:
            assert 'target=~"$target"' in target["expr"], panel["title"]


def test_required_panels_exist(panels: list[dict[str, Any]]) -> None:
    exprs = "\n".join(t["expr"] for p in panels for t in p["targets"])
    for needle in (
        "lambda_trigger_consumer_received_messages_total",
        "lambda_trigger_consumer_key_discarded_messages_total",
        "lambda_trigger_consumer_decoded_messages_total",
        "lambda_trigger_consumer_accepted_requests_total",
        "sum by (outcome) (rate(lambda_trigger_consumer_invocations_total",
        "lambda_trigger_consumer_request_to_invoke_seconds_bucket",
        "max by (topic, partition) (lambda_trigger_consumer_lag_messages",
        "sum by (reason) (rate(lambda_trigger_consumer_decode_failures_total",
        "sum by (reason) (rate(lambda_trigger_consumer_dead_letters_total",
        "lambda_trigger_consumer_status_write_failures_total",
        "lambda_trigger_consumer_inflight_invocations",
        "time() - max by (instance) (lambda_trigger_consumer_last_commit_timestamp_seconds",
        "sum by (route, status_code) (rate(lambda_trigger_api_requests_total",
        'status_code=~"5.."',
        "histogram_quantile(0.95, sum by (le, route) (rate(lambda_trigger_api_request_duration_seconds_bucket",
        "lambda_trigger_api_datahub_request_duration_seconds_bucket",
        "lambda_trigger_api_datahub_request_failures_total",
    ):
        assert needle in exprs, f"no panel queries {needle}"
    for quantile in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({quantile}, sum by (le) "
            "(rate(lambda_trigger_consumer_invocation_duration_seconds_bucket" in exprs
        )


def _exprs() -> list[NamedExpr]:
    return dashboard_expressions()


@pytest.mark.parametrize("named", _exprs(), ids=lambda n: n.source)
def test_expression_uses_only_contract_metrics_and_labels(
    named: NamedExpr, contract_index: dict[str, SeriesInfo]
) -> None:
    assert expression_problems(named.concrete(), contract_index) == []


@pytest.mark.parametrize("named", _exprs(), ids=lambda n: n.source)
def test_expression_variables_are_defined_and_regex_matched(
    named: NamedExpr, variables: dict[str, dict[str, Any]]
) -> None:
    used = grafana_variables(named.expr)
    unknown = used - set(variables) - set(GRAFANA_BUILTINS)
    assert not unknown, f"undefined variables {unknown}"
    assert used <= set(DASHBOARD_TEST_VALUES)
    for name in used & set(MULTI_VALUE_VARIABLES):
        # A multi-value variable expands to a|b (or .*): only a regex matcher accepts it.
        uses = re.findall(rf'(=~|!~|=|!=)\s*"[^"]*\${name}\b', named.expr)
        assert uses and all(op in ("=~", "!~") for op in uses), (
            f"${name} outside =~ in {named.expr}"
        )
    if named.kind == "panel" and "rate(" in named.expr:
        assert "$__rate_interval" in named.expr, "rate windows follow Grafana's $__rate_interval"


def test_every_contract_metric_is_on_the_dashboard(contract_specs: list[MetricSpec]) -> None:
    used: set[str] = set()
    for named in _exprs():
        used |= {s.metric for s in analyse(named.concrete()).selectors if s.metric}
    missing = [s.name for s in contract_specs if not (s.series_names() & used)]
    assert missing == []


def test_histogram_quantiles_aggregate_buckets_by_le() -> None:
    for named in _exprs():
        for match in re.finditer(r"histogram_quantile\(([0-9.]+),\s*(.*)", named.expr):
            rest = match.group(2)
            assert re.match(r"sum by \(le\b[^)]*\) \(rate\([a-z_]+_bucket\{", rest), named.source
            assert 0 < float(match.group(1)) < 1


def test_the_contract_check_catches_a_wrong_panel(contract_index: dict[str, SeriesInfo]) -> None:
    """The per-expression check above is not vacuous."""
    assert expression_problems("rate(lambda_trigger_consumer_invocations[1m])", contract_index)
    assert expression_problems(
        'sum by (le) (rate(lambda_trigger_consumer_invocation_duration_seconds{x="1"}[1m]))',
        contract_index,
    )
    assert expression_problems(
        'sum by (route) (rate(lambda_trigger_consumer_invocations_total{outcome="success"}[1m]))',
        contract_index,
    ) == ["groups by 'route', which none of its series has"]
    assert expression_problems("lambda_trigger_consumer_invocations_created", contract_index)
