"""docs/deploying.md, "Kubernetes (Helm)": the values and names it gives work with the chart as it is.

(The section was README.md's until issue 23 moved the manual into docs/.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .manifests import KUBE_VERSION, by_kind, helm, one, parse_manifests, pod_spec
from .tools import CHART_DIR, REPO_ROOT

RELEASE, NAMESPACE = "datahub-lambda-trigger", "datahub"


@pytest.fixture(scope="module")
def section() -> str:
    page = (REPO_ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")
    match = re.search(r"^## Kubernetes \(Helm\)\n(.*?)^## ", page, flags=re.MULTILINE | re.DOTALL)
    assert match, "docs/deploying.md has no 'Kubernetes (Helm)' section"
    return match.group(1)


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture(scope="module")
def values(section: str) -> dict[str, Any]:
    (ours,) = [b for b in _blocks(section, "yaml") if "lambda-trigger-values.yaml" in b]
    parsed: dict[str, Any] = yaml.safe_load(ours)
    return parsed


@pytest.fixture(scope="module")
def docs(values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The chart rendered exactly as docs/deploying.md installs it."""
    path = tmp_path_factory.mktemp("readme") / "lambda-trigger-values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    result = helm(
        "template", RELEASE, str(CHART_DIR), "--namespace", NAMESPACE,
        "--kube-version", KUBE_VERSION, "-f", str(path),
        "--set-file", f"mapping.content={REPO_ROOT / 'mappings' / 'example.yaml'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return parse_manifests(result.stdout)


def test_install_command_matches_the_section(section: str) -> None:
    (install,) = [b for b in _blocks(section, "sh") if "helm upgrade --install" in b]
    assert (
        f"helm upgrade --install {RELEASE} deploy/helm/datahub-lambda-trigger -n {NAMESPACE}"
        in (install.replace("\\\n", " ").replace("    ", " "))
    )
    assert "--set-file mapping.content=" in install
    assert (REPO_ROOT / "deploy" / "helm" / "datahub-lambda-trigger" / "Chart.yaml").is_file()


def test_iam_service_account_is_the_consumers(section: str, docs: list[dict[str, Any]]) -> None:
    command = " ".join(b for b in _blocks(section, "sh") if "eksctl" in b).replace("\\\n", " ")
    name = re.search(r"--name (\S+)", command)
    namespace = re.search(r"--namespace (\S+)", command)
    role_name = re.search(r"--role-name (\S+)", command)
    assert name and namespace and role_name
    (account,) = by_kind(docs, "ServiceAccount")
    assert account["metadata"]["name"] == name.group(1)
    assert namespace.group(1) == NAMESPACE
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.endswith("role/" + role_name.group(1))


def test_token_secret_is_the_one_the_chart_reads(section: str, docs: list[dict[str, Any]]) -> None:
    command = next(b for b in _blocks(section, "sh") if "create secret generic" in b)
    match = re.search(r"create secret generic (\S+) --from-literal=(\w+)=", command)
    assert match
    api = one(docs, "Deployment", "api")
    (container,) = pod_spec(api)["containers"]
    (token,) = [e for e in container["env"] if e["name"] == "DATAHUB_GMS_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": match.group(1), "key": match.group(2)}


def test_datahub_helm_snippet_routes_to_the_api_service(
    section: str, docs: list[dict[str, Any]]
) -> None:
    (snippet,) = [b for b in _blocks(section, "yaml") if "datahub-frontend:" in b]
    frontend = yaml.safe_load(snippet)["datahub-frontend"]
    assert frontend["image"]["repository"].endswith("/datahub-frontend-react")
    (host,) = frontend["ingress"]["hosts"]
    (redirect,) = host["redirectPaths"]
    service = one(docs, "Service", "api")
    assert redirect["name"] == service["metadata"]["name"]
    # datahub-helm's template does `eq .port "use-annotation"`: a number stops its render.
    assert isinstance(redirect["port"], str)
    assert int(redirect["port"]) == service["spec"]["ports"][0]["port"]
    assert redirect["path"] == "/api/ingestion/"
    assert host["paths"] == ["/"]


def test_values_reach_the_manifests(values: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    consumer = one(docs, "Deployment", "consumer")
    assert (
        pod_spec(consumer)["terminationGracePeriodSeconds"]
        == values["consumer"]["terminationGracePeriodSeconds"]
    )
    images = {c["image"].rsplit(":", 1)[0] for d in docs if d["kind"] == "Deployment"
              for c in pod_spec(d)["containers"]}  # fmt: skip
    assert images == {
        values["api"]["image"]["repository"],
        values["consumer"]["image"]["repository"],
    }
    assert by_kind(docs, "ServiceMonitor") and by_kind(docs, "PrometheusRule")


def test_mapping_configmap_name_in_the_text(section: str, docs: list[dict[str, Any]]) -> None:
    named = re.search(r"kubectl edit configmap (\S+?)`", section)
    assert named
    names = {c["metadata"]["name"] for c in by_kind(docs, "ConfigMap")}
    assert named.group(1) in names
    mapping = next(c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"] == named.group(1))
    assert mapping["data"]["mapping.yaml"] == Path(
        REPO_ROOT / "mappings" / "example.yaml"
    ).read_text(encoding="utf-8")
