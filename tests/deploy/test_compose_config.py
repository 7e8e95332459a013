"""The compose overlay, validated by Compose v2 itself (`docker-compose config`, offline).

Alone, and merged with a quickstart-shaped file (fixtures/quickstart-shaped.yml: DataHub's
service names, hostnames, profiles and network). The merged project must run the patched
frontend image, have GMS authentication on, need no pre-created network, and route
`/api/ingestion/` to the api through the proxy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .tools import COMPOSE_DIR, OVERLAY, QUICKSTART_SHAPED, REPO_ROOT, compose_config, run_compose

PATCHED_IMAGE = "registry.example.com/datahub-frontend-react:v1.7.0-lambda-trigger"
ENV = {
    "HOME": "/home/someone",
    "LAMBDA_TRIGGER_DIR": str(REPO_ROOT),
    "DATAHUB_VERSION": "v1.7.0",
    "DATAHUB_FRONTEND_IMAGE": PATCHED_IMAGE,
    "DATAHUB_TOKEN_SERVICE_SIGNING_KEY": "signing-key-from-the-shell",
    "DATAHUB_TOKEN_SERVICE_SALT": "salt-from-the-shell",
    "LAMBDA_TRIGGER_GRAFANA_ADMIN_PASSWORD": "a-password-the-operator-chose",
    "LAMBDA_TRIGGER_LEDGER_KEYS": "k1:a-ledger-key-from-the-shell",
}
OURS = {
    "lambda-trigger-api",
    "lambda-trigger-consumer",
    "lambda-trigger-proxy",
    "lambda-trigger-prometheus",
    "lambda-trigger-grafana",
}
GMS, FRONTEND = "datahub-gms-quickstart", "frontend-quickstart"
NGINX_CONF = COMPOSE_DIR / "nginx" / "nginx.conf"


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    return compose_config([QUICKSTART_SHAPED, OVERLAY], ENV, profiles=("quickstart",))


@pytest.fixture(scope="module")
def quickstart_alone() -> dict[str, Any]:
    return compose_config([QUICKSTART_SHAPED], ENV, profiles=("quickstart",))


def _env(service: dict[str, Any]) -> dict[str, str | None]:
    env: dict[str, str | None] = service.get("environment") or {}
    return env


def _networks(service: dict[str, Any]) -> set[str]:
    return set(service.get("networks") or {})


# --- alone --------------------------------------------------------------------------------------
def test_overlay_alone_is_valid_and_starts_only_this_project() -> None:
    config = compose_config([OVERLAY], ENV)
    assert set(config["services"]) == OURS
    assert config["name"] == "datahub"
    assert config["networks"]["default"]["name"] == "datahub_network"
    assert not config["networks"]["default"].get("external")


def test_overlay_needs_the_quickstart_file_for_datahubs_services() -> None:
    """With the quickstart profile but without the quickstart file, GMS has no image: refused."""
    result = run_compose([OVERLAY], ENV, "config", profiles=("quickstart",))
    assert result.returncode != 0
    assert GMS in result.stderr and "image" in result.stderr


# --- merged with the quickstart -----------------------------------------------------------------
def test_merged_runs_the_patched_frontend(
    merged: dict[str, Any], quickstart_alone: dict[str, Any]
) -> None:
    frontend = merged["services"][FRONTEND]
    assert frontend["image"] == PATCHED_IMAGE
    assert (
        quickstart_alone["services"][FRONTEND]["image"] == "acryldata/datahub-frontend-react:v1.7.0"
    )
    assert frontend["hostname"] == "datahub-frontend-react"
    # Everything else of the quickstart's frontend is kept.
    before = _env(quickstart_alone["services"][FRONTEND])
    after = _env(frontend)
    assert {k: v for k, v in after.items() if k != "METADATA_SERVICE_AUTH_ENABLED"} == before
    assert frontend["profiles"] == quickstart_alone["services"][FRONTEND]["profiles"]
    assert frontend["depends_on"] == quickstart_alone["services"][FRONTEND]["depends_on"]


def test_merged_turns_gms_authentication_on(
    merged: dict[str, Any], quickstart_alone: dict[str, Any]
) -> None:
    assert _env(quickstart_alone["services"][GMS])["METADATA_SERVICE_AUTH_ENABLED"] == "false"
    gms = _env(merged["services"][GMS])
    assert gms["METADATA_SERVICE_AUTH_ENABLED"] == "true"
    assert gms["DATAHUB_TOKEN_SERVICE_SIGNING_KEY"] == ENV["DATAHUB_TOKEN_SERVICE_SIGNING_KEY"]
    assert gms["DATAHUB_TOKEN_SERVICE_SALT"] == ENV["DATAHUB_TOKEN_SERVICE_SALT"]
    # The frontend must know, or it sends no session token to GMS.
    assert _env(merged["services"][FRONTEND])["METADATA_SERVICE_AUTH_ENABLED"] == "true"
    assert merged["services"][GMS]["image"] == "acryldata/datahub-gms:v1.7.0"
    # The upgrade job signs with the same key as GMS (both from the shell).
    upgrade = _env(merged["services"]["system-update-quickstart"])
    assert upgrade["DATAHUB_TOKEN_SERVICE_SIGNING_KEY"] == gms["DATAHUB_TOKEN_SERVICE_SIGNING_KEY"]


def test_merged_is_one_project_on_the_quickstarts_own_network(
    merged: dict[str, Any], quickstart_alone: dict[str, Any]
) -> None:
    assert merged["name"] == quickstart_alone["name"] == "datahub"
    assert merged["networks"] == quickstart_alone["networks"]
    assert merged["networks"]["default"] == {"name": "datahub_network", "ipam": {}}
    for name, service in merged["services"].items():
        assert _networks(service) == {"default"}, name
    assert set(merged["services"]) >= OURS
    assert set(merged["services"]) - OURS == set(quickstart_alone["services"])


def _hosts(config: dict[str, Any]) -> dict[str, str]:
    """Every name a container resolves on the network -> the service it reaches."""
    out: dict[str, str] = {}
    for name, service in config["services"].items():
        out[name] = name
        if "hostname" in service:
            out[service["hostname"]] = name
    return out


def _upstream(location: str) -> tuple[str, int]:
    conf = NGINX_CONF.read_text(encoding="utf-8")
    block = re.search(
        rf"location\s+{re.escape(location)}\s*\{{(.*?)\n\s*\}}", conf, flags=re.DOTALL
    )
    assert block, f"nginx.conf has no location {location}"
    url = re.search(r"set \$\w+ http://([\w.-]+):(\d+);", block.group(1))
    assert url, f"no upstream in location {location}"
    return url.group(1), int(url.group(2))


def test_merged_routes_api_ingestion_to_the_api_and_the_rest_to_the_patched_frontend(
    merged: dict[str, Any],
) -> None:
    hosts = _hosts(merged)
    services = merged["services"]
    proxy = services["lambda-trigger-proxy"]
    mounted = {v["target"]: v["source"] for v in proxy["volumes"]}
    assert Path(mounted["/etc/nginx/nginx.conf"]) == NGINX_CONF
    assert any(p["target"] == 8080 for p in proxy["ports"])

    host, port = _upstream("/api/ingestion/")
    assert hosts[host] == "lambda-trigger-api"
    api = services["lambda-trigger-api"]
    assert str(port) in api["expose"]
    assert _env(api)["LAMBDA_TRIGGER_API_PORT"] == str(port)

    host, port = _upstream("/")
    assert hosts[host] == FRONTEND
    assert services[FRONTEND]["image"] == PATCHED_IMAGE
    assert any(p["target"] == port for p in services[FRONTEND]["ports"])


def test_merged_services_reach_datahub_by_its_hostnames(merged: dict[str, Any]) -> None:
    hosts = _hosts(merged)
    api = _env(merged["services"]["lambda-trigger-api"])
    consumer = _env(merged["services"]["lambda-trigger-consumer"])
    for url in (api["DATAHUB_GMS_URL"], consumer["DATAHUB_GMS_URL"], api["DATAHUB_FRONTEND_URL"]):
        assert url is not None
        host = re.match(r"http://([\w.-]+):\d+$", url)
        assert host, url
        assert hosts[host.group(1)] in {GMS, FRONTEND}
    broker = consumer["KAFKA_BOOTSTRAP_SERVER"]
    assert broker == "broker:29092" and hosts["broker"] == "kafka-broker"
    # No AWS variable and no ~/.aws for the api, merged or not.
    assert not [k for k in api if k.startswith("AWS_")]
    assert all(
        ".aws" not in v["target"] for v in merged["services"]["lambda-trigger-api"]["volumes"]
    )


# --- monitoring: no default password, localhost unless asked ------------------------------------
def _published(service: dict[str, Any]) -> list[tuple[str, int]]:
    return [(p.get("host_ip", ""), p["target"]) for p in service.get("ports", [])]


def test_prometheus_and_grafana_listen_on_localhost_only(merged: dict[str, Any]) -> None:
    assert _published(merged["services"]["lambda-trigger-prometheus"]) == [("127.0.0.1", 9090)]
    assert _published(merged["services"]["lambda-trigger-grafana"]) == [("127.0.0.1", 3000)]
    # The proxy is DataHub's entry point and is published like the quickstart's frontend.
    assert _published(merged["services"]["lambda-trigger-proxy"]) == [("", 8080)]


def test_monitoring_opens_to_the_network_only_when_asked() -> None:
    config = compose_config(
        [QUICKSTART_SHAPED, OVERLAY],
        {**ENV, "LAMBDA_TRIGGER_MONITORING_BIND": "0.0.0.0"},
        profiles=("quickstart",),
    )
    assert _published(config["services"]["lambda-trigger-prometheus"]) == [("0.0.0.0", 9090)]
    assert _published(config["services"]["lambda-trigger-grafana"]) == [("0.0.0.0", 3000)]


def test_grafana_password_is_the_operators(merged: dict[str, Any]) -> None:
    grafana = _env(merged["services"]["lambda-trigger-grafana"])
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == ENV["LAMBDA_TRIGGER_GRAFANA_ADMIN_PASSWORD"]


@pytest.mark.parametrize(
    "missing",
    [
        "LAMBDA_TRIGGER_GRAFANA_ADMIN_PASSWORD",
        "DATAHUB_FRONTEND_IMAGE",
        "DATAHUB_TOKEN_SERVICE_SIGNING_KEY",
        "DATAHUB_TOKEN_SERVICE_SALT",
        "LAMBDA_TRIGGER_DIR",
        "LAMBDA_TRIGGER_LEDGER_KEYS",
    ],
)
def test_a_missing_required_variable_stops_compose_with_its_name(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    result = run_compose([QUICKSTART_SHAPED, OVERLAY], env, "config", profiles=("quickstart",))
    assert result.returncode != 0
    assert f"required variable {missing} is missing" in result.stderr


# --- compose/README.md matches the file ---------------------------------------------------------
def test_readme_sets_every_required_variable_and_creates_no_network() -> None:
    readme = (COMPOSE_DIR / "README.md").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", OVERLAY.read_text(encoding="utf-8")))
    assert required == {
        "LAMBDA_TRIGGER_DIR",
        "DATAHUB_FRONTEND_IMAGE",
        "DATAHUB_TOKEN_SERVICE_SIGNING_KEY",
        "DATAHUB_TOKEN_SERVICE_SALT",
        "LAMBDA_TRIGGER_GRAFANA_ADMIN_PASSWORD",
        "LAMBDA_TRIGGER_LEDGER_KEYS",
    }
    for name in required:
        assert re.search(rf"^export {name}=", readme, flags=re.MULTILINE), name
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL))
    assert "docker network create" not in commands, "the overlay needs no pre-created network"
    up = re.search(r"^docker compose (.*?)up -d", commands, flags=re.MULTILINE | re.DOTALL)
    assert up, "compose/README.md has no `docker compose ... up -d` command"
    command = up.group(1)
    assert "--profile quickstart" in command
    assert command.index("docker-compose.quickstart-profile.yml") < command.index(
        "docker-compose.lambda-trigger.yml"
    ), "the overlay must come after the quickstart file to override it"
