"""compose/: the DataHub quickstart overlay, its Dockerfiles, nginx and Prometheus configs."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .compose_interpolation import InterpolationError, interpolate, interpolate_tree
from .contract_metrics import REPO_ROOT, MetricSpec
from .expressions import DASHBOARD_PATH, RULES_PATH

COMPOSE_DIR = REPO_ROOT / "compose"
OVERLAY_PATH = COMPOSE_DIR / "docker-compose.lambda-trigger.yml"
NGINX_CONF = COMPOSE_DIR / "nginx" / "nginx.conf"
PROMETHEUS_CONF = COMPOSE_DIR / "prometheus" / "prometheus.yml"
SETTINGS_PY = REPO_ROOT / "common" / "lambda_trigger" / "settings.py"
# Settings read by one consumer module only (its own BaseSettings).
LEDGER_AUTH_PY = REPO_ROOT / "consumer" / "lambda_trigger_consumer" / "ledger_auth.py"
PYPROJECT = REPO_ROOT / "pyproject.toml"
GRAFANA_DS = REPO_ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
GRAFANA_DASH_PROVIDER = (
    REPO_ROOT / "grafana" / "provisioning" / "dashboards" / "lambda-trigger.yaml"
)

API, CONSUMER = "lambda-trigger-api", "lambda-trigger-consumer"
PROXY, PROMETHEUS, GRAFANA = (
    "lambda-trigger-proxy",
    "lambda-trigger-prometheus",
    "lambda-trigger-grafana",
)
OURS = {API, CONSUMER, PROXY, PROMETHEUS, GRAFANA}
# DataHub's quickstart services the overlay changes (frontend image, GMS authentication);
# tests/deploy/test_compose_config.py checks them merged with a quickstart-shaped file.
DATAHUB_OVERRIDES = {"datahub-gms-quickstart", "frontend-quickstart"}
FAKE_HOME = "/home/someone"
ENV = {
    "LAMBDA_TRIGGER_DIR": str(REPO_ROOT),
    "HOME": FAKE_HOME,
    "DATAHUB_FRONTEND_IMAGE": "registry.example.com/datahub-frontend-react:v1.7.0-lambda-trigger",
    "DATAHUB_TOKEN_SERVICE_SIGNING_KEY": "key",
    "DATAHUB_TOKEN_SERVICE_SALT": "salt",
    "LAMBDA_TRIGGER_GRAFANA_ADMIN_PASSWORD": "chosen-by-the-operator",
    "LAMBDA_TRIGGER_LEDGER_KEYS": "k1:a-ledger-key-from-the-shell",
}
AWS_DIR = f"{FAKE_HOME}/.aws"
# Read by the consumer's start-up checks and completion tracking, which land with the lead's
# part of issue 10; remove once settings.py names them.
PENDING_SETTINGS = {
    "LAMBDA_TRIGGER_TOPIC_PARTITIONS",
    "LAMBDA_TRIGGER_TOPIC_REPLICATION",
    "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL",
}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(OVERLAY_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def overlay(raw: dict[str, Any]) -> dict[str, Any]:
    resolved = interpolate_tree(raw, ENV)
    assert isinstance(resolved, dict)
    return resolved


def env_of(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment; a bare NAME (pass-through from the shell) maps to None."""
    env = service.get("environment", {})
    if isinstance(env, dict):
        return {k: (None if v is None else str(v)) for k, v in env.items()}
    out: dict[str, str | None] = {}
    for item in env:
        name, sep, value = str(item).partition("=")
        out[name] = value if sep else None
    return out


def binds(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host source, container target) of every bind mount, short or long syntax."""
    out: list[tuple[str, str]] = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if source.startswith(("/", ".", "~", "$")):
                out.append((source, target))
        elif volume.get("type") == "bind":
            out.append((volume["source"], volume["target"]))
    return out


def container_to_host(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a container path of `service` comes from, through its binds."""
    for source, target in binds(service):
        if container_path == target:
            return Path(source)
        if container_path.startswith(target.rstrip("/") + "/"):
            return Path(source) / container_path[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"{container_path} is not mounted into the service")


