"""End to end against the REAL api and consumer: dashboards, alerts and metrics on live data.

One module-scoped stack (observability.live): Kafka broker, GMS test double, moto server, the
api and the consumer as child processes, and a real Prometheus scraping both every second with
the alert rule file loaded. observability.traffic drives runs through the api (successes,
function errors, invoke errors, 4xx, 5xx during a DataHub outage), records straight onto the
MetadataChangeLog topic (unrelated keys, an undecodable run request), CLI-written requests and
mapping reloads, reading both services' /metrics around every step. Then:

- every PromQL expression of every dashboard panel and variable and every alert selector returns
  at least one series, every alert expression evaluates, every alert rule is healthy, and the
  alerts on the failures the traffic caused fire;
- a panel on a metric (or label) the services do not export is reported, by the contract check
  and by the live check;
- what the services export is exactly what docs/contract.md lists;
- every contract metric moved (or was set) by the event it describes: METRIC_EVENTS below, also
  listed in docs/observability.md ("Which test shows each metric moving").
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambda_trigger import __version__
from lambda_trigger_consumer.aws_calls import KNOWN_APIS

from .checks import expression_problems
from .contract_metrics import REPO_ROOT, MetricSpec, SeriesInfo, parse_contract
from .expressions import (
    DASHBOARD_TEST_VALUES,
    all_expressions,
    dashboard_expressions,
    load_dashboard,
)
from .live import API_JOB, CONSUMER_JOB, LiveStack, grafana_regex_value, live_stack, wait_for
from .promstack import failed
from .traffic import (
    API_5XX_RUN,
    EARNINGS,
    HIVE_ASYNC,
    NOISE_BACKLOG,
    NOISE_DISCARDED,
    OUTAGE_LAMBDA_SECONDS,
    POLYGON_LABEL,
    STEPS,
    TOPIC,
    Traffic,
    drive_traffic,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.integration]

CONTRACT = parse_contract()
API_RUNS = (
    4  # runs the traffic writes through the api: success, function error, invoke error, outage
)
CLI_RUNS = 3  # and with the CLI's code: unmapped, after the reload, after the failed reload


@dataclass(frozen=True)
class LiveRun:
    live: LiveStack
    traffic: Traffic


@pytest.fixture(scope="module")
def live_run(prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    workdir = tmp_path_factory.mktemp("live-services")
    with live_stack(workdir, prometheus_binary=prometheus_bin) as live:
        yield LiveRun(live, drive_traffic(live))


# --- dashboards and alerts on live data ------------------------------------------------------


def test_every_dashboard_and_alert_expression_returns_series(live_run: LiveRun) -> None:
    exprs = all_expressions()
    results = live_run.live.prom.evaluate(exprs)
    assert [r.describe() for r in failed(results)] == []
    assert len(results) == len(exprs)
    panel_targets = sum(
        len(p.get("targets", [])) for p in _panels(load_dashboard()) if p.get("type") != "row"
    )
    assert sum(e.kind == "panel" for e in exprs) == panel_targets > 0


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _label_values(live: LiveStack, selector: str, label: str) -> list[str]:
    samples = live.prom.query(f"group by ({label}) ({selector})")
    return sorted(s["metric"][label] for s in samples if label in s["metric"])


def test_each_instance_and_target_has_its_panels(live_run: LiveRun) -> None:
    """As Grafana shows them: one concrete instance, and the repeated row once per target."""
    live = live_run.live
    consumers = _label_values(live, "lambda_trigger_consumer_info", "instance")
    apis = _label_values(live, "lambda_trigger_api_info", "instance")
    targets = _label_values(live, "lambda_trigger_consumer_invocations_total", "target")
    assert len(consumers) == 1
    assert len(apis) == 1
    assert {EARNINGS, POLYGON_LABEL, HIVE_ASYNC} <= set(targets)
    for target in targets:
        values = {
            **DASHBOARD_TEST_VALUES,
            "instance": grafana_regex_value(consumers[0]),
            "api_instance": grafana_regex_value(apis[0]),
            "target": grafana_regex_value(target),
        }
        results = live.prom.evaluate(dashboard_expressions(), variables=values)
        assert [r.describe() for r in failed(results)] == [], target


def test_alert_rules_are_healthy_and_fire_on_the_failures(live_run: LiveRun) -> None:
    live = live_run.live
    expected_firing = {
        "LambdaTriggerDecodeFailures",  # the undecodable record
        "LambdaTriggerDeadLetters",  # ... dead-lettered
        "LambdaTriggerStatusWriteFailures",  # the final status write during the outage
        "LambdaTriggerMappingReloadFailing",  # the broken mapping edit
    }

    def alerting_rules() -> list[dict[str, Any]] | None:
        rules = [r for g in live.prom.rules() for r in g["rules"] if r["type"] == "alerting"]
        firing = {r["name"] for r in rules if r["state"] == "firing"}
        return rules if expected_firing <= firing else None

    rules = wait_for(
        "alerts on the traffic's failures firing",
        alerting_rules,
        timeout=20,
        detail=lambda: json.dumps(
            {r["name"]: r["state"] for g in live.prom.rules() for r in g["rules"]}
        ),
    )
    assert {r["name"]: r.get("lastError") for r in rules if r.get("health") != "ok"} == {}
    states = {r["name"]: r["state"] for r in rules}
    # The outage's 503s (all but the first, which created the series): 'for: 5m' not over yet.
    assert states["LambdaTriggerApiErrorRatioHigh"] == "pending", states
    # Both services are up the whole time.
    for name in (
        "LambdaTriggerConsumerDown",
        "LambdaTriggerConsumerAbsent",
        "LambdaTriggerApiDown",
    ):
        assert states[name] == "inactive", states


def test_a_panel_on_a_metric_the_services_do_not_export_fails(
    live_run: LiveRun, contract_index: dict[str, SeriesInfo], tmp_path: Path
) -> None:
    dashboard = load_dashboard()
    bogus = {
        "lambda_trigger_consumer_retries_total": "a metric nobody exports",
        'lambda_trigger_consumer_invocations_total{region="eu-west-1"}': "a label it does not have",
    }
    dashboard["panels"].append(
        {
            "id": 999,
            "type": "timeseries",
            "title": "Not exported",
            "targets": [
                {"refId": chr(ord("A") + i), "expr": f"sum(rate({expr}[$__rate_interval]))"}
                for i, expr in enumerate(bogus)
            ],
        }
    )
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(dashboard), encoding="utf-8")
    exprs = dashboard_expressions(path)

    contract_failures = {
        e.source for e in exprs if e.kind == "panel" and expression_problems(e.expr, contract_index)
    }
    live_failures = {r.named.source for r in failed(live_run.live.prom.evaluate(exprs))}
    expected = {"panel 999 'Not exported' target A", "panel 999 'Not exported' target B"}
    assert contract_failures == expected
    assert live_failures == expected


# --- what the services export ------------------------------------------------------------------


def test_live_metrics_are_exactly_the_contract(live_run: LiveRun) -> None:
    final = live_run.traffic.final
    for job, component, prefix in (
        (CONSUMER_JOB, "consumer", "lambda_trigger_consumer"),
        (API_JOB, "api", "lambda_trigger_api"),
    ):
        specs = {s.name: s for s in CONTRACT if s.job == job}
        scrape = final.of(component)
        exported: dict[str, tuple[str, frozenset[str]]] = {}
        for family in scrape.families.values():
            if not family.sample_names or not family.name.startswith(prefix):
                continue
            if family.type == "gauge" and family.name.endswith("_info"):
                exported[family.name] = ("info", family.labels)  # an Info in the text format
            elif family.type == "counter":
                exported[f"{family.name}_total"] = ("counter", family.labels)
            else:
                exported[family.name] = (family.type, family.labels)
        declared = {name: (s.type, frozenset(s.labels)) for name, s in specs.items()}
        assert exported == declared, job


# --- every metric moves with its event -------------------------------------------------------

Check = Callable[[Traffic], None]


def _consumer(traffic: Traffic, step: str, name: str, **labels: str) -> float:
    return traffic.delta(step, "consumer", name, labels)


def _api(traffic: Traffic, step: str, name: str, **labels: str) -> float:
    return traffic.delta(step, "api", name, labels)


def _whole_run(traffic: Traffic, component: str, name: str, **labels: str) -> float:
    return traffic.final.of(component).total(name, labels) - traffic.start.of(component).total(
        name, labels
    )


def _only_in(traffic: Traffic, component: str, name: str, steps: set[str], **labels: str) -> None:
    moved = {
        step: delta
        for step, delta in traffic.deltas_by_step(component, name, labels).items()
        if delta
    }
    assert set(moved) <= steps, f"{name}{labels} moved in {moved}, expected only in {steps}"


def check_received(t: Traffic) -> None:
    name = "lambda_trigger_consumer_received_messages_total"
    assert _consumer(t, "noise_and_malformed", name, topic=TOPIC) >= NOISE_DISCARDED + 1
    assert _consumer(t, "datahub_outage", name, topic=TOPIC) >= NOISE_BACKLOG
    # At least the request itself (with one in-flight slot the consumer pauses as it accepts
    # it, so the records after it may only be read in the next step).
    assert _consumer(t, "api_run_success", name, topic=TOPIC) >= 1


def check_key_discarded(t: Traffic) -> None:
    name = "lambda_trigger_consumer_key_discarded_messages_total"
    # Run requests and their statuses are keyed by the execution request URN: never discarded.
    # Besides the noise, only the ingestion source a dataset's first run creates (the api's or
    # the CLI's FirstUseSources): GMS's MCLs of it are keyed by its dataHubIngestionSource URN.
    noise = {"noise_and_malformed": NOISE_DISCARDED, "datahub_outage": NOISE_BACKLOG}
    for step in t.steps:
        expected = noise.get(step, 0) + t.source_mcls(step)
        assert _consumer(t, step, name, topic=TOPIC) == expected, step
    # The first runs of SIP (api), POLYGON (api) and HIVE (CLI); later runs reuse the source.
    assert {s for s in t.steps if t.source_mcls(s)} == {
        "api_run_success",
        "invoke_error",
        "cli_unmapped",
    }


def check_decoded(t: Traffic) -> None:
    name = "lambda_trigger_consumer_decoded_messages_total"
    assert _consumer(t, "api_run_success", name, topic=TOPIC) >= 1
    assert _consumer(t, "cli_unmapped", name, topic=TOPIC) >= 1
    # Exactly the records keyed as execution requests, minus the one that is not Avro.
    assert (
        _whole_run(t, "consumer", name)
        == _whole_run(t, "consumer", "lambda_trigger_consumer_received_messages_total")
        - _whole_run(t, "consumer", "lambda_trigger_consumer_key_discarded_messages_total")
        - 1
    )


def check_decode_failures(t: Traffic) -> None:
    name = "lambda_trigger_consumer_decode_failures_total"
    assert _consumer(t, "noise_and_malformed", name, reason="framing") == 1
    # The 10 junk values with unrelated keys were never decoded.
    assert _whole_run(t, "consumer", name) == 1


def check_accepted(t: Traffic) -> None:
    name = "lambda_trigger_consumer_accepted_requests_total"
    assert _consumer(t, "api_run_success", name) == 1
    assert _consumer(t, "cli_unmapped", name) == 1
    assert _consumer(t, "api_client_errors", name) == 0  # refused by the api: nothing written
    assert _whole_run(t, "consumer", name) == API_RUNS + CLI_RUNS


def check_invocations(t: Traffic) -> None:
    name = "lambda_trigger_consumer_invocations_total"
    assert _consumer(t, "api_run_success", name, target=EARNINGS, outcome="success") == 1
    assert _consumer(t, "function_error", name, target=EARNINGS, outcome="function_error") == 1
    assert _consumer(t, "function_error", name, outcome="success") == 0
    assert _consumer(t, "invoke_error", name, target=POLYGON_LABEL, outcome="invoke_error") == 1
    assert _consumer(t, "mapping_reload_success", name, target=HIVE_ASYNC, outcome="started") == 1
    assert _consumer(t, "cli_unmapped", name) == 0  # no target: not invoked
    assert _whole_run(t, "consumer", name) == API_RUNS + CLI_RUNS - 1


# The steps whose run invokes a Lambda function (cli_unmapped's run has no target).
INVOKING_STEPS = {
    "api_run_success",
    "function_error",
    "invoke_error",
    "datahub_outage",
    "mapping_reload_success",
    "mapping_reload_error",
}


def check_aws_calls(t: Traffic) -> None:
    name = "lambda_trigger_consumer_aws_calls_total"
    invocations = "lambda_trigger_consumer_invocations_total"
    # One Invoke per invocation, the refused one (403) included: nothing here is throttled,
    # so nothing is retried.
    for step in t.steps:
        assert _consumer(t, step, name, api="Invoke") == _consumer(t, step, invocations), step
    _only_in(t, "consumer", name, INVOKING_STEPS, api="Invoke")
    assert _whole_run(t, "consumer", name, api="Invoke") == API_RUNS + CLI_RUNS - 1
    # Besides the invokes, only the look-ups around them (function timeout, keep-warm pass,
    # which runs on its own clock): no Step Functions target, no completion queue here.
    apis = {s["api"] for s in t.final.consumer.label_sets(name)}
    assert apis == set(KNOWN_APIS)
    lookups = {"Invoke", "GetFunctionConfiguration"}
    for api in apis - lookups:
        _only_in(t, "consumer", name, set(), api=api)


def check_aws_throttles(t: Traffic) -> None:
    # Moto never throttles here: tests/unit/lambda_trigger_consumer/test_aws_load.py shows it
    # moving (a throttled DescribeExecution, retried).
    _never(t, "lambda_trigger_consumer_aws_throttles_total")


def check_invocation_duration(t: Traffic) -> None:
    name = "lambda_trigger_consumer_invocation_duration_seconds"
    assert _consumer(t, "api_run_success", f"{name}_count", target=EARNINGS) == 1
    assert _consumer(t, "invoke_error", f"{name}_count", target=POLYGON_LABEL) == 1
    assert _consumer(t, "cli_unmapped", f"{name}_count") == 0
    # The outage's fake Lambda sleeps OUTAGE_LAMBDA_SECONDS inside the call.
    assert _consumer(t, "datahub_outage", f"{name}_sum", target=EARNINGS) >= OUTAGE_LAMBDA_SECONDS


def check_request_to_invoke(t: Traffic) -> None:
    name = "lambda_trigger_consumer_request_to_invoke_seconds"
    assert _consumer(t, "api_run_success", f"{name}_count") == 1
    assert _consumer(t, "mapping_reload_success", f"{name}_count") == 1
    assert _consumer(t, "cli_unmapped", f"{name}_count") == 0
    assert _whole_run(t, "consumer", f"{name}_count") == API_RUNS + CLI_RUNS - 1


def check_processed_duration(t: Traffic) -> None:
    name = "lambda_trigger_consumer_processed_duration_seconds"
    assert _consumer(t, "cli_unmapped", f"{name}_count") == 1  # handled without invoking
    assert _whole_run(t, "consumer", f"{name}_count") == API_RUNS + CLI_RUNS
    # The outage held that run until DataHub came back: longer than the function itself.
    assert _consumer(t, "datahub_outage", f"{name}_sum") > OUTAGE_LAMBDA_SECONDS


def check_status_writes(t: Traffic) -> None:
    name = "lambda_trigger_consumer_status_writes_total"
    assert _consumer(t, "api_run_success", name, status="RUNNING") == 1
    assert _consumer(t, "api_run_success", name, status="SUCCESS") == 1
    assert _consumer(t, "function_error", name, status="FAILURE") == 1
    assert _consumer(t, "cli_unmapped", name, status="FAILURE") == 1
    assert _consumer(t, "cli_unmapped", name, status="RUNNING") == 0  # never claimed
    # An asynchronous start without a destination: the claim, then SUCCESS "accepted by
    # Lambda; completion not tracked" at once (never RUNNING forever).
    assert _consumer(t, "mapping_reload_success", name, status="RUNNING") == 1
    assert _consumer(t, "mapping_reload_success", name, status="SUCCESS") == 1
    assert _consumer(t, "datahub_outage", name, status="SUCCESS") == 1  # written once it was back


def check_status_write_failures(t: Traffic) -> None:
    name = "lambda_trigger_consumer_status_write_failures_total"
    assert _consumer(t, "datahub_outage", name) >= 1
    _only_in(t, "consumer", name, {"datahub_outage"})


def check_dead_letters(t: Traffic) -> None:
    name = "lambda_trigger_consumer_dead_letters_total"
    assert _consumer(t, "noise_and_malformed", name, reason="decode_framing") == 1
    # The outage's final status was written once DataHub came back: not dead-lettered.
    _only_in(t, "consumer", name, {"noise_and_malformed"})


def check_inflight(t: Traffic) -> None:
    name = "lambda_trigger_consumer_inflight_invocations"
    assert t.inflight_during_outage == 1
    assert t.start.consumer.total(name) == 0
    assert t.final.consumer.total(name) == 0


def check_lag(t: Traffic) -> None:
    name = "lambda_trigger_consumer_lag_messages"
    series = t.final.consumer.label_sets(name)
    # Set for every assigned partition of the topic (3 in the GMS double), 0 once caught up.
    assert t.partitions == 3
    assert sorted(s["partition"] for s in series) == ["0", "1", "2"]
    assert {s["topic"] for s in series} == {TOPIC}
    assert t.final.consumer.total(name) == 0
    # A DataHub outage does not block the MCL: the backlog produced during it was read then.
    assert t.discarded_during_outage >= NOISE_BACKLOG


def check_last_commit(t: Traffic) -> None:
    name = "lambda_trigger_consumer_last_commit_timestamp_seconds"
    last = t.final.consumer.total(name)
    assert last > t.start.consumer.total(name)
    assert t.steps["mapping_reload_error"][0].wall < last <= t.final.wall


def check_mapping_reloads(t: Traffic) -> None:
    name = "lambda_trigger_consumer_mapping_reloads_total"
    assert _consumer(t, "mapping_reload_success", name, result="success") == 1
    assert _consumer(t, "mapping_reload_error", name, result="error") == 1
    _only_in(t, "consumer", name, {"mapping_reload_success"}, result="success")
    _only_in(t, "consumer", name, {"mapping_reload_error"}, result="error")


def _mapping_hash(scrape: Any, name: str) -> str:
    [labels] = scrape.label_sets(name)  # one mapping in force at a time
    assert scrape.total(name) == 1
    return str(labels["hash"])


def check_consumer_mapping_info(t: Traffic) -> None:
    name = "lambda_trigger_consumer_mapping_info"
    before, after = t.steps["mapping_reload_success"]
    old, new = _mapping_hash(before.consumer, name), _mapping_hash(after.consumer, name)
    assert _mapping_hash(t.start.consumer, name) == old != new
    # The broken edit was rejected: the hash in force did not move.
    before, after = t.steps["mapping_reload_error"]
    assert _mapping_hash(before.consumer, name) == _mapping_hash(after.consumer, name) == new
    assert _mapping_hash(t.final.consumer, name) == new


def check_api_mapping_info(t: Traffic) -> None:
    name = "lambda_trigger_api_mapping_info"
    consumer = "lambda_trigger_consumer_mapping_info"
    # Both services loaded the same file at start: the same hash.
    assert _mapping_hash(t.start.api, name) == _mapping_hash(t.start.consumer, consumer)
    # The api reloads on its own clock: at the end it runs the start's or the edited mapping.
    seen = {_mapping_hash(t.start.consumer, consumer), _mapping_hash(t.final.consumer, consumer)}
    for step in t.steps.values():
        for snap in step:
            assert _mapping_hash(snap.api, name) in seen
    assert _mapping_hash(t.final.api, name) in seen


def check_dependency_up(t: Traffic) -> None:
    name = "lambda_trigger_consumer_dependency_up"
    deps = {s["dependency"] for s in t.final.consumer.label_sets(name)}
    assert deps == {"kafka", "gms", "schema_registry", "aws"}
    for dep in deps:
        assert t.final.consumer.total(name, {"dependency": dep}) == 1, dep


def check_consumer_info(t: Traffic) -> None:
    assert t.final.consumer.label_sets("lambda_trigger_consumer_info") == [
        {"version": __version__, "executor_id": "lambda-trigger"}
    ]
    assert t.final.consumer.total("lambda_trigger_consumer_info") == 1


def check_api_requests(t: Traffic) -> None:
    name = "lambda_trigger_api_requests_total"
    run, runs = "/api/ingestion/run", "/api/ingestion/runs/{run_id}"
    assert _api(t, "api_run_success", name, route=run, method="POST", status_code="202") == 1
    assert _api(t, "api_run_success", name, route=runs, method="GET", status_code="200") >= 1
    assert (
        _api(
            t, "api_targets", name, route="/api/ingestion/targets", method="GET", status_code="200"
        )
        == 2
    )
    errors = "api_client_errors"
    assert _api(t, errors, name, route=run, method="POST", status_code="400") == 2
    assert _api(t, errors, name, route=run, method="POST", status_code="404") == 1
    assert _api(t, errors, name, route=run, method="POST", status_code="422") == 1
    assert _api(t, errors, name, route=runs, method="GET", status_code="404") == 1
    assert _api(t, "unauthenticated", name, route=run, method="POST", status_code="401") == 1
    assert _api(t, "datahub_outage", name, route=run, status_code="503") == API_5XX_RUN
    for route in (runs, "/api/ingestion/targets"):
        assert _api(t, "datahub_outage", name, route=route, status_code="503") == 1, route
    _only_in(t, "api", name, {"datahub_outage"}, status_code="503")
    assert t.api_statuses["api_client_errors"] == [400, 400, 404, 422, 404]


def check_api_request_duration(t: Traffic) -> None:
    name = "lambda_trigger_api_request_duration_seconds_count"
    run = "/api/ingestion/run"
    assert _api(t, "api_client_errors", name, route=run, method="POST") == 4
    assert _api(t, "api_targets", name, route="/api/ingestion/targets", method="GET") == 2


def check_datahub_request_duration(t: Traffic) -> None:
    name = "lambda_trigger_api_datahub_request_duration_seconds_count"
    assert _api(t, "api_run_success", name, operation="write_request") == 1
    assert _api(t, "api_run_success", name, operation="dataset") == 1
    # A run's status is one batch read of its request and result (api/lambda_trigger_api/runs.py).
    assert _api(t, "api_run_success", name, operation="read_runs") >= 1
    assert _api(t, "api_client_errors", name, operation="dataset") == 2  # the 404 and the 422
    assert _api(t, "api_client_errors", name, operation="write_request") == 0


def check_datahub_request_failures(t: Traffic) -> None:
    name = "lambda_trigger_api_datahub_request_failures_total"
    assert _api(t, "datahub_outage", name, operation="identify") == API_5XX_RUN + 2
    _only_in(t, "api", name, {"datahub_outage", "unauthenticated"})


def check_runs_requested(t: Traffic) -> None:
    name = "lambda_trigger_api_runs_requested_total"
    assert _api(t, "api_run_success", name, source="LAMBDA_TRIGGER_API") == 1
    assert _api(t, "api_client_errors", name) == 0
    assert _api(t, "cli_unmapped", name) == 0  # written by the CLI, not the api
    assert _whole_run(t, "api", name) == API_RUNS


def check_api_info(t: Traffic) -> None:
    assert t.final.api.label_sets("lambda_trigger_api_info") == [{"version": __version__}]
    assert t.final.api.total("lambda_trigger_api_info") == 1


# Contract metric -> the check that its event moved (or set) it. docs/observability.md lists the
# same table in words.
def check_open_runs(t: Traffic) -> None:
    name = "lambda_trigger_consumer_open_runs"
    # Every run of every step ended (each step waits for it): nothing left in the ledger.
    assert t.final.consumer.total(name) == 0


def check_runs_queued(t: Traffic) -> None:
    # One run at a time here (LAMBDA_TRIGGER_MAX_INFLIGHT=1, each step waits for its run):
    # nothing waits long enough to be seen. tests/integration/test_fair_scheduling.py shows a
    # burst waiting (and a click passing it).
    name = "lambda_trigger_consumer_runs_queued"
    priorities = {s["priority"] for s in t.final.consumer.label_sets(name)}
    assert priorities == {"interactive", "programmatic", "triggered"}
    assert t.start.consumer.total(name) == 0
    assert t.final.consumer.total(name) == 0


def check_runs_inflight(t: Traffic) -> None:
    name = "lambda_trigger_consumer_runs_inflight"
    kinds = {s["kind"] for s in t.final.consumer.label_sets(name)}
    assert kinds == {"sync", "event", "stepfunctions"}
    # The outage's synchronous Lambda was running when it was read.
    assert t.sync_runs_inflight_during_outage == 1
    assert t.start.consumer.total(name) == 0
    assert t.final.consumer.total(name) == 0


def check_runs_finished(t: Traffic) -> None:
    name = "lambda_trigger_consumer_runs_finished_total"
    assert _consumer(t, "api_run_success", name, status="SUCCESS") == 1
    assert _consumer(t, "function_error", name, status="FAILURE") == 1
    assert _consumer(t, "cli_unmapped", name, status="FAILURE") == 1
    assert _consumer(t, "mapping_reload_success", name, status="SUCCESS") == 1
    assert _whole_run(t, "consumer", name) == API_RUNS + CLI_RUNS


def _never(t: Traffic, name: str) -> None:
    """No event of this traffic moves it; the test named in docs/observability.md does."""
    assert name in t.final.consumer.sample_names(), f"{name} is not exported"
    _only_in(t, "consumer", name, set())


def check_run_takeovers(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_run_takeovers_total")


def check_duplicate_requests(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_duplicate_requests_total")


def check_unexpected_errors(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_unexpected_errors_total")


def check_completion_records(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_completion_records_total")


def check_unauthorised_requests(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_unauthorised_requests_total")


def check_history_writes(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_history_writes_total")  # history is off in this stack


def check_ledger_records_rejected(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_ledger_records_rejected_total")


def check_cancels_ignored(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_cancels_ignored_total")


def check_pre_invoke_refusals(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_pre_invoke_refusals_total")


def check_history_write_failures(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_history_write_failures_total")


def check_triggers_events(t: Traffic) -> None:
    # The traffic's mapping has no triggers: tests/integration/test_triggers.py shows them.
    _never(t, "lambda_trigger_consumer_triggers_events_total")


def check_triggers_fired(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_triggers_fired_total")


def check_triggers_debounced(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_triggers_debounced_total")


def check_triggers_suppressed(t: Traffic) -> None:
    _never(t, "lambda_trigger_consumer_triggers_suppressed_total")


METRIC_EVENTS: dict[str, Check] = {
    "lambda_trigger_consumer_open_runs": check_open_runs,
    "lambda_trigger_consumer_runs_finished_total": check_runs_finished,
    "lambda_trigger_consumer_run_takeovers_total": check_run_takeovers,
    "lambda_trigger_consumer_duplicate_requests_total": check_duplicate_requests,
    "lambda_trigger_consumer_unexpected_errors_total": check_unexpected_errors,
    "lambda_trigger_consumer_completion_records_total": check_completion_records,
    "lambda_trigger_consumer_unauthorised_requests_total": check_unauthorised_requests,
    "lambda_trigger_consumer_ledger_records_rejected_total": check_ledger_records_rejected,
    "lambda_trigger_consumer_cancels_ignored_total": check_cancels_ignored,
    "lambda_trigger_consumer_pre_invoke_refusals_total": check_pre_invoke_refusals,
    "lambda_trigger_consumer_history_writes_total": check_history_writes,
    "lambda_trigger_consumer_history_write_failures_total": check_history_write_failures,
    "lambda_trigger_consumer_aws_calls_total": check_aws_calls,
    "lambda_trigger_consumer_aws_throttles_total": check_aws_throttles,
    "lambda_trigger_consumer_runs_queued": check_runs_queued,
    "lambda_trigger_consumer_runs_inflight": check_runs_inflight,
    "lambda_trigger_consumer_triggers_events_total": check_triggers_events,
    "lambda_trigger_consumer_triggers_fired_total": check_triggers_fired,
    "lambda_trigger_consumer_triggers_debounced_total": check_triggers_debounced,
    "lambda_trigger_consumer_triggers_suppressed_total": check_triggers_suppressed,
    "lambda_trigger_consumer_received_messages_total": check_received,
    "lambda_trigger_consumer_key_discarded_messages_total": check_key_discarded,
    "lambda_trigger_consumer_decoded_messages_total": check_decoded,
    "lambda_trigger_consumer_decode_failures_total": check_decode_failures,
    "lambda_trigger_consumer_accepted_requests_total": check_accepted,
    "lambda_trigger_consumer_invocations_total": check_invocations,
    "lambda_trigger_consumer_invocation_duration_seconds": check_invocation_duration,
    "lambda_trigger_consumer_request_to_invoke_seconds": check_request_to_invoke,
    "lambda_trigger_consumer_processed_duration_seconds": check_processed_duration,
    "lambda_trigger_consumer_status_writes_total": check_status_writes,
    "lambda_trigger_consumer_status_write_failures_total": check_status_write_failures,
    "lambda_trigger_consumer_dead_letters_total": check_dead_letters,
    "lambda_trigger_consumer_inflight_invocations": check_inflight,
    "lambda_trigger_consumer_lag_messages": check_lag,
    "lambda_trigger_consumer_last_commit_timestamp_seconds": check_last_commit,
    "lambda_trigger_consumer_mapping_reloads_total": check_mapping_reloads,
    "lambda_trigger_consumer_dependency_up": check_dependency_up,
    "lambda_trigger_consumer_mapping_info": check_consumer_mapping_info,
    "lambda_trigger_consumer_info": check_consumer_info,
    "lambda_trigger_api_requests_total": check_api_requests,
    "lambda_trigger_api_request_duration_seconds": check_api_request_duration,
    "lambda_trigger_api_datahub_request_duration_seconds": check_datahub_request_duration,
    "lambda_trigger_api_datahub_request_failures_total": check_datahub_request_failures,
    "lambda_trigger_api_runs_requested_total": check_runs_requested,
    "lambda_trigger_api_mapping_info": check_api_mapping_info,
    "lambda_trigger_api_info": check_api_info,
}


def test_every_contract_metric_has_an_event_check() -> None:
    assert set(METRIC_EVENTS) == {s.name for s in CONTRACT}


def test_docs_list_the_event_of_every_metric() -> None:
    text = (REPO_ROOT / "docs" / "observability.md").read_text("utf-8")
    section = text.split("### Which test shows each metric moving", 1)[1].split("\n## ", 1)[0]
    missing = [s.name for s in CONTRACT if f"`{s.name}`" not in section]
    assert missing == []


@pytest.mark.parametrize("spec", CONTRACT, ids=lambda s: s.name)
def test_metric_moves_with_its_event(live_run: LiveRun, spec: MetricSpec) -> None:
    assert set(live_run.traffic.steps) == set(STEPS)
    METRIC_EVENTS[spec.name](live_run.traffic)


def test_prometheus_saw_the_events(live_run: LiveRun) -> None:
    """The same events, as the dashboard's Prometheus stored them."""
    prom = live_run.live.prom
    consumer, api = f'job="{CONSUMER_JOB}"', f'job="{API_JOB}"'
    expected = {
        f'sum(lambda_trigger_consumer_invocations_total{{{consumer}, outcome="function_error"}})': 1,
        f'sum(lambda_trigger_consumer_invocations_total{{{consumer}, outcome="invoke_error"}})': 1,
        f'sum(lambda_trigger_consumer_invocations_total{{{consumer}, outcome="started"}})': 1,
        f'sum(lambda_trigger_consumer_invocations_total{{{consumer}, outcome="success"}})': 3,
        f'sum(lambda_trigger_consumer_decode_failures_total{{{consumer}, reason="framing"}})': 1,
        f'sum(lambda_trigger_consumer_dead_letters_total{{{consumer}, reason="decode_framing"}})': 1,
        f'sum(lambda_trigger_consumer_mapping_reloads_total{{{consumer}, result="error"}})': 1,
        f'sum(lambda_trigger_consumer_mapping_reloads_total{{{consumer}, result="success"}})': 1,
        f"sum(lambda_trigger_consumer_accepted_requests_total{{{consumer}}})": API_RUNS + CLI_RUNS,
        f"max_over_time(lambda_trigger_consumer_inflight_invocations{{{consumer}}}[10m])": 1,
        f'sum(lambda_trigger_api_requests_total{{{api}, status_code=~"5.."}})': API_5XX_RUN + 2,
        f"sum(lambda_trigger_api_runs_requested_total{{{api}}})": API_RUNS,
        f"sum(up{{{consumer}}}) + sum(up{{{api}}})": 2,
    }
    seen = {}
    for expr in expected:
        samples = prom.query(expr)
        seen[expr] = float(samples[0]["value"][1]) if samples else None
    assert seen == expected
    assert (
        float(
            prom.query(f"sum(lambda_trigger_consumer_status_write_failures_total{{{consumer}}})")[
                0
            ]["value"][1]
        )
        >= 1
    )


