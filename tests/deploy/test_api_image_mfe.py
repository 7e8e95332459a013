"""The api image's Node stage builds the micro-frontend: its commands, replayed outside Docker.

There is no Docker engine here. The test reads compose/Dockerfile.api's `mfe` stage and runs its
WORKDIR / COPY / RUN steps in a temporary directory standing in for the image's filesystem
(COPY takes from the repository what the .dockerignore lets into the build context), then checks
that the stage leaves `remoteEntry.js` where the build stage's `COPY --from=mfe` takes it, and
that the build stage puts it where the api package serves it from (package data) before pip
installs the package. A Node stage that fails or builds nowhere fails here, not in a user's
browser as a 404 `mfe_not_built`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from .test_dockerfiles import Stage, parse
from .tools import COMPOSE_DIR, REPO_ROOT

DOCKERFILE = COMPOSE_DIR / "Dockerfile.api"
IGNORE = COMPOSE_DIR / "Dockerfile.api.dockerignore"
PACKAGE_DIST = "api/lambda_trigger_api/mfe_dist"


def _patterns() -> list[str]:
    lines = IGNORE.read_text(encoding="utf-8").splitlines()
    return [p.strip() for p in lines if p.strip() and not p.strip().startswith("#")]


def _in_context(rel: str, patterns: list[str]) -> bool:
    """.dockerignore: the last matching pattern wins; a pattern matching a parent directory
    matches everything under it; `!` re-includes."""
    parts = PurePosixPath(rel).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatch(c, body) for c in candidates):
            ignored = not negate
    return not ignored


def _stage(name: str) -> Stage:
    (stage,) = [s for s in parse(DOCKERFILE).stages if s.name == name]
    return stage


def _copy_from_context(sources: list[str], dest: Path, patterns: list[str]) -> int:
    """COPY <sources...> <dest>: a directory source copies its contents. Returns files copied."""
    copied = 0
    for source in sources:
        origin = REPO_ROOT / source.rstrip("/")
        files = (
            [origin] if origin.is_file() else sorted(p for p in origin.rglob("*") if p.is_file())
        )
        for path in files:
            rel = path.relative_to(REPO_ROOT).as_posix()
            if not _in_context(rel, patterns):
                continue
            inner = path.name if origin.is_file() else path.relative_to(origin).as_posix()
            target = dest / inner
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied += 1
    return copied


def test_context_reader_follows_docker_rules() -> None:
    patterns = ["*", "!frontend-patch/src/", "**/node_modules", "api/lambda_trigger_api/mfe_dist"]
    assert _in_context("frontend-patch/src/api.ts", patterns)
    assert not _in_context("frontend-patch/README.md", patterns)
    assert not _in_context("frontend-patch/src/node_modules/x/index.js", patterns)
    assert not _in_context("api/lambda_trigger_api/mfe_dist/remoteEntry.js", patterns)


def test_node_stage_is_pinned_and_satisfies_the_engines_field() -> None:
    dockerfile = parse(DOCKERFILE)
    mfe = _stage("mfe")
    assert mfe.base == "${NODE_IMAGE}"
    image = dockerfile.args["NODE_IMAGE"]
    match = re.fullmatch(r"node:(\d+)\.(\d+)\.(\d+)-bookworm-slim", image)
    assert match, f"an exact Node release, never a moving tag: {image}"
    package = json.loads((REPO_ROOT / "frontend-patch/package.json").read_text(encoding="utf-8"))
    floor = re.fullmatch(r">=(\d+)\.(\d+)", package["engines"]["node"])
    assert floor, package["engines"]
    assert (int(match[1]), int(match[2])) >= (int(floor[1]), int(floor[2]))
    runs = _steps(mfe, "RUN")
    # The same commands as `make mfe`: a lockfile install, then the bundle build.
    assert any(r.startswith("npm ci") for r in runs)
    assert any("node mfe/build.mjs" in r for r in runs)


def _steps(stage: Stage, keyword: str) -> list[str]:
    return [rest for kw, rest in stage.steps if kw == keyword]


def test_build_stage_installs_the_bundle_as_package_data() -> None:
    build = _stage("build")
    steps = build.steps
    (workdir,) = _steps(build, "WORKDIR")
    copy_from = [
        (i, rest) for i, (kw, rest) in enumerate(steps) if kw == "COPY" and "--from=mfe" in rest
    ]
    assert len(copy_from) == 1, copy_from
    index, rest = copy_from[0]
    _flag, source, dest = rest.split()
    # Relative to the build stage's WORKDIR, the package's own mfe_dist directory.
    assert (PurePosixPath(workdir) / dest) == PurePosixPath("/src") / PACKAGE_DIST
    assert source.rstrip("/") == f"/src/{PACKAGE_DIST}"
    pip = [
        i for i, (kw, r) in enumerate(steps) if kw == "RUN" and "pip install" in r and ".[api]" in r
    ]
    assert pip and pip[0] > index, "the bundle is in the source tree before pip installs it"
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "mfe_dist/*.js" in pyproject["tool"]["setuptools"]["package-data"]["lambda_trigger_api"]
    # The install step checks the installed package holds remoteEntry.js (a build error, not a 404).
    assert "remoteEntry.js" in steps[pip[0]][1]


@pytest.mark.timeout(1200)
def test_node_stage_commands_produce_remote_entry(tmp_path: Path) -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed (the same ones `make mfe` uses)", pytrace=False)
    patterns = _patterns()
    root = tmp_path / "image"
    cwd = root
    copies = 0
    env = {
        **os.environ,
        # The same commands; the warm npm cache is preferred so the test needs no network.
        "npm_config_prefer_offline": "true",
        "npm_config_update_notifier": "false",
    }
    for keyword, rest in _stage("mfe").steps:
        if keyword == "WORKDIR":
            cwd = root / rest.lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            words = rest.split()
            assert not any(w.startswith("--") for w in words), f"unexpected COPY flags: {rest}"
            *sources, dest = words
            copies += _copy_from_context(sources, cwd / dest, patterns)
        elif keyword == "RUN":
            result = subprocess.run(
                ["sh", "-c", rest],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=1100,
                check=False,
            )
            assert result.returncode == 0, (
                f"RUN {rest}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        elif keyword not in ("ENV", "ARG"):
            pytest.fail(f"the replay does not know {keyword}: extend it", pytrace=False)
    assert copies > 10, "the stage copied the frontend sources"
    # What the build stage's `COPY --from=mfe` takes.
    build_copy = next(r for kw, r in _stage("build").steps if kw == "COPY" and "--from=mfe" in r)
    source = build_copy.split()[1]
    produced = root / source.lstrip("/")
    entry = produced / "remoteEntry.js"
    assert entry.is_file(), (
        sorted(p.name for p in produced.glob("*")) if produced.exists() else produced
    )
    text = entry.read_text(encoding="utf-8")
    # A webpack Module Federation container named as DataHub's MFE config expects.
    assert "lambdaTriggerMFE" in text and "./mount" in text
    # No developer build was taken from the checkout: the context excludes it.
    assert not _in_context(f"{PACKAGE_DIST}/remoteEntry.js", patterns)
    assert not _in_context("frontend-patch/node_modules/webpack/package.json", patterns)