# --- the overlay --------------------------------------------------------------------------------
def test_services_and_network(overlay: dict[str, Any]) -> None:
    assert set(overlay["services"]) == OURS | DATAHUB_OVERRIDES
    # The quickstart's own network, declared as the quickstart declares it: not external, so
    # nothing has to be created before `up`.
    assert overlay["networks"] == {"default": {"name": "datahub_network"}}
    for name, service in overlay["services"].items():
        # Every service sits on the quickstart's network (the default one here).
        assert service.get("networks", ["default"]) in (["default"], {"default": None}), name
        if name in DATAHUB_OVERRIDES:
            assert "quickstart" in service["profiles"], name
            continue
        assert service.get("restart") == "unless-stopped", name
        for dep in service.get("depends_on", []):
            assert dep in overlay["services"], f"{name} depends on {dep}, not in this file"


def test_paths_are_absolute_from_lambda_trigger_dir(raw: dict[str, Any]) -> None:
    """Relative paths would resolve against DataHub's quickstart folder (the first -f file)."""
    for name, service in raw["services"].items():
        for source, target in binds(service):
            if target.endswith("/.aws"):
                continue
            assert source.startswith("${LAMBDA_TRIGGER_DIR:?"), f"{name}: {source}"
        if "build" in service:
            assert service["build"]["context"].startswith("${LAMBDA_TRIGGER_DIR:?"), name
    without_dir = {k: v for k, v in ENV.items() if k != "LAMBDA_TRIGGER_DIR"}
    with pytest.raises(InterpolationError, match="LAMBDA_TRIGGER_DIR"):
        interpolate_tree(raw, without_dir)


def test_every_mounted_path_exists_in_the_repository(overlay: dict[str, Any]) -> None:
    for name, service in overlay["services"].items():
        for source, target in binds(service):
            if source == AWS_DIR:
                assert name == CONSUMER
                continue
            path = Path(source)
            assert path.is_relative_to(REPO_ROOT), f"{name}: {source}"
            assert path.exists(), f"{name} mounts {source} (-> {target}), which does not exist"


def test_both_services_read_the_same_mounted_mapping(overlay: dict[str, Any]) -> None:
    """`mappings/mapping.yaml` is the operator's file (compose/README.md: copy example.yaml)."""
    hosts = set()
    for name in (API, CONSUMER):
        service = overlay["services"][name]
        mapping = env_of(service)["DATAHUB_INGESTION_LAMBDA_MAPPING_FILE"]
        assert mapping == "/mappings/mapping.yaml"
        host = container_to_host(service, mapping)
        assert host.parent == REPO_ROOT / "mappings" and host.parent.is_dir()
        hosts.add(host)
    assert len(hosts) == 1
    readme = (COMPOSE_DIR / "README.md").read_text(encoding="utf-8")
    for example in re.findall(r"cp (mappings/\S+) mappings/mapping\.yaml", readme):
        assert (REPO_ROOT / example).is_file(), f"compose/README.md copies missing {example}"
    assert "cp mappings/" in readme


def test_api_gets_no_aws_credentials(overlay: dict[str, Any]) -> None:
    api = overlay["services"][API]
    assert [k for k in env_of(api) if k.startswith("AWS_")] == []
    assert all(".aws" not in target for _source, target in binds(api))
    assert api["build"]["dockerfile"] == "compose/Dockerfile.api"
    assert "ports" not in api, "the api is reached through the proxy only"


