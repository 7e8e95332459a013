"""The promstack machinery end to end, against a STAND-IN exporter (not the real services).

A real Prometheus scrapes two stand-in processes (observability.standin_exporter) that serve
exactly the contract's metrics under the contract's job names, and every dashboard panel,
dashboard variable and alert selector must return at least one series, every alert expression
must evaluate without error, and every alert rule must be healthy. The same check against the
real consumer and api belongs with the end-to-end tests of those services (see
docs/observability.md, "Checking dashboards against running services").
"""

from __future__ import annotations

import time

import pytest

from .conftest import StandinFactory
from .expressions import RULES_PATH, NamedExpr, all_expressions
from .promstack import PromStack, ScrapeTarget, failed

pytestmark = pytest.mark.prometheus


def test_every_expression_returns_series_against_the_standin(
    prometheus_bin: str, standin_exporter: StandinFactory
) -> None:
    targets = [
        ScrapeTarget("lambda-trigger-consumer", standin_exporter("consumer")),
        ScrapeTarget("lambda-trigger-api", standin_exporter("api")),
    ]
    started = time.monotonic()
    with PromStack(targets, rule_files=[RULES_PATH], binary=prometheus_bin) as prom:
        prom.wait_until_up(timeout=30, min_scrapes=3)
        exprs = all_expressions()
        results = prom.evaluate(exprs)
        assert [r.describe() for r in failed(results)] == []
        assert len(results) == len(exprs)

        # The machinery does report what is missing.
        probes = [
            NamedExpr(
                "probe: unknown metric", "lambda_trigger_consumer_not_exported_total", "panel"
            ),
            NamedExpr(
                "probe: missing label", "lambda_trigger_consumer_info", "variable", label="target"
            ),
            NamedExpr("probe: bad syntax", "sum(", "panel"),
            NamedExpr("probe: filter", "up == 0", "alert", expect_series=False),
        ]
        verdicts = {r.named.source: r.ok for r in prom.evaluate(probes)}
        assert verdicts == {
            "probe: unknown metric": False,
            "probe: missing label": False,
            "probe: bad syntax": False,
            "probe: filter": True,
        }

        # Alert rules evaluate without runtime errors on live data (e.g. many-to-many matching).
        deadline = time.monotonic() + 20
        while True:
            rules = [r for g in prom.rules() for r in g["rules"] if r["type"] == "alerting"]
            if all(r.get("health") != "unknown" for r in rules) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {r["name"]: r.get("lastError") for r in rules if r.get("health") != "ok"} == {}
    assert time.monotonic() - started < 60
