"""docs/deploying-on-aws.md: every values block renders with the chart, the datahub-helm block is
the tested snippet file, and the lines and policy statements it quotes are the code's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lambda_trigger.kafka_policy import MskAccess, msk_statements
from lambda_trigger_consumer.topics import TopicSetupError, replication_for

from .manifests import by_kind, containers, helm, parse_manifests, render, workloads
from .tools import CHART_DIR, REPO_ROOT

PAGE = REPO_ROOT / "docs" / "deploying-on-aws.md"
SNIPPET = REPO_ROOT / "deploy" / "datahub-helm" / "values-frontend.yaml"
MAPPING = REPO_ROOT / "mappings" / "example.yaml"


def _blocks(lang: str) -> list[str]:
    """Fenced blocks of one language ("" for a bare fence), indented ones included."""
    blocks: list[str] = []
    current: list[str] | None = None
    fence = ""
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if current is None and stripped.startswith("```"):
            fence, current = stripped[3:], []
            indent = len(line) - len(line.lstrip())
        elif current is not None and stripped == "```":
            if fence == lang:
                blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line[indent:])
    return blocks


def _chart_blocks() -> list[str]:
    return [b for b in _blocks("yaml") if "datahub-frontend:" not in b]


@pytest.mark.parametrize("index", range(len(_chart_blocks())))
def test_every_values_block_renders(index: int, tmp_path: Path) -> None:
    block = _chart_blocks()[index]
    values = tmp_path / "values.yaml"
    values.write_text(block, encoding="utf-8")
    result = render(values)
    assert result.returncode == 0, f"{block}\n{result.stderr}"


def test_the_whole_values_file_lints_and_renders_msk_iam_and_glue(tmp_path: Path) -> None:
    (block,) = [b for b in _chart_blocks() if "lambda-trigger-values.yaml" in b]
    values = tmp_path / "lambda-trigger-values.yaml"
    values.write_text(block, encoding="utf-8")
    lint = helm("lint", "--strict", str(CHART_DIR), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    result = render(values, sets=())
    assert result.returncode == 0, result.stderr
    docs = parse_manifests(result.stdout)
    consumer = next(w for w in workloads(docs) if w["metadata"]["name"].endswith("-consumer"))
    (container,) = containers(consumer)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LAMBDA_TRIGGER_KAFKA_AUTH"] == "msk-iam"
    assert env["SCHEMA_REGISTRY_TYPE"] == "AWS_GLUE"
    assert by_kind(docs, "Ingress") and by_kind(docs, "PrometheusRule")
    # The install command uses the file name and the chart path of the page.
    (install,) = [b for b in _blocks("sh") if "helm upgrade --install" in b]
    assert "-f lambda-trigger-values.yaml" in install
    assert (REPO_ROOT / "deploy/helm/datahub-lambda-trigger/Chart.yaml").is_file()
    assert MAPPING.parent.is_dir()


def test_datahub_helm_block_is_the_tested_snippet() -> None:
    (block,) = [b for b in _blocks("yaml") if "datahub-frontend:" in b]
    page: dict[str, Any] = yaml.safe_load(block)
    snippet: dict[str, Any] = yaml.safe_load(SNIPPET.read_text(encoding="utf-8"))
    assert page == snippet


def test_the_replication_line_is_the_consumers() -> None:
    (quoted,) = [b for b in _blocks("") if "LAMBDA_TRIGGER_TOPIC_REPLICATION=3" in b]
    with pytest.raises(TopicSetupError) as raised:
        replication_for(
            3,
            1,
            "prerequisites-kafka:9092",
            ["DataHubLambdaTrigger_Runs_v1", "DataHubLambdaTrigger_DeadLetter_v1"],
        )
    assert quoted.strip() == f"not starting: {raised.value}"


def test_the_msk_table_names_the_statements_iam_policy_prints() -> None:
    text = PAGE.read_text(encoding="utf-8")
    access = MskAccess.for_cluster(
        "arn:aws:kafka:eu-west-1:123456789012:cluster/c/u",
        mcl_topic="m",
        ledger_topic="l",
        dead_letter_topic="d",
        group_id="g",
    )
    for statement in msk_statements(access):
        row = next(line for line in text.splitlines() if f"| `{statement['Sid']}` |" in line)
        for action in statement["Action"]:
            assert f"`{action}`" in row, (statement["Sid"], action)