def test_service_environment(overlay: dict[str, Any]) -> None:
    api = env_of(overlay["services"][API])
    consumer = env_of(overlay["services"][CONSUMER])
    assert api["DATAHUB_GMS_URL"] == consumer["DATAHUB_GMS_URL"] == "http://datahub-gms:8080"
    assert api["DATAHUB_FRONTEND_URL"] == "http://datahub-frontend-react:9002"
    assert api["DATAHUB_GMS_TOKEN"] is None and consumer["DATAHUB_GMS_TOKEN"] is None
    # DataHub's own name for the broker list (settings.py accepts both).
    assert consumer["KAFKA_BOOTSTRAP_SERVER"] == "broker:29092"
    assert consumer["SCHEMA_REGISTRY_URL"] == "http://datahub-gms:8080/schema-registry/api/"
    assert "DATAHUB_INGESTION_LAMBDA_REGION" in consumer
    assert consumer["AWS_PROFILE"] is None  # passed through, never a value in the file
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert consumer[key] is None, f"{key} must be passed through, not written in the file"
    assert (AWS_DIR, "/home/app/.aws") in binds(overlay["services"][CONSUMER])


def test_environment_names_are_settings_the_code_reads(overlay: dict[str, Any]) -> None:
    known = {
        name
        for path in (SETTINGS_PY, LEDGER_AUTH_PY)
        for name in re.findall(r'"([A-Z][A-Z0-9_]+)"', path.read_text(encoding="utf-8"))
    }
    aws = {
        "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
    }  # fmt: skip
    for name in (API, CONSUMER):
        unknown = set(env_of(overlay["services"][name])) - known - aws - PENDING_SETTINGS
        assert unknown == set(), f"{name} sets variables settings.py does not read: {unknown}"


def test_images_are_pinned(overlay: dict[str, Any]) -> None:
    for name, service in overlay["services"].items():
        if "build" in service or name in DATAHUB_OVERRIDES:
            continue
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned"


