"""The PromQL reader finds every selector and grouping label (and rejects garbage)."""

from __future__ import annotations

import pytest

from .promql import (
    Matcher,
    PromQLSyntaxError,
    analyse,
    grafana_variables,
    parse_label_values,
    substitute_grafana_variables,
)


def metrics(expr: str) -> list[str | None]:
    return [s.metric for s in analyse(expr).selectors]


def test_aggregation_with_by_before_and_after_the_arguments() -> None:
    parts = analyse(
        'histogram_quantile(0.95, sum by (le, route) (rate(x_bucket{a="b", c=~"d|e"}[5m])))'
        " + sum(y) by (instance)"
    )
    assert [s.metric for s in parts.selectors] == ["x_bucket", "y"]
    assert parts.selectors[0].matchers == (Matcher("a", "=", "b"), Matcher("c", "=~", "d|e"))
    assert parts.selectors[0].text == 'x_bucket{a="b", c=~"d|e"}'
    assert parts.grouping_labels == {"le", "route", "instance"}
    assert parts.functions == {"histogram_quantile", "sum", "rate"}


def test_binary_operators_keywords_offset_and_vector_matching() -> None:
    parts = analyse(
        "(time() - max by (job, instance) (a) > 600) and on (job, instance) "
        "b unless b offset 10m or c * on (x) group_left (y) d > bool 1e3"
    )
    assert [s.metric for s in parts.selectors] == ["a", "b", "b", "c", "d"]
    assert parts.grouping_labels == {"job", "instance", "x", "y"}


def test_subquery_ranges_and_at_modifier_are_not_selectors() -> None:
    assert metrics("max_over_time(rate(x[1m])[10m:1m]) @ start()") == ["x"]
    assert metrics("deriv(x[5m:30s] offset -5m)") == ["x"]


def test_name_matcher_strings_and_numbers() -> None:
    assert metrics('{__name__="foo", job="bar"}') == ["foo"]
    assert metrics('label_replace(x, "dst", "$1", "src", "(.*)") > 0.95') == ["x"]
    assert metrics('count_values("le", topk(5, x{a!~"\\"quoted\\""}))') == ["x"]
    assert analyse('x{a!~"\\"q\\""}').selectors[0].matchers == (Matcher("a", "!~", '"q"'),)
    assert metrics("vector(0) + scalar(x) * -1.5e-3 + Inf") == ["x"]


def test_label_named_like_a_keyword_inside_matchers() -> None:
    parts = analyse('x{on="1", by="2"}')
    assert [m.label for m in parts.selectors[0].matchers] == ["on", "by"]
    assert parts.grouping_labels == frozenset()


@pytest.mark.parametrize(
    "bad",
    ["sum(x", "x)", 'x{a="b"', "x{a b}", 'x{a=b"}', 'x{a="1" b="2"}', "x ? y", "sum by (le"],
)
def test_garbage_is_rejected(bad: str) -> None:
    with pytest.raises(PromQLSyntaxError):
        analyse(bad)


def test_grafana_variables_are_found_and_substituted() -> None:
    expr = 'rate(x{instance=~"$instance", t=~"${target:regex}", o="[[old]]"}[$__rate_interval])'
    assert grafana_variables(expr) == {"instance", "target", "old", "__rate_interval"}
    values = {"instance": ".*", "target": "a|b", "old": "z", "__rate_interval": "1m"}
    assert (
        substitute_grafana_variables(expr, values) == 'rate(x{instance=~".*", t=~"a|b", o="z"}[1m])'
    )
    with pytest.raises(KeyError, match="instance"):
        substitute_grafana_variables(expr, {})


def test_label_values_queries() -> None:
    assert parse_label_values('label_values(up{job="a"}, instance)') == ('up{job="a"}', "instance")
    assert parse_label_values("label_values(job)") == (None, "job")
    with pytest.raises(PromQLSyntaxError):
        parse_label_values("query_result(up)")
