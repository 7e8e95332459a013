"""deploy/helm/datahub-lambda-trigger: `helm lint`, `helm template` with default and full values,
and checks on what a cluster would receive."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
# Kafka security and schema registries (issue 18 items 1 and 2): implemented in the consumer on
# other branches; the chart renders exactly these names. Remove once settings.py names them.
KAFKA_SECURITY_SETTINGS = {
    "LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL",
    "LAMBDA_TRIGGER_KAFKA_AUTH",
    "LAMBDA_TRIGGER_KAFKA_SASL_USERNAME",
    "LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD",
    "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION",
    "LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION",
    "LAMBDA_TRIGGER_KAFKA_SSL_KEY_LOCATION",
    "LAMBDA_TRIGGER_KAFKA_MSK_REGION",
    "SCHEMA_REGISTRY_TYPE",
    "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO",
    "LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN",
    "AWS_GLUE_SCHEMA_REGISTRY_REGION",
}
# Read by the acryl-datahub SDK itself (datahub/telemetry/telemetry.py).
SDK_SETTINGS = {"DATAHUB_TELEMETRY_ENABLED"}
# AWS Lambda's longest run; a synchronous invoke waits for all of it.
LAMBDA_MAX_SECONDS = 900

MSK_IAM_VALUES = CHART_DIR / "ci" / "msk-iam-values.yaml"
MTLS_VALUES = CHART_DIR / "ci" / "mtls-values.yaml"
VALUES = {
    "default": (),
    "full": (FULL_VALUES,),
    "msk-iam": (MSK_IAM_VALUES,),
    "mtls": (MTLS_VALUES,),
}


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
        *["Service", "Service", "ServiceAccount", "Deployment"],
        "Secret",  # the run ledger's HMAC key (consumer-ledger-keys.yaml)
    ]
    # By default the consumer runs one replica: no budget for it (it would only block drains).
    assert kinds(default_docs) == sorted([*common, "Deployment"])
    assert kinds(full_docs) == sorted(
        [
            *common,
            *["PodDisruptionBudget", "StatefulSet", "ConfigMap", "ServiceMonitor"],
            *["PrometheusRule", "Ingress"],
        ]
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
            unknown = (
                set(env_names(container))
                - known
                - PENDING_SETTINGS
                - SDK_SETTINGS
                - KAFKA_SECURITY_SETTINGS
            )
            assert unknown == set(), f"{container['name']} sets {unknown}, read by nothing"


# --- the api: no AWS ----------------------------------------------------------------------------
def test_no_aws_variable_or_identity_reaches_the_api(docs: list[dict[str, Any]]) -> None:
    api = one(docs, "Deployment", "api")
    spec = pod_spec(api)
    for container in containers(api):
        assert [n for n in env_names(container) if n.startswith("AWS_")] == []
        # Nor Kafka: the api only calls DataHub.
        assert [n for n in env_names(container) if "KAFKA" in n or "SCHEMA_REGISTRY" in n] == []
        # Only what api.envFrom names, never with an AWS_ prefix (the template refuses it).
        for source in container.get("envFrom", []):
            assert not source.get("prefix", "").startswith("AWS_")
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
    result = render(sets=("api.envFrom[0].secretRef.name=aws", "api.envFrom[0].prefix=AWS_"))
    assert result.returncode != 0
    assert "prefix AWS_: the api gets no AWS variable" in result.stderr


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
    # Unset: the consumer takes min(3, brokers), so datahub-helm's one-broker Kafka works.
    assert "LAMBDA_TRIGGER_TOPIC_REPLICATION" not in env_names(default)
    assert env_value(default, "LAMBDA_TRIGGER_TOPIC_PARTITIONS") == "3"
    assert env_value(default, "SCHEMA_REGISTRY_TYPE") == "INTERNAL"
    assert env_value(default, "SCHEMA_REGISTRY_URL") == (
        "http://datahub-datahub-gms:8080/schema-registry/api/"
    )
    assert [n for n in env_names(default) if n.startswith("LAMBDA_TRIGGER_KAFKA_")] == []
    assert "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL" not in env_names(default)
    assert "LAMBDA_TRIGGER_KAFKA_CONFIG" not in env_names(default)
    (full,) = containers(_consumer(full_docs))
    assert env_value(full, "LAMBDA_TRIGGER_COMPLETION_QUEUE_URL").startswith("https://sqs.")
    # Step Functions status events on that queue (issue 24): off unless asked for.
    assert "LAMBDA_TRIGGER_SFN_STATUS_EVENTS" not in env_names(default)
    assert env_value(full, "LAMBDA_TRIGGER_SFN_STATUS_EVENTS") == "true"
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
    budgets = by_kind(docs, "PodDisruptionBudget")
    for workload in workloads(docs):
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        mine = [
            b
            for b in budgets
            if b["spec"]["selector"]["matchLabels"].items() <= pods[component].items()
        ]
        if workload["spec"]["replicas"] <= 1:
            assert mine == [], f"{component}: a budget at one replica can only block a drain"
            continue
        (budget,) = mine
        # Never blocks a drain: some pod may always go, and an unready one always may.
        assert set(budget["spec"]) == {"maxUnavailable", "unhealthyPodEvictionPolicy", "selector"}
        assert budget["spec"]["maxUnavailable"] >= 1
        assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize("component", ["api", "consumer"])
def test_no_budget_at_one_replica_and_max_unavailable_above(component: str) -> None:
    one_replica = rendered(sets=(f"{component}.replicas=1",))
    assert not [
        b
        for b in by_kind(one_replica, "PodDisruptionBudget")
        if b["metadata"]["name"].endswith(f"-{component}")
    ]
    two = one(rendered(sets=(f"{component}.replicas=2",)), "PodDisruptionBudget", component)
    assert two["spec"]["maxUnavailable"] == 1 and "minAvailable" not in two["spec"]
    # The old blocking shape is refused by name.
    refused = render(sets=(f"{component}.podDisruptionBudget.minAvailable=1",))
    assert refused.returncode != 0 and "minAvailable" in refused.stderr


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


RUNBOOK_BASE = (
    "https://git.example.com/data-platform/datahub-lambda-trigger/blob/main/docs/observability.md"
)
SELECTOR = re.compile(r"\b(lambda_trigger_[a-z_]+|up)\{([^}]*)\}")


def _scope(release: str, namespace: str = "datahub") -> str:
    return f'namespace="{namespace}",service=~"{release}-datahub-lambda-trigger-(api|consumer)"'


def _rule_docs(release: str, namespace: str = "datahub") -> dict[str, Any]:
    result = render(
        FULL_VALUES, release=release, namespace=namespace
    )  # the PrometheusRule of one release
    assert result.returncode == 0, result.stderr
    (rule,) = by_kind(parse_manifests(result.stdout), "PrometheusRule")
    return rule


def test_prometheus_rule_is_the_alert_rules_file_scoped_to_the_release(
    full_docs: list[dict[str, Any]],
) -> None:
    (rule,) = by_kind(full_docs, "PrometheusRule")
    source = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    scope = 'namespace="datahub",service=~"datahub-lambda-trigger-(api|consumer)"'
    rendered_rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    source_rules = [r for g in source["groups"] for r in g["rules"]]
    assert [g["name"] for g in rule["spec"]["groups"]] == [g["name"] for g in source["groups"]]
    assert [r["alert"] for r in rendered_rules] == [r["alert"] for r in source_rules]
    for got, want in zip(rendered_rules, source_rules, strict=True):
        assert got.get("for") == want.get("for")
        # The same expression, every series selector narrowed to this release.
        assert got["expr"].replace(f",{scope}", "").replace(f"{{{scope}}}", "") == want["expr"]
        selectors = SELECTOR.findall(got["expr"])
        assert selectors and all(m.endswith(scope) for _, m in selectors), got["expr"]
        bare = re.findall(r"\b(lambda_trigger_[a-z_]+)\b(?!\{)", got["expr"])
        assert bare == [], f"{got['alert']}: unscoped {bare}"
        assert got["labels"] == {
            **want["labels"],
            "namespace": "datahub",
            "lambda_trigger_release": "datahub-lambda-trigger",
        }
        anchor = want["annotations"]["runbook"].split("#", 1)[1]
        expected = {k: v for k, v in want["annotations"].items() if k != "runbook"}
        assert got["annotations"] == {**expected, "runbook_url": f"{RUNBOOK_BASE}#{anchor}"}
        assert re.fullmatch(r"https://[^\s#]+#[a-z0-9-]+", got["annotations"]["runbook_url"])
    text = json.dumps(rule["spec"])
    assert "{{ $labels.instance }}" in text, "Prometheus templates must survive helm"


def test_two_releases_neither_mix_series_nor_alerts() -> None:
    a, b = _rule_docs("team-a", "datahub"), _rule_docs("team-b", "datahub")
    other_ns = _rule_docs("team-a", "staging")
    for rule, release, namespace in ((a, "team-a", "datahub"), (b, "team-b", "datahub"),
                                     (other_ns, "team-a", "staging")):  # fmt: skip
        for group in rule["spec"]["groups"]:
            for r in group["rules"]:
                assert all(
                    m.endswith(_scope(release, namespace)) for _, m in SELECTOR.findall(r["expr"])
                )
                assert r["labels"]["namespace"] == namespace
                assert r["labels"]["lambda_trigger_release"] == release
    # absent() of one release is not satisfied by the other's series.
    absent = [r["expr"] for g in a["spec"]["groups"] for r in g["rules"] if "absent(" in r["expr"]]
    assert absent and all(_scope("team-a") in e for e in absent)


@pytest.mark.prometheus
def test_rendered_rules_pass_promtool(full_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found (Debian's prometheus package)", pytrace=False)
    (rule,) = by_kind(full_docs, "PrometheusRule")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_needs_an_absolute_runbook_url() -> None:
    missing = render(sets=("metrics.prometheusRule.enabled=true",))
    assert missing.returncode != 0
    assert "metrics.prometheusRule.runbookBaseUrl" in missing.stderr
    relative = render(
        sets=(
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.runbookBaseUrl=docs/observability.md",
        )
    )
    assert relative.returncode != 0 and "/metrics/prometheusRule/runbookBaseUrl" in relative.stderr


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
        # Unknown names are refused at every level, not ignored.
        (("consumer.replica=3",), "/consumer"),
        (("replicas=3",), ""),
        (("consumer.kafka.saslMechanism=SCRAM-SHA-512",), "/consumer/kafka"),
        (("consumer.kafka.sasl.password=secret",), "/consumer/kafka/sasl"),
        (("consumer.schemaRegistry.password=secret",), "/consumer/schemaRegistry"),
        (("api.podDisruptionBudget.minAvailable=1",), "/api/podDisruptionBudget"),
        (("metrics.prometheusRule.runbook=x",), "/metrics/prometheusRule"),
        (("networkPolicy.api.egressPort=443",), "/networkPolicy/api"),
        (("ingress.hosts[0]=datahub.example.com",), "/ingress"),
        (("api.extraEnv[0].name=X", "api.extraEnv[0].valu=y"), "/api/extraEnv/0"),
        (("consumer.kafka.auth=iam",), "/consumer/kafka/auth"),
        (("consumer.schemaRegistry.type=GLUE",), "/consumer/schemaRegistry/type"),
        (("consumer.kafka.securityProtocol=TLS",), "/consumer/kafka/securityProtocol"),
        # Kubernetes objects the chart knows the shape of are closed too.
        (("api.livenessProbe.periodSecond=5",), "/api/livenessProbe"),
        (("securityContext.runAsNonroot=true",), "/securityContext"),
        (("consumer.tolerations[0].keys=x",), "/consumer/tolerations/0"),
    ],
)
def test_values_schema_refuses_bad_values_before_rendering(
    sets: tuple[str, ...], where: str
) -> None:
    result = render(sets=sets)
    assert result.returncode != 0
    assert "don't meet the specifications of the schema" in result.stderr
    assert f"at '{where}'" in result.stderr


# --- Kafka security and schema registries -------------------------------------------------------
def _consumer_env(*value_files: Path, sets: tuple[str, ...] = ()) -> dict[str, Any]:
    (container,) = containers(_consumer(rendered(*value_files, sets=sets)))
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_msk_iam_values_render_sasl_ssl_with_the_region_and_glue() -> None:
    env = _consumer_env(MSK_IAM_VALUES)
    assert env["LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["LAMBDA_TRIGGER_KAFKA_AUTH"] == "msk-iam"
    # consumer.kafka.mskRegion is empty there: the consumer's AWS region is the cluster's.
    assert env["LAMBDA_TRIGGER_KAFKA_MSK_REGION"] == "eu-west-1"
    assert env["SCHEMA_REGISTRY_TYPE"] == "AWS_GLUE"
    assert env["AWS_GLUE_SCHEMA_REGISTRY_REGION"] == "eu-west-1"
    assert "SCHEMA_REGISTRY_URL" not in env
    # IAM: no password of any kind in the pod.
    assert not [n for n in env if "PASSWORD" in n or "USER_INFO" in n or "BEARER" in n]
    region = _consumer_env(MSK_IAM_VALUES, sets=("consumer.kafka.mskRegion=us-east-1",))
    assert region["LAMBDA_TRIGGER_KAFKA_MSK_REGION"] == "us-east-1"


def test_mtls_values_render_the_certificate_files_and_their_mount() -> None:
    docs = rendered(MTLS_VALUES)
    consumer = _consumer(docs)
    (container,) = containers(consumer)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert "LAMBDA_TRIGGER_KAFKA_AUTH" not in env  # auth none: TLS only
    assert env["LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION"] == "/etc/kafka-tls/ca.crt"
    assert env["LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION"] == "/etc/kafka-tls/tls.crt"
    assert env["LAMBDA_TRIGGER_KAFKA_SSL_KEY_LOCATION"] == "/etc/kafka-tls/tls.key"
    assert env["LAMBDA_TRIGGER_TOPIC_REPLICATION"] == "3"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "kafka-tls"]
    assert mount == {"name": "kafka-tls", "mountPath": "/etc/kafka-tls", "readOnly": True}
    for name in ("CA", "CERT", "KEY"):
        assert env[f"LAMBDA_TRIGGER_KAFKA_SSL_{name}_LOCATION"].startswith(mount["mountPath"] + "/")
    volumes = {v["name"]: v for v in pod_spec(consumer)["volumes"]}
    assert volumes["kafka-tls"] == {
        "name": "kafka-tls",
        "secret": {"secretName": "lambda-trigger-kafka-client"},
    }
    # The chart's own volumes stay.
    assert {"mapping", "tmp"} <= set(volumes)


def test_sasl_password_and_registry_credentials_come_from_secrets() -> None:
    env = _consumer_env(FULL_VALUES)
    assert env["LAMBDA_TRIGGER_KAFKA_AUTH"] == "scram-sha-512"
    assert env["LAMBDA_TRIGGER_KAFKA_SASL_USERNAME"] == "lambda-trigger"
    assert env["LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "lambda-trigger-kafka", "key": "sasl-password"}
    }
    assert env["SCHEMA_REGISTRY_TYPE"] == "KAFKA"
    assert env["SCHEMA_REGISTRY_URL"] == "https://schema-registry.kafka.svc:8081"
    assert env["LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO"] == {
        "secretKeyRef": {"name": "lambda-trigger-registry", "key": "user-info"}
    }
    bearer = _consumer_env(MTLS_VALUES)
    assert bearer["LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN"] == {
        "secretKeyRef": {"name": "lambda-trigger-registry", "key": "token"}
    }
    assert "LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO" not in bearer


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("consumer.kafka.auth=scram-sha-256",), "consumer.kafka.sasl.username"),
        (
            ("consumer.kafka.auth=plain", "consumer.kafka.sasl.username=u"),
            "consumer.kafka.sasl.passwordSecret.name",
        ),
        (("consumer.kafka.auth=msk-iam",), "consumer.kafka.mskRegion"),
        (("consumer.kafka.tls.certLocation=/c.pem",), "consumer.kafka.tls.keyLocation"),
        (("consumer.schemaRegistry.type=AWS_GLUE",), "consumer.schemaRegistry.glueRegion"),
        (
            (
                "consumer.schemaRegistry.type=KAFKA",
                "consumer.schemaRegistry.userInfoSecret.name=a",
                "consumer.schemaRegistry.bearerTokenSecret.name=b",
            ),
            "not both",
        ),
    ],
)
def test_incomplete_kafka_or_registry_values_stop_with_the_value_to_set(
    sets: tuple[str, ...], message: str
) -> None:
    result = render(sets=sets)
    assert result.returncode != 0
    assert message in result.stderr


# --- extra volumes, envFrom ---------------------------------------------------------------------
def test_extra_volumes_mounts_and_env_from_for_both_components() -> None:
    docs = rendered(FULL_VALUES)
    values = yaml.safe_load(FULL_VALUES.read_text(encoding="utf-8"))
    for component in ("api", "consumer"):
        workload = next(
            w for w in workloads(docs) if w["metadata"]["name"].endswith(f"-{component}")
        )
        (container,) = containers(workload)
        assert container["envFrom"] == values[component]["envFrom"]
        for volume in values[component]["extraVolumes"]:
            assert volume in pod_spec(workload)["volumes"]
        for mount in values[component]["extraVolumeMounts"]:
            assert mount in container["volumeMounts"]
    # None of it by default.
    for workload in workloads(rendered()):
        (container,) = containers(workload)
        assert "envFrom" not in container
        assert {v["name"] for v in pod_spec(workload)["volumes"]} == {"mapping", "tmp"}


# --- routing /api/ingestion/ --------------------------------------------------------------------
def test_optional_ingress_routes_the_prefix_on_datahubs_host(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    assert not by_kind(default_docs, "Ingress") and not by_kind(default_docs, "HTTPRoute")
    (ingress,) = by_kind(full_docs, "Ingress")
    service = one(full_docs, "Service", "api")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "datahub.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/api/ingestion/" and path["pathType"] == "Prefix"
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] == service["spec"]["ports"][0]["name"]
    assert ingress["spec"]["tls"] == [
        {"secretName": "datahub-tls", "hosts": ["datahub.example.com"]}
    ]


def test_optional_http_route_routes_the_prefix_on_datahubs_host() -> None:
    docs = rendered(MSK_IAM_VALUES)
    (route,) = by_kind(docs, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["hostnames"] == ["datahub.example.com"]
    assert route["spec"]["parentRefs"] == [
        {"name": "datahub-gateway", "namespace": "gateway-system", "sectionName": "https"}
    ]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/ingestion/"}}]
    service = one(docs, "Service", "api")
    assert rule["backendRefs"] == [
        {"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}
    ]
    both = render(MSK_IAM_VALUES, sets=("ingress.enabled=true", "ingress.host=datahub.example.com"))
    assert both.returncode != 0 and "with one of them" in both.stderr
    no_host = render(sets=("ingress.enabled=true",))
    assert no_host.returncode != 0 and "ingress.host" in no_host.stderr


def test_image_registry_is_kept_apart_from_the_repository() -> None:
    images = {c["image"] for w in workloads(rendered(MSK_IAM_VALUES)) for c in containers(w)}
    assert images == {
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/data-platform/datahub-lambda-trigger-api:0.1.0",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/data-platform/datahub-lambda-trigger-consumer:0.1.0",
    }
