"""deploy/datahub-helm/values-frontend.yaml: the datahub-helm values for the patched frontend render
the exact image a cluster pulls, under datahub-helm's image rule.

datahub-helm (chart 1.1.0 at commit 0e3940bd, app v1.7.0) renders datahub-frontend's image with its
`datahub.image` helper (charts/datahub/templates/_helpers.tpl, used by
charts/datahub/subcharts/datahub-frontend/templates/deployment.yaml): the registry is
`image.registry`, else `global.imageRegistry` (default "docker.io"); then `/`, `image.repository`,
`:`, and `image.tag`, else `global.datahub.version` (default "v1.7.0"). The rule is restated here as
a one-line template and rendered by helm itself, so Sprig's `default` (an empty string counts as
unset) behaves exactly as in datahub-helm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .manifests import helm
from .tools import REPO_ROOT

SNIPPET = REPO_ROOT / "deploy" / "datahub-helm" / "values-frontend.yaml"
# datahub-helm 1.1.0's defaults (charts/datahub/values.yaml, `global`).
GLOBAL_DEFAULTS = {"imageRegistry": "docker.io", "datahub": {"version": "v1.7.0"}}
RULE = (
    "image: {{ .Values.image.registry | default .Values.global.imageRegistry }}"
    "/{{ .Values.image.repository }}"
    ":{{ .Values.image.tag | default .Values.global.datahub.version }}\n"
)


def _render_image(tmp_path: Path, image: dict[str, Any], global_values: dict[str, Any]) -> str:
    chart = tmp_path / "datahub-image-rule"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: datahub-image-rule\nversion: 0.0.1\n", encoding="utf-8"
    )
    (chart / "templates" / "image.yaml").write_text(RULE, encoding="utf-8")
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"image": image, "global": global_values}), encoding="utf-8")
    result = helm("template", "datahub", str(chart), "-f", str(values))
    assert result.returncode == 0, result.stderr
    (doc,) = [d for d in yaml.safe_load_all(result.stdout) if d]
    rendered: str = doc["image"]
    return rendered


@pytest.fixture(scope="module")
def frontend() -> dict[str, Any]:
    values = yaml.safe_load(SNIPPET.read_text(encoding="utf-8"))
    section: dict[str, Any] = values["datahub-frontend"]
    return section


def test_snippet_renders_the_exact_image(frontend: dict[str, Any], tmp_path: Path) -> None:
    image = _render_image(tmp_path, frontend["image"], GLOBAL_DEFAULTS)
    assert (
        image == "registry.example.com/data-platform/datahub-frontend-react:v1.7.0-lambda-trigger"
    )


def test_registry_never_inside_the_repository(frontend: dict[str, Any]) -> None:
    first = frontend["image"]["repository"].split("/", 1)[0]
    # Docker reads a first path part with a dot or a port (or "localhost") as a registry host.
    assert "." not in first and ":" not in first and first != "localhost", first
    assert frontend["image"]["registry"] and "/" not in frontend["image"]["registry"].rstrip("/")


def test_the_rule_catches_a_registry_inside_the_repository(tmp_path: Path) -> None:
    """The old README shape: the pull would go to Docker Hub and fail. The rule must show it."""
    wrong = {
        "repository": "registry.example.com/data-platform/datahub-frontend-react",
        "tag": "v1.7.0-lambda-trigger",
    }
    image = _render_image(tmp_path, wrong, GLOBAL_DEFAULTS)
    assert image == (
        "docker.io/registry.example.com/data-platform/datahub-frontend-react:v1.7.0-lambda-trigger"
    )


def test_a_global_registry_does_not_override_the_snippets(
    frontend: dict[str, Any], tmp_path: Path
) -> None:
    mirror = {**GLOBAL_DEFAULTS, "imageRegistry": "mirror.example.com"}
    image = _render_image(tmp_path, frontend["image"], mirror)
    assert image.startswith("registry.example.com/")
    untagged = {k: v for k, v in frontend["image"].items() if k != "tag"}
    assert _render_image(tmp_path, untagged, GLOBAL_DEFAULTS).endswith(":v1.7.0")


def test_snippet_routes_the_prefix_to_the_charts_api_service(frontend: dict[str, Any]) -> None:
    (host,) = frontend["ingress"]["hosts"]
    (redirect,) = host["redirectPaths"]
    assert redirect["path"] == "/api/ingestion/"
    # The chart's api Service for a release named datahub-lambda-trigger, and its port.
    chart_values = yaml.safe_load(
        (REPO_ROOT / "deploy/helm/datahub-lambda-trigger/values.yaml").read_text(encoding="utf-8")
    )
    assert redirect["name"] == "datahub-lambda-trigger-api"
    # datahub-helm's ingress template compares the port with the string "use-annotation".
    assert redirect["port"] == str(chart_values["api"]["service"]["port"])
    assert host["paths"] == ["/"]