# --- defects this test found and that were fixed (each failed before its fix) ----------------


def test_a_datahub_outage_does_not_stop_the_consumer_reading(live_run: LiveRun) -> None:
    """Before the run ledger, a run waiting for DataHub held a worker and the consumer stopped
    reading (lag grew); now the poll loop never waits for DataHub."""
    assert live_run.traffic.discarded_during_outage >= NOISE_BACKLOG


def test_an_unauthenticated_caller_is_not_a_datahub_failure(live_run: LiveRun) -> None:
    assert live_run.traffic.api_statuses["unauthenticated"] == [401]
    assert (
        _api(
            live_run.traffic, "unauthenticated", "lambda_trigger_api_datahub_request_failures_total"
        )
        == 0
    )


def test_an_edited_mapping_is_reloaded_without_a_request(live_run: LiveRun) -> None:
    assert live_run.traffic.reload_without_request


def test_the_first_run_of_a_target_added_by_a_reload_shows_in_rates(live_run: LiveRun) -> None:
    """Its series were scraped at 0 before its first invocation, so increase() counts it."""
    samples = live_run.live.prom.query(
        "sum(increase(lambda_trigger_consumer_invocations_total"
        f'{{target="{HIVE_ASYNC}", outcome="started"}}[10m]))'
    )
    assert samples, "no series for the reloaded target"
    assert float(samples[0]["value"][1]) >= 0.5


# --- the picture ----------------------------------------------------------------------------


def test_the_dashboard_renders_from_the_live_prometheus(live_run: LiveRun, tmp_path: Path) -> None:
    """render_dashboard.render() on this run: every panel drawn with data, none with an error.
    DASHBOARD_PNG=<path> keeps the picture (docs/images/dashboard.png is made by the script,
    which spaces the steps out: see docs/observability.md)."""
    from .render_dashboard import marks_of, render, subtitle

    traffic = live_run.traffic
    out = Path(os.environ.get("DASHBOARD_PNG") or tmp_path / "dashboard.png")
    panels = render(
        live_run.live.prom.url,
        out,
        traffic.start.wall - 3,
        traffic.final.wall,
        marks=marks_of(traffic),
        subtitle=subtitle("10s"),
    )
    assert [(p.title, p.errors) for p in panels if p.errors] == []
    assert [p.title for p in panels if not p.series] == []
    # 31 panels, the per-target row three times (3 targets) instead of once.
    panel_count = sum(1 for p in _panels(load_dashboard()) if p.get("type") != "row")
    assert len(panels) == panel_count + 2 * 3
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
