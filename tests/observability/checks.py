"""Compare the metrics and labels an expression uses with the contract's."""

from __future__ import annotations

from collections.abc import Mapping

from .contract_metrics import TARGET_LABELS, SeriesInfo
from .promql import analyse


def expression_problems(expr: str, index: Mapping[str, SeriesInfo]) -> list[str]:
    """Why `expr` does not fit the contract: unknown series, labels no metric of it has."""
    problems: list[str] = []
    parts = analyse(expr)
    allowed_grouping: set[str] = set(TARGET_LABELS)
    for selector in parts.selectors:
        metric = selector.metric
        if metric is None:
            problems.append(f"selector {selector.text} names no metric")
            continue
        info = index.get(metric)
        if info is None:
            problems.append(f"{metric} is not a series any contract metric exports")
            continue
        allowed_grouping |= info.labels
        for matcher in selector.matchers:
            if matcher.label != "__name__" and matcher.label not in info.labels:
                problems.append(
                    f"{selector.text}: {metric} has no label {matcher.label!r} "
                    f"(it has {sorted(info.labels)})"
                )
    for label in sorted(parts.grouping_labels - allowed_grouping):
        problems.append(f"groups by {label!r}, which none of its series has")
    return problems
