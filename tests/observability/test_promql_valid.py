"""Every dashboard and alert expression parses and evaluates on a real Prometheus."""

from __future__ import annotations

import time

import pytest

from .expressions import RULES_PATH, all_expressions, load_rules
from .promstack import PrometheusNotInstalled, PromQLError, PromStack, find_binary


def test_a_missing_binary_names_the_package() -> None:
    with pytest.raises(PrometheusNotInstalled, match="apt-get install prometheus"):
        find_binary("prometheus-binary-that-does-not-exist")


@pytest.mark.prometheus
def test_every_expression_is_valid_promql(prometheus_bin: str) -> None:
    exprs = all_expressions()
    assert len(exprs) > 40
    with PromStack(binary=prometheus_bin) as prom:
        results = prom.evaluate(exprs)
        errors = [r.describe() for r in results if r.error is not None]
        assert errors == []
        # The check is not vacuous: Prometheus does reject a broken expression.
        with pytest.raises(PromQLError, match="parse error"):
            prom.query("sum by (le (rate(x[1m]))")


@pytest.mark.prometheus
def test_prometheus_loads_and_evaluates_the_rule_file(prometheus_bin: str) -> None:
    alerts = {r["alert"] for r in load_rules() if "alert" in r}
    with PromStack(
        rule_files=[RULES_PATH], evaluation_interval="1s", binary=prometheus_bin
    ) as prom:
        deadline = time.monotonic() + 20
        while True:
            loaded = {
                rule["name"]: rule
                for group in prom.rules()
                for rule in group["rules"]
                if rule["type"] == "alerting"
            }
            evaluated = all(rule.get("health") != "unknown" for rule in loaded.values())
            if (set(loaded) == alerts and evaluated) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert set(loaded) == alerts
        unhealthy = {n: r.get("lastError") for n, r in loaded.items() if r.get("health") != "ok"}
        assert unhealthy == {}
