"""compose/Dockerfile.api and compose/Dockerfile.consumer, read statically (no Docker engine here):
multi-stage, pinned base, non-root, the port the services listen on, HEALTHCHECK on /healthz,
and every COPY source present in the build context and not excluded by the .dockerignore."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from lambda_trigger.settings import ApiSettings, ConsumerSettings

from .tools import CHART_DIR, COMPOSE_DIR, REPO_ROOT

PORT_SETTING = {"api": "LAMBDA_TRIGGER_API_PORT", "consumer": "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT"}
DEFAULT_PORT = {
    "api": ApiSettings.model_fields["port"].default,
    "consumer": ConsumerSettings.model_fields["http_port"].default,
}


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def parse(path: Path) -> Dockerfile:
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, flags=re.IGNORECASE)
            assert match, f"{path.name}: FROM {rest}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            assert stages, f"{path.name}: {keyword} before any FROM"
            stages[-1].steps.append((keyword, rest))
    return Dockerfile(args=args, stages=stages)


def _steps(stage: Stage, keyword: str) -> list[str]:
    return [rest for kw, rest in stage.steps if kw == keyword]


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path.rstrip("/"), body):
            ignored = not negate
    return ignored


@pytest.fixture(params=["api", "consumer"])
def component(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def _dockerfile(component: str) -> tuple[Path, Dockerfile]:
    path = COMPOSE_DIR / f"Dockerfile.{component}"
    return path, parse(path)


def test_multi_stage_with_named_stages_and_a_pinned_base(component: str) -> None:
    _path, dockerfile = _dockerfile(component)
    # The api image builds its micro-frontend first (tests/deploy/test_api_image_mfe.py).
    expected = ["mfe", "build", "runtime"] if component == "api" else ["build", "runtime"]
    assert [s.name for s in dockerfile.stages] == expected
    base = dockerfile.args["PYTHON_IMAGE"]
    # An exact patch release and Debian release, never `latest` or a moving `3.11`.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    python_stages = [s for s in dockerfile.stages if s.name != "mfe"]
    assert all(s.base == "${PYTHON_IMAGE}" for s in python_stages)
    # The runtime stage takes only the built virtualenv from the build stage.
    copies = _steps(dockerfile.final, "COPY")
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_build_installs_only_its_extra_with_the_lock(component: str) -> None:
    _path, dockerfile = _dockerfile(component)
    (build,) = [s for s in dockerfile.stages if s.name == "build"]
    runs = " ".join(_steps(build, "RUN"))
    assert f'--constraint requirements-dev.lock ".[{component}]"' in runs
    other = "consumer" if component == "api" else "api"
    assert f".[{other}]" not in runs
    pip = re.search(r"pip install pip==(\d+\.\d+(\.\d+)?)", runs)
    assert pip, "pip itself is pinned"
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert component in pyproject["project"]["optional-dependencies"]


def test_runs_as_a_numeric_non_root_user(component: str) -> None:
    _path, dockerfile = _dockerfile(component)
    (user,) = _steps(dockerfile.final, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can verify it"
    assert gid.isdigit() and int(gid) != 0
    runs = " ".join(_steps(dockerfile.final, "RUN"))
    assert f"--uid {uid}" in runs
    # The chart runs the image as the same user.
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
    assert values["podSecurityContext"]["runAsUser"] == int(uid)


def test_exposes_the_port_the_service_listens_on(component: str) -> None:
    _path, dockerfile = _dockerfile(component)
    (exposed,) = _steps(dockerfile.final, "EXPOSE")
    env = " ".join(_steps(dockerfile.final, "ENV"))
    assert f"{PORT_SETTING[component]}={exposed}" in env
    assert int(exposed) == DEFAULT_PORT[component]
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
    assert values[component]["port"] == int(exposed)


def test_healthcheck_asks_healthz_on_that_port(component: str) -> None:
    _path, dockerfile = _dockerfile(component)
    (check,) = _steps(dockerfile.final, "HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    script = argv[2]
    assert "/healthz" in script and "/metrics" not in script
    assert PORT_SETTING[component] in script
    (exposed,) = _steps(dockerfile.final, "EXPOSE")
    assert f"'{exposed}'" in script, "the fallback port is the exposed one"
    # The python of the HEALTHCHECK must be valid, or the container is never healthy.
    compile(script.replace("; ", "\n"), "<healthcheck>", "exec")


def test_entrypoint_is_the_components_console_script(component: str) -> None:
    _path, dockerfile = _dockerfile(component)
    (entry,) = _steps(dockerfile.final, "ENTRYPOINT")
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert json.loads(entry) == [f"datahub-lambda-trigger-{component}"]
    assert f"datahub-lambda-trigger-{component}" in pyproject["project"]["scripts"]


def test_copy_sources_exist_and_are_in_the_context(component: str) -> None:
    path, dockerfile = _dockerfile(component)
    ignore = (COMPOSE_DIR / f"Dockerfile.{component}.dockerignore").read_text(encoding="utf-8")
    patterns = [p.strip() for p in ignore.splitlines() if p.strip() and not p.startswith("#")]
    stage_names = {s.name for s in dockerfile.stages}
    for stage in dockerfile.stages:
        for copy in _steps(stage, "COPY"):
            words = copy.split()
            flags = [w for w in words if w.startswith("--")]
            sources = [w for w in words if not w.startswith("--")][:-1]
            source_stage = next(
                (f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None
            )
            if source_stage is not None:
                assert source_stage in stage_names, f"{path.name}: no stage {source_stage}"
                continue
            for source in sources:
                assert (REPO_ROOT / source).exists(), f"{path.name} copies missing {source}"
                assert not _ignored(source, patterns), f"{source} is excluded by the .dockerignore"


def test_dockerignore_reader_follows_docker_rules() -> None:
    patterns = ["*", "!pyproject.toml", "!common/", "**/__pycache__"]
    assert _ignored("README.md", patterns)
    assert not _ignored("pyproject.toml", patterns)
    assert not _ignored("common/", patterns)
    assert _ignored("requirements-dev.lock", patterns)