# --- Dockerfiles --------------------------------------------------------------------------------
def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.parametrize(("component", "extra"), [("api", "api"), ("consumer", "consumer")])
def test_dockerfile(component: str, extra: str) -> None:
    path = COMPOSE_DIR / f"Dockerfile.{component}"
    steps = _instructions(path)
    args = dict(rest.split("=", 1) for kw, rest in steps if kw == "ARG" and "=" in rest)
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-bookworm)?", base), base
    froms = [rest for kw, rest in steps if kw == "FROM"]
    # The api image builds its micro-frontend in a Node stage first (tests/deploy checks it).
    python_froms = [f for f in froms if f != "${NODE_IMAGE} AS mfe" or component != "api"]
    assert python_froms and all(f.startswith("${PYTHON_IMAGE}") for f in python_froms)
    runs = " ".join(rest for kw, rest in steps if kw == "RUN")
    assert f'pip install --constraint requirements-dev.lock ".[{extra}]"' in runs
    other = "consumer" if extra == "api" else "api"
    assert f".[{other}]" not in runs
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert extra in pyproject["project"]["optional-dependencies"]
    # Runs as a non-root user.
    users = [rest for kw, rest in steps if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = json.loads(next(rest for kw, rest in steps if kw == "ENTRYPOINT"))
    assert entry == [f"datahub-lambda-trigger-{component}"]
    assert entry[0] in pyproject["project"]["scripts"]
    # Everything copied from the build context (the repository root) exists and is not ignored.
    ignore = (COMPOSE_DIR / f"Dockerfile.{component}.dockerignore").read_text(encoding="utf-8")
    for kw, rest in steps:
        if kw == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (REPO_ROOT / source).exists(), f"{path.name} copies missing {source}"
                assert f"!{source}" in ignore, f"{source} is excluded by the .dockerignore"


# --- nginx --------------------------------------------------------------------------------------
def _locations(conf: str) -> list[str]:
    return re.findall(r"^\s*location\s+(\S+)\s*\{", conf, re.MULTILINE)


def test_nginx_routes_api_ingestion_before_the_frontend(overlay: dict[str, Any]) -> None:
    conf = NGINX_CONF.read_text(encoding="utf-8")
    locations = _locations(conf)
    assert locations == ["/api/ingestion/", "/"]
    api_block, frontend_block = re.split(r"^\s*location\s+/\s*\{", conf, flags=re.MULTILINE)
    assert "http://lambda-trigger-api:8000" in api_block
    assert "http://datahub-frontend-react:9002" in frontend_block
    assert "listen 8080;" in conf
    proxy = overlay["services"][PROXY]
    assert container_to_host(proxy, "/etc/nginx/nginx.conf") == NGINX_CONF
    assert any(port.endswith(":8080") for port in proxy["ports"])
    # The api's own port in compose is the one nginx forwards to.
    assert env_of(overlay["services"][API])["LAMBDA_TRIGGER_API_PORT"] == "8000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Echo(http.server.BaseHTTPRequestHandler):
    backend = "?"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        payload = json.dumps(
            {"backend": self.backend, "path": self.path, "method": self.command, "body": body,
             "headers": {k.lower(): v for k, v in self.headers.items()}}
        ).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _echo_server(name: str) -> http.server.ThreadingHTTPServer:
    handler = type(f"Echo_{name}", (_Echo,), {"backend": name})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None
    )
    if found is None:
        pytest.fail("nginx not found: apt-get install -y nginx-light", pytrace=False)
    return found


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in nginx.conf"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def nginx_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """nginx.conf with upstream names replaced by local echo servers; yields (url, log path)."""
    tmp_path = tmp_path_factory.mktemp("nginx")
    api, frontend = _echo_server("api"), _echo_server("frontend")
    port = _free_port()
    conf = NGINX_CONF.read_text(encoding="utf-8")
    conf = _replace_once(conf, "listen 8080;", f"listen 127.0.0.1:{port};")
    conf = _replace_once(
        conf, "http://lambda-trigger-api:8000", f"http://127.0.0.1:{api.server_port}"
    )
    conf = _replace_once(
        conf, "http://datahub-frontend-react:9002", f"http://127.0.0.1:{frontend.server_port}"
    )
    conf = _replace_once(conf, "pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    conf = _replace_once(
        conf,
        "http {",
        f"http {{\n    client_body_temp_path {tmp_path}/body;\n    proxy_temp_path {tmp_path}/proxy;",
    )
    conf_path = tmp_path / "nginx.conf"
    conf_path.write_text(conf, encoding="utf-8")
    nginx = _nginx()
    base = [nginx, "-e", "stderr", "-p", str(tmp_path), "-c", str(conf_path)]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stderr
    log_path = tmp_path / "nginx.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*base, "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"nginx exited: {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"nginx did not listen: {log_path.read_text()}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", str(log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        api.shutdown()
        frontend.shutdown()
        api.server_close()
        frontend.server_close()


def _call(url: str, method: str = "GET", body: bytes | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=body, method=method,
        headers={"Cookie": "PLAY_SESSION=abc; actor=urn:li:corpuser:datahub",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.load(response)
        return result


@pytest.mark.parametrize(
    ("method", "path", "backend"),
    [
        ("POST", "/api/ingestion/run", "api"),
        ("GET", "/api/ingestion/runs/lt-20261125T205743123Z-k3f9a1c2b7", "api"),
        ("GET", "/api/ingestion/targets?datasetUrn=urn%3Ali%3Adataset%3A%28x%29", "api"),
        ("POST", "/api/v2/graphql", "frontend"),
        ("POST", "/api/graphql", "frontend"),
        ("GET", "/openapi/v3/entity/dataset", "frontend"),
        ("GET", "/", "frontend"),
        ("GET", "/dataset/urn:li:dataset:(urn:li:dataPlatform:hive,db.t,PROD)/Schema", "frontend"),
        ("GET", "/api/ingestionx/run", "frontend"),
        ("GET", "/metrics", "frontend"),
    ],
)
def test_nginx_routes_requests(
    nginx_proxy: tuple[str, str], method: str, path: str, backend: str
) -> None:
    url, _log = nginx_proxy
    body = b'{"datasetUrn": "urn:li:dataset:(x)"}' if method == "POST" else None
    seen = _call(url + path, method, body)
    assert seen["backend"] == backend
    assert seen["path"] == path, "the path must reach the upstream unchanged"
    assert seen["method"] == method
    if body:
        assert seen["body"] == body.decode()
    headers = seen["headers"]
    assert headers["cookie"] == "PLAY_SESSION=abc; actor=urn:li:corpuser:datahub"
    assert headers["host"] == url.removeprefix("http://")
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


# --- Prometheus and Grafana in compose ----------------------------------------------------------
def test_prometheus_config_scrapes_both_services(
    overlay: dict[str, Any], contract_specs: list[MetricSpec]
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONF.read_text(encoding="utf-8"))
    prometheus = overlay["services"][PROMETHEUS]
    assert container_to_host(prometheus, "/etc/prometheus/prometheus.yml") == PROMETHEUS_CONF
    for rule_file in config["rule_files"]:
        host = container_to_host(prometheus, rule_file)
        assert host == RULES_PATH and host.is_file()
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert {s.job for s in contract_specs} <= set(jobs)
    ports = {
        API: env_of(overlay["services"][API])["LAMBDA_TRIGGER_API_PORT"],
        CONSUMER: env_of(overlay["services"][CONSUMER])["LAMBDA_TRIGGER_CONSUMER_HTTP_PORT"],
    }
    for service, port in ports.items():
        targets = [t for sc in jobs[service]["static_configs"] for t in sc["targets"]]
        assert targets == [f"{service}:{port}"]
        assert jobs[service].get("metrics_path", "/metrics") == "/metrics"


@pytest.mark.prometheus
def test_promtool_check_config_of_the_compose_prometheus(
    overlay: dict[str, Any], promtool: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONF.read_text(encoding="utf-8"))
    prometheus = overlay["services"][PROMETHEUS]
    config["rule_files"] = [str(container_to_host(prometheus, f)) for f in config["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_grafana_provisioning_matches_the_mounts(overlay: dict[str, Any]) -> None:
    grafana = overlay["services"][GRAFANA]
    provider = yaml.safe_load(GRAFANA_DASH_PROVIDER.read_text(encoding="utf-8"))
    (dash,) = provider["providers"]
    assert dash["type"] == "file"
    dashboards_dir = container_to_host(grafana, dash["options"]["path"])
    assert (dashboards_dir / DASHBOARD_PATH.name).resolve() == DASHBOARD_PATH.resolve()
    assert (
        container_to_host(grafana, "/etc/grafana/provisioning/dashboards/lambda-trigger.yaml")
        == GRAFANA_DASH_PROVIDER
    )
    assert (
        container_to_host(grafana, "/etc/grafana/provisioning/datasources/prometheus.yaml")
        == GRAFANA_DS
    )
    home = env_of(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (
        home is not None and container_to_host(grafana, home).resolve() == DASHBOARD_PATH.resolve()
    )

    datasources = yaml.safe_load(GRAFANA_DS.read_text(encoding="utf-8"))["datasources"]
    (prom,) = datasources
    assert prom["type"] == "prometheus"
    assert prom["url"] == f"http://{PROMETHEUS}:9090"
    assert any(str(p).endswith(":9090") for p in overlay["services"][PROMETHEUS]["ports"])
    assert prom["isDefault"] is True


def test_interpolation_follows_compose_rules() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("${A}/${B:-${A}x}/$A/$$A", env) == "a/ax/a/$A"
    assert interpolate("${EMPTY:-d}|${EMPTY-d}|${B-d}", env) == "d||d"
    assert interpolate("${A:+set}|${B:+set}", env) == "set|"
    with pytest.raises(InterpolationError, match="B is missing: say B"):
        interpolate("${B:?say B}", env)
    with pytest.raises(InterpolationError):
        interpolate("${A", env)
