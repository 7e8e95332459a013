"""deploy/helm/datahub-lambda-trigger: `helm lint`, `helm template` with default and full values,
and checks on what a cluster would receive."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambda_trigger.mapping import load_mapping

from .manifests import (
    FULL_VALUES,
    by_kind,
    containers,
    env_names,
    env_value,
    helm,
    one,
    parse_manifests,
    pod_spec,
    render,
    rendered,
    workloads,
)
from .tools import CHART_DIR, REPO_ROOT

SETTINGS_PY = REPO_ROOT / "common" / "lambda_trigger" / "settings.py"
# Settings read by one consumer module only (its own BaseSettings).
LEDGER_AUTH_PY = REPO_ROOT / "consumer" / "lambda_trigger_consumer" / "ledger_auth.py"
RULES = REPO_ROOT / "grafana" / "alerts" / "lambda-trigger.rules.yml"
DASHBOARD = REPO_ROOT / "grafana" / "dashboards" / "lambda-trigger.json"
# Read by the consumer's start-up checks and completion tracking (the lead's part of issue 10
# and the completion-tracking work); remove once settings.py names them.
PENDING_SETTINGS = {
    "LAMBDA_TRIGGER_TOPIC_PARTITIONS",
    "LAMBDA_TRIGGER_TOPIC_REPLICATION",
    "LAMBDA_TRIGGER_GROUP_INSTANCE_ID",
    "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL",
}
# Read by the acryl-datahub SDK itself (datahub/telemetry/telemetry.py).
SDK_SETTINGS = {"DATAHUB_TELEMETRY_ENABLED"}
# AWS Lambda's longest run; a synchronous invoke waits for all of it.
LAMBDA_MAX_SECONDS = 900

VALUES = {"default": (), "full": (FULL_VALUES,)}


@pytest.fixture(scope="module", params=sorted(VALUES))
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return rendered(*VALUES[request.param])


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return rendered()


@pytest.fixture(scope="module")
def full_docs() -> list[dict[str, Any]]:
    return rendered(FULL_VALUES)


# --- helm itself --------------------------------------------------------------------------------
@pytest.mark.parametrize("values", sorted(VALUES))
def test_helm_lint(values: str) -> None:
    args = ["lint", "--strict", str(CHART_DIR)]
    for path in VALUES[values]:
        args += ["-f", str(path)]
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_renders_on_the_oldest_supported_kubernetes_and_not_before() -> None:
    assert render(kube_version="1.27.0").returncode == 0
    too_old = render(kube_version="1.26.9")
    assert too_old.returncode != 0 and "kubeVersion" in too_old.stderr


def test_default_and_full_render_what_they_should(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    def kinds(docs: list[dict[str, Any]]) -> list[str]:
        return sorted(d["kind"] for d in docs)

    common = [
        *["ConfigMap", "NetworkPolicy", "NetworkPolicy", "PodDisruptionBudget"],
        *["PodDisruptionBudget", "Service", "Service", "ServiceAccount", "Deployment"],
        "Secret",  # the run ledger's HMAC key (consumer-ledger-keys.yaml)
    ]
    assert kinds(default_docs) == sorted([*common, "Deployment"])
    assert kinds(full_docs) == sorted(
        [*common, "StatefulSet", "ConfigMap", "ServiceMonitor", "PrometheusRule"]
    )
    for doc in full_docs + default_docs:
        assert doc["metadata"]["name"], doc
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/instance") == "datahub-lambda-trigger", doc["kind"]


def test_duplicate_keys_are_caught_by_the_reader() -> None:
    """The manifest reader must refuse what kubectl refuses, or the checks below prove little."""
    with pytest.raises(yaml.YAMLError, match="duplicate key"):
        parse_manifests("kind: ConfigMap\nmetadata:\n  name: a\n  name: b\n")


# --- every container ----------------------------------------------------------------------------
def test_every_container_has_resources(docs: list[dict[str, Any]]) -> None:
    assert workloads(docs)
    for workload in workloads(docs):
        for container in containers(workload):
            resources = container.get("resources") or {}
            requests, limits = resources.get("requests", {}), resources.get("limits", {})
            assert {"cpu", "memory"} <= set(requests), container["name"]
            assert "memory" in limits, container["name"]


def test_every_container_has_health_probes_on_its_own_port(docs: list[dict[str, Any]]) -> None:
    for workload in workloads(docs):
        for container in containers(workload):
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            live, ready = container.get("livenessProbe"), container.get("readinessProbe")
            assert live and ready, container["name"]
            assert live["httpGet"]["path"] == "/healthz"
            assert ready["httpGet"]["path"] == "/readyz"
            for probe in (live, ready, container.get("startupProbe")):
                if probe:
                    assert probe["httpGet"]["port"] in ports, container["name"]


def test_every_pod_runs_as_non_root_and_unprivileged(docs: list[dict[str, Any]]) -> None:
    for workload in workloads(docs):
        pod = pod_spec(workload).get("securityContext", {})
        for container in containers(workload):
            ctx = container.get("securityContext", {})
            non_root = ctx.get("runAsNonRoot", pod.get("runAsNonRoot"))
            user = ctx.get("runAsUser", pod.get("runAsUser"))
            assert non_root is True, container["name"]
            assert user is not None and user != 0, container["name"]
            assert ctx.get("allowPrivilegeEscalation") is False
            assert ctx.get("privileged", False) is False
            assert ctx.get("readOnlyRootFilesystem") is True
            assert "ALL" in ctx.get("capabilities", {}).get("drop", [])


def test_environment_names_are_settings_the_code_reads(docs: list[dict[str, Any]]) -> None:
    known = {
        name
        for path in (SETTINGS_PY, LEDGER_AUTH_PY)
        for name in re.findall(r'"([A-Z][A-Z0-9_]+)"', path.read_text(encoding="utf-8"))
    }
    for workload in workloads(docs):
        for container in containers(workload):
            unknown = set(env_names(container)) - known - PENDING_SETTINGS - SDK_SETTINGS
            assert unknown == set(), f"{container['name']} sets {unknown}, read by nothing"


# --- the api: no AWS ----------------------------------------------------------------------------
def test_no_aws_variable_or_identity_reaches_the_api(docs: list[dict[str, Any]]) -> None:
    api = one(docs, "Deployment", "api")
    spec = pod_spec(api)
    for container in containers(api):
        assert [n for n in env_names(container) if n.startswith("AWS_")] == []
        # Nor Kafka: the api only calls DataHub.
        assert [n for n in env_names(container) if "KAFKA" in n or "SCHEMA_REGISTRY" in n] == []
        assert "envFrom" not in container
        assert all("aws" not in m["mountPath"].lower() for m in container["volumeMounts"])
    assert spec["automountServiceAccountToken"] is False
    # The consumer's ServiceAccount (the one with the IAM role) is the only one rendered.
    (account,) = by_kind(docs, "ServiceAccount")
    assert spec.get("serviceAccountName") != account["metadata"]["name"]
    assert account["metadata"]["labels"]["app.kubernetes.io/component"] == "consumer"


def test_api_extra_env_refuses_aws_variables() -> None:
    result = render(sets=("api.extraEnv[0].name=AWS_REGION", "api.extraEnv[0].value=eu-west-1"))
    assert result.returncode != 0
    assert "AWS_REGION: the api gets no AWS variable" in result.stderr


def test_api_network_policy_allows_no_egress_outside_the_cluster(
    docs: list[dict[str, Any]],
) -> None:
    api = one(docs, "Deployment", "api")
    (policy,) = [
        p
        for p in by_kind(docs, "NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].items()
        <= api["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert "Egress" in policy["spec"]["policyTypes"]
    egress = policy["spec"]["egress"]
    allowed_ports = set()
    for rule in egress:
        # A rule without `to` allows every destination; without `ports`, every port.
        assert rule.get("to"), rule
        assert rule.get("ports"), rule
        for peer in rule["to"]:
            assert "ipBlock" not in peer, "an ipBlock could reach AWS"
            assert set(peer) <= {"namespaceSelector", "podSelector"}
        allowed_ports |= {p["port"] for p in rule["ports"]}
    assert allowed_ports == {53, 8080, 9002}
    # The api itself is reachable on its port (DataHub's ingress, Prometheus).
    (ingress,) = policy["spec"]["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["http"]


def test_consumer_network_policy_only_opens_metrics(docs: list[dict[str, Any]]) -> None:
    consumer = next(w for w in workloads(docs) if w["metadata"]["name"].endswith("-consumer"))
    (policy,) = [
        p
        for p in by_kind(docs, "NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].items()
        <= consumer["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (ingress,) = policy["spec"]["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["http"]


# --- the consumer -------------------------------------------------------------------------------
def _consumer(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (workload,) = [w for w in workloads(docs) if w["metadata"]["name"].endswith("-consumer")]
    return workload


def test_consumer_outlives_its_longest_run(docs: list[dict[str, Any]]) -> None:
    consumer = _consumer(docs)
    grace = pod_spec(consumer)["terminationGracePeriodSeconds"]
    (container,) = containers(consumer)
    shutdown = int(env_value(container, "LAMBDA_TRIGGER_SHUTDOWN_GRACE_SECONDS"))
    assert grace > LAMBDA_MAX_SECONDS
    assert LAMBDA_MAX_SECONDS <= shutdown < grace


@pytest.mark.parametrize(
    "sets",
    [
        ("consumer.terminationGracePeriodSeconds=60", "consumer.shutdownGraceSeconds=60"),
        ("consumer.terminationGracePeriodSeconds=60", "consumer.shutdownGraceSeconds=90"),
    ],
)
def test_shutdown_grace_must_end_before_the_kubelet_kills(sets: tuple[str, ...]) -> None:
    result = render(sets=sets)
    assert result.returncode != 0
    assert "must be at least 1 and shorter than consumer.terminationGracePeriodSeconds" in (
        result.stderr
    )


def test_consumer_identity_is_its_own_service_account_with_the_iam_role(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    for docs, role in ((default_docs, None), (full_docs, "arn:aws:iam::123456789012:role/")):
        consumer = _consumer(docs)
        (account,) = by_kind(docs, "ServiceAccount")
        assert pod_spec(consumer)["serviceAccountName"] == account["metadata"]["name"]
        annotations = account["metadata"].get("annotations") or {}
        if role is None:
            assert "eks.amazonaws.com/role-arn" not in annotations
        else:
            assert annotations["eks.amazonaws.com/role-arn"].startswith(role)


def test_consumer_kafka_and_topic_settings(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    (default,) = containers(_consumer(default_docs))
    assert env_value(default, "KAFKA_BOOTSTRAP_SERVER") == "prerequisites-kafka:9092"
    assert env_value(default, "LAMBDA_TRIGGER_TOPIC_REPLICATION") == "3"
    assert env_value(default, "LAMBDA_TRIGGER_TOPIC_PARTITIONS") == "3"
    assert "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL" not in env_names(default)
    assert "LAMBDA_TRIGGER_KAFKA_CONFIG" not in env_names(default)
    (full,) = containers(_consumer(full_docs))
    assert env_value(full, "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL").startswith("https://sqs.")
    assert env_value(full, "LAMBDA_TRIGGER_KAFKA_CONFIG") == {
        "secretKeyRef": {"name": "lambda-trigger-kafka", "key": "kafka-config.json"}
    }
    for container in (default, full):
        token = env_value(container, "DATAHUB_GMS_TOKEN")
        assert set(token) == {"secretKeyRef"}, "the token comes from a Secret, never a value"


def test_static_membership_only_with_a_statefulset(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    deployment = _consumer(default_docs)
    assert deployment["kind"] == "Deployment"
    assert "LAMBDA_TRIGGER_GROUP_INSTANCE_ID" not in env_names(containers(deployment)[0])
    statefulset = _consumer(full_docs)
    assert statefulset["kind"] == "StatefulSet"
    assert env_value(containers(statefulset)[0], "LAMBDA_TRIGGER_GROUP_INSTANCE_ID") == {
        "fieldRef": {"fieldPath": "metadata.name"}
    }
    service = one(full_docs, "Service", "consumer")
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"


# --- services, PDBs and selectors ---------------------------------------------------------------
def test_services_and_budgets_select_their_pods(docs: list[dict[str, Any]]) -> None:
    pods = {
        w["metadata"]["labels"]["app.kubernetes.io/component"]: w["spec"]["template"]["metadata"][
            "labels"
        ]
        for w in workloads(docs)
    }
    for workload in workloads(docs):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    for component in ("api", "consumer"):
        service = one(docs, "Service", component)
        assert service["spec"]["selector"].items() <= pods[component].items()
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] == "http"
        budget = one(docs, "PodDisruptionBudget", component)
        assert budget["spec"]["selector"]["matchLabels"].items() <= pods[component].items()
    api_budget = one(docs, "PodDisruptionBudget", "api")
    assert api_budget["spec"]["minAvailable"] < one(docs, "Deployment", "api")["spec"]["replicas"]


# --- the mapping --------------------------------------------------------------------------------
def test_mapping_is_a_directory_mount_that_updates_in_place(
    docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    (configmap,) = [c for c in by_kind(docs, "ConfigMap") if "mapping.yaml" in c["data"]]
    for workload in workloads(docs):
        spec = pod_spec(workload)
        volumes = {v["name"]: v for v in spec["volumes"]}
        (container,) = containers(workload)
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "mapping"]
        # A subPath mount is never refreshed by the kubelet: the reload would see nothing.
        assert "subPath" not in mount and mount["readOnly"] is True
        assert volumes["mapping"]["configMap"]["name"] == configmap["metadata"]["name"]
        path = env_value(container, "DATAHUB_INGESTION_LAMBDA_MAPPING_FILE")
        assert path == f"{mount['mountPath']}/mapping.yaml"
    # What the services will read is a mapping the real loader accepts.
    file = tmp_path / "mapping.yaml"
    file.write_text(configmap["data"]["mapping.yaml"], encoding="utf-8")
    load_mapping(str(file), None, None)


def test_an_existing_mapping_configmap_replaces_the_charts() -> None:
    docs = rendered(sets=("mapping.existingConfigMap=my-mapping",))
    assert not [c for c in by_kind(docs, "ConfigMap") if "mapping.yaml" in c.get("data", {})]
    for workload in workloads(docs):
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        assert volumes["mapping"]["configMap"]["name"] == "my-mapping"


# --- monitoring ---------------------------------------------------------------------------------
def test_chart_files_are_the_repositorys_rules_and_dashboard() -> None:
    """The chart carries copies (helm reads only its own folder); they must not drift."""
    assert (CHART_DIR / "files" / RULES.name).read_bytes() == RULES.read_bytes()
    assert (CHART_DIR / "files" / DASHBOARD.name).read_bytes() == DASHBOARD.read_bytes()


def test_prometheus_rule_is_the_alert_rules_file(full_docs: list[dict[str, Any]]) -> None:
    (rule,) = by_kind(full_docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    text = json.dumps(rule["spec"])
    assert "{{ $labels.instance }}" in text, "Prometheus templates must survive helm"


def test_service_monitor_gives_the_job_names_the_rules_use(
    full_docs: list[dict[str, Any]],
) -> None:
    (monitor,) = by_kind(full_docs, "ServiceMonitor")
    job_label = monitor["spec"]["jobLabel"]
    rules = RULES.read_text(encoding="utf-8")
    selector = monitor["spec"]["selector"]
    jobs = set()
    for service in by_kind(full_docs, "Service"):
        labels = service["metadata"]["labels"]
        assert selector["matchLabels"].items() <= labels.items()
        assert all(e["key"] in labels for e in selector["matchExpressions"])
        jobs.add(labels[job_label])
        assert [p["name"] for p in service["spec"]["ports"]] == [
            monitor["spec"]["endpoints"][0]["port"]
        ]
    assert jobs == {"lambda-trigger-api", "lambda-trigger-consumer"}
    for job in jobs:
        assert f'job="{job}"' in rules
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["datahub"]}


def test_dashboard_configmap_for_grafanas_sidecar(full_docs: list[dict[str, Any]]) -> None:
    (configmap,) = [
        c for c in by_kind(full_docs, "ConfigMap") if "lambda-trigger.json" in c["data"]
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "DataHub"}
    dashboard = json.loads(configmap["data"]["lambda-trigger.json"])
    assert dashboard == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_monitoring_objects_are_off_by_default(default_docs: list[dict[str, Any]]) -> None:
    assert not by_kind(default_docs, "ServiceMonitor")
    assert not by_kind(default_docs, "PrometheusRule")
    assert not [c for c in by_kind(default_docs, "ConfigMap") if "lambda-trigger.json" in c["data"]]


# --- values.schema.json -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sets", "where"),
    [
        (("consumer.kind=DaemonSet",), "/consumer/kind"),
        (("api.requiredPrivilege=admin",), "/api/requiredPrivilege"),
        (("consumer.serviceAccount.irsaRoleArn=my-role",), "/consumer/serviceAccount/irsaRoleArn"),
        (("datahub.gmsUrl=datahub-gms:8080",), "/datahub/gmsUrl"),
        (("api.resources=null",), "/api"),
        (("consumer.topics.replication=0",), "/consumer/topics/replication"),
        (("datahub.tokenSecret.name=",), "/datahub/tokenSecret/name"),
    ],
)
def test_values_schema_refuses_bad_values_before_rendering(
    sets: tuple[str, ...], where: str
) -> None:
    result = render(sets=sets)
    assert result.returncode != 0
    assert "don't meet the specifications of the schema" in result.stderr
    assert f"at '{where}'" in result.stderr
