"""frontend-patch/build-image.sh on a synthetic DataHub checkout.

There is no Docker engine and no DataHub build here, so `--dry-run` shows the plan, and the real
run is driven with stand-ins for `./gradlew` (writes the zip DataHub's build would) and for
`docker`/`java` (record what they were asked to do and what the build context held).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from .tools import REPO_ROOT

SCRIPT = REPO_ROOT / "frontend-patch" / "build-image.sh"
TAG = "registry.example.com/datahub-frontend-react:v1.7.0-lambda-trigger"
HEADER = (
    "datahub-web-react/src/app/entityV2/shared/containers/profile/header/DefaultEntityHeader.tsx"
)
# The shape of DataHub v1.x's docker/datahub-frontend/Dockerfile: what it COPYs from its context.
DOCKERFILE = """\
ARG APP_ENV=prod
FROM alpine:3.21 AS base
RUN addgroup -S datahub && adduser -S datahub -G datahub
FROM base AS unpack
COPY ./datahub-frontend.zip /
RUN unzip datahub-frontend.zip -d /tmp/out && mv /tmp/out/main /datahub-frontend
COPY ./docker/monitoring/client-prometheus-config.yaml /datahub-frontend/
FROM base AS prod-install
COPY --from=unpack /datahub-frontend/ /datahub-frontend/
FROM ${APP_ENV}-install AS final
COPY --chown=datahub:datahub --chmod=755 ./docker/datahub-frontend/start.sh /
USER datahub
CMD ./start.sh
"""
CONTEXT_FILES = {
    "datahub-frontend.zip",
    "docker/monitoring/client-prometheus-config.yaml",
    "docker/datahub-frontend/start.sh",
}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "datahub"
    files = {
        "docker/datahub-frontend/Dockerfile": DOCKERFILE,
        "docker/datahub-frontend/start.sh": "#!/bin/sh\nexec datahub-frontend/bin/datahub-frontend\n",
        "docker/monitoring/client-prometheus-config.yaml": "rules: []\n",
        "datahub-frontend/conf/routes": "GET /api/*path controllers.Application.proxy(path)\n",
        "datahub-web-react/package.json": '{"name": "datahub-react-web"}\n',
        HEADER: "export default function DefaultEntityHeader() { return null; }\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    # Stand-in for DataHub's Gradle build: records its arguments, writes the distribution zip.
    gradlew = root / "gradlew"
    gradlew.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$PWD" "$@" > "$LOG_DIR/gradlew.args"\n'
        "mkdir -p datahub-frontend/build/distributions\n"
        "printf zip > datahub-frontend/build/distributions/datahub-frontend-1.7.0.zip\n",
        encoding="utf-8",
    )
    gradlew.chmod(0o755)
    return root


@pytest.fixture
def stand_ins(tmp_path: Path) -> dict[str, str]:
    """`docker` and `java` that record their calls; returns the environment that uses them."""
    bin_dir, log_dir = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'echo "$DOCKER_BUILDKIT $*" >> "$LOG_DIR/docker.calls"\n'
        'if [ "$1" = build ]; then\n'
        "  for last; do :; done\n"
        '  (cd "$last" && find . -type f | sort) > "$LOG_DIR/context.files"\n'
        '  echo "$last" > "$LOG_DIR/context.dir"\n'
        "fi\n",
        encoding="utf-8",
    )
    java = bin_dir / "java"
    java.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    for tool in (docker, java):
        tool.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "LOG_DIR": str(log_dir),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
    }


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def commands(stdout: str) -> list[list[str]]:
    """The `+ ...` lines, split as a shell would."""
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- dry run ------------------------------------------------------------------------------------
def test_dry_run_prints_the_build_and_runs_nothing(checkout: Path, tmp_path: Path) -> None:
    before = _tree(checkout)
    result = run("--dry-run", str(checkout), TAG, env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert _tree(checkout) == before
    assert result.stdout.rstrip().endswith("dry run: nothing was run.")
    steps = commands(result.stdout)
    assert steps[0] == [str(REPO_ROOT / "frontend-patch" / "apply.sh"), str(checkout)]
    assert steps[1] == [
        "(cd", str(checkout), "&&", "./gradlew", ":datahub-frontend:dist",
        "-x", "test", "-x", "yarnTest", "-x", "yarnLint)",
    ]  # fmt: skip
    build = steps[-1]
    assert build[:4] == ["env", "DOCKER_BUILDKIT=1", "docker", "build"]
    assert build[4:8] == ["-f", str(checkout / "docker/datahub-frontend/Dockerfile"), "-t", TAG]
    context = Path(build[-1])
    assert not context.exists(), "a dry run creates no build context"
    copied = {Path(s[-1]).relative_to(context).as_posix() for s in steps if s[0] == "cp"}
    assert copied == CONTEXT_FILES
    for step in steps:
        if step[0] == "cp" and not step[-1].endswith("datahub-frontend.zip"):
            assert Path(step[-2]).is_relative_to(checkout)


def test_dry_run_options(checkout: Path) -> None:
    result = run(
        "--dry-run", "--skip-patch", "--push", "--platform", "linux/amd64", str(checkout), TAG
    )
    assert result.returncode == 0, result.stderr
    steps = commands(result.stdout)
    assert not any("apply.sh" in s[0] for s in steps)
    (build,) = [s for s in steps if "build" in s]
    assert build[-3:-1] == ["--platform", "linux/amd64"]
    assert steps[-1] == ["docker", "push", TAG]


def test_gradle_arguments_can_be_changed(checkout: Path) -> None:
    result = run("--dry-run", str(checkout), TAG, env={"GRADLE_ARGS": "--offline -x test"})
    steps = commands(result.stdout)
    assert steps[1][3:] == ["./gradlew", ":datahub-frontend:dist", "--offline", "-x", "test)"]


# --- refusals -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "usage:"),
        (("only-one",), "usage:"),
        (("--bogus", "a", "b"), "unknown option"),
        (("/nonexistent/datahub", TAG), "is not a directory"),
    ],
)
def test_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("tag", ["Upper/case:tag", "name:tag with space", "reg/name:", ""])
def test_bad_image_tags_are_refused(checkout: Path, tag: str) -> None:
    result = run("--dry-run", str(checkout), tag)
    assert result.returncode == 2
    assert "usage:" in result.stderr or "not a valid image reference" in result.stderr


def test_not_a_datahub_checkout(tmp_path: Path) -> None:
    result = run("--dry-run", str(tmp_path), TAG)
    assert result.returncode == 2
    assert "is not a DataHub checkout" in result.stderr
    assert "docker/datahub-frontend/Dockerfile" in result.stderr
    assert "gradlew" in result.stderr


def test_a_dockerfile_without_the_zip_is_refused(checkout: Path) -> None:
    dockerfile = checkout / "docker/datahub-frontend/Dockerfile"
    dockerfile.write_text(DOCKERFILE.replace("COPY ./datahub-frontend.zip /\n", ""))
    result = run("--dry-run", str(checkout), TAG)
    assert result.returncode == 2
    assert "does not copy ./datahub-frontend.zip" in result.stderr


# --- real runs with stand-ins -------------------------------------------------------------------
def test_build_runs_gradle_then_docker_on_a_small_context(
    checkout: Path, stand_ins: dict[str, str], tmp_path: Path
) -> None:
    result = run("--skip-patch", "--push", str(checkout), TAG, env=stand_ins)
    assert result.returncode == 0, result.stderr
    log = Path(stand_ins["LOG_DIR"])
    gradle = (log / "gradlew.args").read_text().split("\n")
    assert gradle[0] == str(checkout)
    assert gradle[1] == ":datahub-frontend:dist"
    calls = (log / "docker.calls").read_text().splitlines()
    assert calls[0].startswith(
        f"1 build -f {checkout}/docker/datahub-frontend/Dockerfile -t {TAG} "
    )
    assert calls[1] == f" push {TAG}"
    files = {line.removeprefix("./") for line in (log / "context.files").read_text().split()}
    assert files == CONTEXT_FILES, "the context holds exactly what the Dockerfile copies"
    context = Path((log / "context.dir").read_text().strip())
    assert context.is_relative_to(tmp_path)
    assert not context.exists(), "the temporary context is removed"
    assert f"built: {TAG}" in result.stdout


def test_two_zips_stop_the_build(checkout: Path, stand_ins: dict[str, str]) -> None:
    old = checkout / "datahub-frontend/build/distributions/datahub-frontend-1.6.0.zip"
    old.parent.mkdir(parents=True)
    old.write_text("old")
    result = run("--skip-patch", str(checkout), TAG, env=stand_ins)
    assert result.returncode == 1
    assert "expected exactly one datahub-frontend*.zip" in result.stderr
    assert not (Path(stand_ins["LOG_DIR"]) / "docker.calls").exists()


def test_a_patch_that_does_not_apply_stops_before_gradle(
    checkout: Path, stand_ins: dict[str, str]
) -> None:
    """The real apply.sh runs first; this checkout's header is not DataHub's v1.7.0 one."""
    result = run(str(checkout), TAG, env=stand_ins)
    assert result.returncode != 0
    assert "does NOT apply" in result.stderr
    assert not (Path(stand_ins["LOG_DIR"]) / "gradlew.args").exists()


def test_missing_docker_is_reported(checkout: Path, stand_ins: dict[str, str]) -> None:
    (Path(stand_ins["PATH"].split(":")[0]) / "docker").unlink()
    env = {**stand_ins, "PATH": stand_ins["PATH"].split(":")[0] + ":/usr/bin:/bin"}
    if any((Path(d) / "docker").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("a docker binary is installed system-wide here")
    result = run("--skip-patch", str(checkout), TAG, env=env)
    assert result.returncode == 1
    assert "docker is not on PATH" in result.stderr
