"""Render the Helm chart and read the manifests back, strictly."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from .tools import CHART_DIR, helm_binary

FULL_VALUES = CHART_DIR / "ci" / "full-values.yaml"
# Rendered for a fixed Kubernetes version, so the result does not depend on how helm was built.
KUBE_VERSION = "1.31.0"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


class DuplicateKeyError(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; kubectl refuses the manifest. So do we."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise DuplicateKeyError(f"duplicate key {key!r} at {key_node.start_mark}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_manifests(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.load_all(text, Loader=_StrictLoader) if d]
    assert all(isinstance(d, dict) for d in docs)
    return docs


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=180, check=False
    )


def render(
    *value_files: Path,
    sets: tuple[str, ...] = (),
    release: str = "datahub-lambda-trigger",
    namespace: str = "datahub",
    kube_version: str = KUBE_VERSION,
) -> subprocess.CompletedProcess[str]:
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    args += ["--kube-version", kube_version]
    for path in value_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return helm(*args)


def rendered(*value_files: Path, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    result = render(*value_files, sets=sets)
    assert result.returncode == 0, result.stderr
    return parse_manifests(result.stdout)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in by_kind(docs, kind)
        if component is None
        or d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_names(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


def env_value(container: dict[str, Any], name: str) -> Any:
    for entry in container.get("env", []):
        if entry["name"] == name:
            return entry.get("value", entry.get("valueFrom"))
    raise KeyError(name)
