"""grafana/alerts: promtool check/test, contract metrics, annotations, test coverage."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .checks import expression_problems
from .contract_metrics import REPO_ROOT, SeriesInfo
from .expressions import RULES_PATH, RULES_TEST_PATH, load_rules

DOC_PATH = REPO_ROOT / "docs" / "observability.md"
SEVERITIES = {"critical", "warning", "info"}
REQUIRED_ALERTS = {
    "LambdaTriggerConsumerDown",
    "LambdaTriggerConsumerLagGrowing",
    "LambdaTriggerInvocationFailureRatioHigh",
    "LambdaTriggerDecodeFailures",
    "LambdaTriggerConsumerStalled",
    "LambdaTriggerApiErrorRatioHigh",
    "LambdaTriggerDeadLetters",
    "LambdaTriggerStatusWriteFailures",
}

RULES = load_rules()
ALERTS = [r for r in RULES if "alert" in r]


def _github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _doc_anchors() -> set[str]:
    return {
        _github_anchor(line.lstrip("#"))
        for line in DOC_PATH.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


def test_the_required_alerts_exist() -> None:
    names = [r["alert"] for r in ALERTS]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_has_severity_annotations_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["labels"]["service"] == "lambda-trigger"
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert len(annotations["description"].strip()) > 40
    runbook = annotations["runbook"]
    assert runbook == f"docs/observability.md#{rule['alert'].lower()}"
    assert runbook.split("#", 1)[1] in _doc_anchors(), f"docs/observability.md has no {runbook}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.get("alert") or r.get("record"))
def test_rule_uses_only_contract_metrics_and_labels(
    rule: dict[str, Any], contract_index: dict[str, SeriesInfo]
) -> None:
    assert expression_problems(str(rule["expr"]), contract_index) == []
    # Scrape-target alerts must name the contract's job, or they watch nothing.
    for job in re.findall(r'job="([^"]+)"', str(rule["expr"])):
        assert job in {"lambda-trigger-consumer", "lambda-trigger-api"}


def _test_cases() -> list[tuple[str, bool]]:
    """(alertname, fires) for every alert_rule_test case of the promtool test file."""
    data = yaml.safe_load(RULES_TEST_PATH.read_text(encoding="utf-8"))
    assert data["rule_files"] == [RULES_PATH.name]
    return [
        (case["alertname"], bool(case.get("exp_alerts")))
        for test in data["tests"]
        for case in test.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_every_alert_has_a_firing_and_a_silent_test_case(rule: dict[str, Any]) -> None:
    cases = [fires for name, fires in _test_cases() if name == rule["alert"]]
    assert True in cases, f"no promtool case where {rule['alert']} fires"
    assert False in cases, f"no promtool case where {rule['alert']} stays silent"


def _promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.prometheus
def test_promtool_check_rules(promtool: str) -> None:
    result = _promtool(promtool, "check", "rules", str(RULES_PATH), cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in result.stdout


@pytest.mark.prometheus
def test_promtool_test_rules(promtool: str) -> None:
    result = _promtool(promtool, "test", "rules", RULES_TEST_PATH.name, cwd=RULES_PATH.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _mutated_copy(tmp_path: Path, alert: str, expr: str, for_: str | None) -> Path:
    """The rule file with `alert` replaced, and the promtool cases of that alert only."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = expr
                if for_ is not None:
                    rule["for"] = for_
    (tmp_path / RULES_PATH.name).write_text(yaml.safe_dump(data), encoding="utf-8")
    tests = yaml.safe_load(RULES_TEST_PATH.read_text(encoding="utf-8"))
    kept = []
    for test in tests["tests"]:
        cases = [c for c in test.get("alert_rule_test", []) if c["alertname"] == alert]
        if cases:
            kept.append({**test, "alert_rule_test": cases, "promql_expr_test": []})
    tests["tests"] = kept
    (tmp_path / RULES_TEST_PATH.name).write_text(yaml.safe_dump(tests), encoding="utf-8")
    return tmp_path


@pytest.mark.prometheus
@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_promtool_cases_notice_a_broken_alert(
    rule: dict[str, Any], promtool: str, tmp_path: Path
) -> None:
    """An alert that never fires, and one that always fires, both fail its promtool cases."""
    copies = {
        # control: the same alert, only its own cases: must pass, or the mutants prove nothing
        "unchanged": _mutated_copy(tmp_path / "same", rule["alert"], str(rule["expr"]), None),
        "never-firing": _mutated_copy(tmp_path / "never", rule["alert"], "vector(1) < 0", None),
        "always-firing": _mutated_copy(
            tmp_path / "always", rule["alert"], str(rule["expr"]) + " or vector(1)", "0s"
        ),
    }
    runs = {
        kind: subprocess.Popen(
            [promtool, "test", "rules", RULES_TEST_PATH.name],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for kind, cwd in copies.items()
    }
    outputs = {kind: proc.communicate(timeout=120)[0] for kind, proc in runs.items()}
    assert runs["unchanged"].returncode == 0, outputs["unchanged"]
    assert runs["never-firing"].returncode != 0, f"{rule['alert']} never firing passed"
    assert runs["always-firing"].returncode != 0, f"{rule['alert']} always firing passed"
    for kind in ("never-firing", "always-firing"):
        assert "FAILED" in outputs[kind], outputs[kind]  # a failed case, not a broken file
