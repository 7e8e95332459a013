"""Packaging keeps building, quietly: the wheel, the license, the changelog, `npm ci` (issue 23).

- `pip wheel .` prints no deprecation warning from the build backend, with the newest setuptools
  pyproject's range allows and with the oldest (the SPDX `license` needs setuptools 77), and the
  wheel carries the license (`License-Expression`, the LICENSE file).
- CHANGELOG.md follows Keep a Changelog and has the version pyproject.toml builds.
- Every npm dependency with an install script is approved in package.json's `allowScripts` (what
  npm asks for), and a fresh `npm ci` prints no warning.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend-patch"
# What setuptools says when a project uses something it will stop supporting.
DEPRECATION = re.compile(r"Deprecat|BuildBackendWarning|will no longer be supported", re.IGNORECASE)
KEEP_A_CHANGELOG_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _setuptools_requirement() -> str:
    (requirement,) = [
        r for r in _pyproject()["build-system"]["requires"] if r.startswith("setuptools")
    ]
    return requirement


def test_build_backend_is_pinned_to_a_range() -> None:
    requirement = _setuptools_requirement()
    lowest = re.search(r">=\s*([\d.]+)", requirement)
    assert lowest and tuple(int(p) for p in lowest.group(1).split(".")[:2]) >= (77, 0)
    assert re.search(r"<\s*\d+", requirement), "an upper bound: a new major is tried here first"


@pytest.mark.parametrize("bound", ["newest", "oldest"])
def test_wheel_builds_without_deprecation_warnings(bound: str, tmp_path: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if bound == "oldest":
        lowest = re.search(r">=\s*([\d.]+)", _setuptools_requirement())
        assert lowest
        constraint = tmp_path / "build-constraint.txt"
        constraint.write_text(f"setuptools=={lowest.group(1)}\n", encoding="utf-8")
        env["PIP_BUILD_CONSTRAINT"] = str(constraint)  # the isolated build env's pins (pip 25.3+)
    # A copy of what the images copy: the build must not depend on anything else in the checkout.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("common", "api", "consumer"):
        shutil.copytree(
            REPO / folder,
            source / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    out = tmp_path / "wheel"
    done = subprocess.run(  # the exit code is asserted below
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    if bound == "oldest":
        assert f"setuptools-{lowest.group(1)}" in output, (
            "the oldest setuptools was not the one used"
        )  # type: ignore[union-attr]
    warnings = [line for line in output.splitlines() if DEPRECATION.search(line)]
    assert not warnings, "\n".join(warnings)
    (wheel,) = out.glob("datahub_lambda_trigger-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
        licenses = [n for n in archive.namelist() if "/licenses/" in n]
    assert "License-Expression: Apache-2.0" in text.splitlines()
    assert "License-File: LICENSE" in text.splitlines()
    assert [Path(n).name for n in licenses] == ["LICENSE"]


def test_license_file_is_the_license_the_project_states() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert _pyproject()["project"]["license"] == "Apache-2.0"
    assert _pyproject()["project"]["license-files"] == ["LICENSE"]
    package = json.loads((FRONTEND / "package.json").read_text(encoding="utf-8"))
    assert package["license"] == "Apache-2.0"


def test_changelog_keeps_a_changelog() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, flags=re.MULTILINE)
    assert releases[0] == ("Unreleased", ""), "Unreleased first"
    dated = [(version, date) for version, date in releases[1:]]
    assert all(date for _, date in dated), "every release has a date"
    assert [d for _, d in dated] == sorted((d for _, d in dated), reverse=True), "newest first"
    assert _pyproject()["project"]["version"] in [v for v, _ in dated]
    # Inside a release, only Keep a Changelog's kinds of change.
    for block in re.split(r"^## \[", text, flags=re.MULTILINE)[1:]:
        kinds = set(re.findall(r"^### (.+)$", block, flags=re.MULTILINE))
        assert kinds <= KEEP_A_CHANGELOG_TYPES, block.splitlines()[0]
    assert "## Upgrade notes" in text
    assert "header patch" in text.split("## Upgrade notes", 1)[1].split("\n## [", 1)[0]


def _package_name(key: str) -> str:
    """`esbuild`, `esbuild@0.28.2`, `@scope/pkg@1.0` -> the package's name."""
    name, at, _version = key[1:].partition("@")
    return key[0] + name if at else key


def test_every_install_script_is_approved() -> None:
    lock = json.loads((FRONTEND / "package-lock.json").read_text(encoding="utf-8"))
    with_scripts = {
        path.rsplit("node_modules/", 1)[1]
        for path, entry in lock["packages"].items()
        if path and entry.get("hasInstallScript")
    }
    package = json.loads((FRONTEND / "package.json").read_text(encoding="utf-8"))
    approved = package.get("allowScripts", {})
    assert with_scripts, "the lock has install scripts (esbuild): this test should see them"
    assert with_scripts <= {_package_name(key) for key in approved}
    assert all(value is True for value in approved.values())


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_fresh_npm_ci_prints_no_warning(tmp_path: Path) -> None:
    # A fresh clone: only package.json and the lock, no node_modules. npm's cache makes it quick.
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(FRONTEND / name, tmp_path / name)
    done = subprocess.run(  # the exit code is asserted below
        ["npm", "ci"],
        cwd=tmp_path,
        env={**os.environ, "NO_UPDATE_NOTIFIER": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    warnings = [line for line in output.splitlines() if re.match(r"npm warn", line, re.IGNORECASE)]
    assert not warnings, "\n".join(warnings)
    assert (tmp_path / "node_modules" / "esbuild" / "package.json").is_file()
