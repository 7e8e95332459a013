"""Traffic through the REAL services that makes every contract metric move.

`drive_traffic(live)` runs a fixed sequence of steps against a `live.LiveStack`: runs through
the api that succeed, fail in the function, cannot be invoked; api calls answered 4xx and 5xx;
records that are discarded by key or cannot be decoded; a run for an unmapped dataset written
with the CLI's code; a DataHub outage while a run is in flight; mapping reloads that succeed and
fail. Around every step it reads both services' /metrics, so a test can tell which step moved
which metric (`Traffic.delta`). Each step waits for its own effect (a run's final status, a
counter reaching a value) before the next starts; nothing depends on how long anything takes
except the fake Lambda's fixed delay in the outage step (see `_datahub_outage`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml
from confluent_kafka import Producer

from lambda_trigger.cli import request_run
from lambda_trigger.runid import new_run_id

from .live import MAPPING_RELOAD_SECONDS, LiveStack, WaitTimeout, wait_for
from .scrape import Scrape

TOPIC = "MetadataChangeLog_Versioned_v1"
# Every run request names its dataset's ingestion source, which the api and the CLI create on
# the dataset's first run (common/lambda_trigger/sources.py FirstUseSources): GMS then emits
# MCLs keyed by the source's URN, which the consumer discards by key.
SOURCE_KEY_PREFIX = "urn:li:dataHubIngestionSource:"
SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLYGON = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
# Seeded by the GMS double and in no rule of mappings/example.yaml (until the reload step).
HIVE = "urn:li:dataset:(urn:li:dataPlatform:hive,SampleHiveDataset,PROD)"
# A well-formed dataset URN DataHub does not know.
UNKNOWN = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.nowhere.nothing,PROD)"

EARNINGS = "Earnings loader"
POLYGON_LABEL = "Polygon prices loader"
HIVE_ASYNC = "Hive sample loader (async)"

API_5XX_RUN = 6  # POST /api/ingestion/run calls answered 503 during the outage
NOISE_DISCARDED = 10  # unrelated records of the `noise_and_malformed` step
NOISE_BACKLOG = 30  # records produced while the consumer is blocked (`datahub_outage`)
OUTAGE_LAMBDA_SECONDS = 2.0
# How long to watch the lag gauge while the consumer is blocked: it is refreshed every 5 s.
LAG_WATCH_SECONDS = 8.0

STEPS = (
    "api_run_success",
    "api_targets",
    "function_error",
    "invoke_error",
    "api_client_errors",
    "unauthenticated",
    "noise_and_malformed",
    "cli_unmapped",
    "datahub_outage",
    "mapping_reload_success",
    "mapping_reload_error",
)


@dataclass(frozen=True)
class Snapshot:
    consumer: Scrape
    api: Scrape
    wall: float  # time.time() when taken
    # MCLs the GMS double had produced onto TOPIC keyed by an ingestion source URN.
    source_mcls: int = 0

    def of(self, component: str) -> Scrape:
        return self.consumer if component == "consumer" else self.api


@dataclass
class Traffic:
    """What drive_traffic did and saw."""

    start: Snapshot
    steps: dict[str, tuple[Snapshot, Snapshot]] = field(default_factory=dict)
    end: Snapshot | None = None
    # HTTP status codes the api answered, per step.
    api_statuses: dict[str, list[int]] = field(default_factory=dict)
    # DataHub status each run ended with (or stayed at), by step.
    run_statuses: dict[str, str] = field(default_factory=dict)
    # Gauges read while the outage held the one run in flight.
    inflight_during_outage: float = -1.0
    sync_runs_inflight_during_outage: float = -1.0
    max_lag_during_outage: float = -1.0
    discarded_during_outage: float = -1.0
    # Number of partitions of the MCL topic (the lag gauge should have one series each).
    partitions: int = 0
    # Whether the consumer re-read the edited mapping before any request asked for it.
    reload_without_request: bool = False
    # Wall-clock times: DataHub down (start, end), and each edit of the mapping file.
    outage: tuple[float, float] = (0.0, 0.0)
    mapping_edits: list[float] = field(default_factory=list)
    # The snapshot taken as each step began (also for a step that then failed).
    began: dict[str, Snapshot] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Traffic(steps={list(self.steps)})"

    def steps_before(self, step: str) -> Snapshot:
        return self.began[step]

    def delta(
        self,
        step: str,
        component: str,
        name: str,
        labels: Mapping[str, str] | None = None,
    ) -> float:
        """How much the samples of `name` whose labels include `labels` grew during `step`."""
        before, after = self.steps[step]
        return after.of(component).total(name, labels) - before.of(component).total(name, labels)

    def source_mcls(self, step: str) -> int:
        """MCLs of ingestion sources (created on a dataset's first run) GMS emitted in `step`."""
        before, after = self.steps[step]
        return after.source_mcls - before.source_mcls

    def deltas_by_step(
        self, component: str, name: str, labels: Mapping[str, str] | None = None
    ) -> dict[str, float]:
        return {step: self.delta(step, component, name, labels) for step in self.steps}

    @property
    def final(self) -> Snapshot:
        assert self.end is not None, "drive_traffic did not finish"
        return self.end


def source_mcl_count(live: LiveStack) -> int:
    gms = live.stack.gms
    assert gms is not None
    return sum(1 for m in gms.mcl_log() if m.topic == TOPIC and m.key.startswith(SOURCE_KEY_PREFIX))


def snapshot(live: LiveStack) -> Snapshot:
    # MCLs first: a record counted here was produced before the scrapes below.
    sources = source_mcl_count(live)
    return Snapshot(live.scrape_consumer(), live.scrape_api(), time.time(), sources)


class _Driver:
    def __init__(self, live: LiveStack) -> None:
        self.live = live
        self.api = live.api()
        self.datahub = live.datahub()
        self.producer = Producer({"bootstrap.servers": live.kafka_bootstrap})
        self.traffic = Traffic(start=snapshot(live))

    def close(self) -> None:
        self.api.close()
        self.datahub.close()
        self.producer.flush(10)

    # --- helpers ------------------------------------------------------------------------

    def consumer_value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        return self.live.scrape_consumer().total(name, labels)

    def wait_consumer(
        self, name: str, labels: Mapping[str, str] | None, at_least: float, timeout: float = 30.0
    ) -> None:
        wait_for(
            f"consumer {name}{dict(labels or {})} >= {at_least}",
            lambda: self.consumer_value(name, labels) >= at_least,
            timeout=timeout,
            detail=self.live.logs,
        )

    def post_run(self, dataset: str, step: str, **extra: Any) -> httpx.Response:
        response = self.api.post("/api/ingestion/run", json={"datasetUrn": dataset, **extra})
        self.traffic.api_statuses.setdefault(step, []).append(response.status_code)
        return response

    def get(self, path: str, step: str, **kwargs: Any) -> httpx.Response:
        response = self.api.get(path, **kwargs)
        self.traffic.api_statuses.setdefault(step, []).append(response.status_code)
        return response

    def wait_run_via_api(self, run_id: str, step: str, states: set[str]) -> dict[str, Any]:
        """Poll GET /api/ingestion/runs/{runId} (as the button does) until one of `states`."""

        def ended() -> dict[str, Any] | None:
            response = self.get(f"/api/ingestion/runs/{run_id}", step)
            body: dict[str, Any] = response.json()
            return body if response.status_code == 200 and body["state"] in states else None

        body = wait_for(f"run {run_id} in {states}", ended, interval=0.2, detail=self.live.logs)
        self.traffic.run_statuses[step] = str(body["datahubStatus"])
        return body

    def wait_run_in_datahub(self, run_id: str, step: str, statuses: set[str]) -> str:
        def ended() -> str | None:
            result = self.datahub.read_result(run_id)
            return result.status if result is not None and result.status in statuses else None

        status = wait_for(f"run {run_id} in {statuses}", ended, interval=0.2, detail=self.live.logs)
        self.traffic.run_statuses[step] = status
        return status

    def api_run(self, dataset: str, step: str) -> str:
        response = self.post_run(dataset, step, reason=f"observability test: {step}")
        assert response.status_code == 202, response.text
        run_id: str = response.json()["runId"]
        return run_id

    def produce(self, key: str, value: bytes) -> None:
        self.producer.produce(TOPIC, key=key.encode(), value=value)

    def edit_mapping(self, document: Mapping[str, Any] | str) -> None:
        """Rewrite the services' mapping file and wait until the consumer's next request will
        re-read it (it checks the file's mtime at most every MAPPING_RELOAD_SECONDS)."""
        text = document if isinstance(document, str) else yaml.safe_dump(dict(document))
        path = self.live.mapping_path
        old_mtime = path.stat().st_mtime
        path.write_text(text, encoding="utf-8")
        self.traffic.mapping_edits.append(time.time())
        # A distinct mtime even on file systems with coarse timestamps.
        new_mtime = max(time.time(), old_mtime + 1.0)
        os.utime(path, (new_mtime, new_mtime))
        time.sleep(MAPPING_RELOAD_SECONDS + 0.2)

    def step(self, name: str) -> _Step:
        return _Step(self, name)

    # --- the steps ----------------------------------------------------------------------

    def wait_runs_handled(self) -> None:
        """Until every run request the consumer accepted was handled to the end (its status
        writes counted): the step's `after` snapshot then holds all that its runs moved."""

        def handled() -> bool:
            consumer = self.live.scrape_consumer()
            accepted = consumer.total("lambda_trigger_consumer_accepted_requests_total")
            processed = consumer.total("lambda_trigger_consumer_processed_duration_seconds_count")
            inflight = consumer.total("lambda_trigger_consumer_inflight_invocations")
            return processed == accepted and inflight == 0

        wait_for("every accepted run handled", handled, detail=self.live.logs)

    def wait_source_records_read(self, step: str) -> None:
        """Until the consumer has read (and discarded by key) the ingestion-source MCLs GMS
        emitted during `step`: they may sit on another partition than the run's request, so
        the run's end does not tell they were read. The check then asserts the exact count."""
        before = self.traffic.steps_before(step)
        produced = source_mcl_count(self.live) - before.source_mcls
        if produced:
            name = "lambda_trigger_consumer_key_discarded_messages_total"
            self.wait_consumer(name, None, before.consumer.total(name) + produced)

    def run(self, pause: float = 0.0) -> Traffic:
        for name in STEPS:
            with self.step(name):
                getattr(self, f"_{name}")()
                self.wait_runs_handled()
                self.wait_source_records_read(name)
            time.sleep(pause)
        self._settle()
        return self.traffic

    def _api_run_success(self) -> None:
        run_id = self.api_run(SIP, "api_run_success")
        self.wait_run_via_api(run_id, "api_run_success", {"succeeded", "failed"})
        self.wait_consumer(
            "lambda_trigger_consumer_status_writes_total",
            {"status": "SUCCESS"},
            self.traffic.steps_before("api_run_success").consumer.total(
                "lambda_trigger_consumer_status_writes_total", {"status": "SUCCESS"}
            )
            + 1,
        )

    def _api_targets(self) -> None:
        for dataset in (SIP, HIVE):
            response = self.get(
                "/api/ingestion/targets", "api_targets", params={"datasetUrn": dataset}
            )
            assert response.status_code == 200, response.text

    def _function_error(self) -> None:
        assert self.live.stack.moto is not None
        self.live.stack.moto.queue_result("earnings-lambda", function_error="boom")
        before = self.consumer_value(
            "lambda_trigger_consumer_invocations_total",
            {"target": EARNINGS, "outcome": "function_error"},
        )
        run_id = self.api_run(SIP, "function_error")
        self.wait_run_via_api(run_id, "function_error", {"succeeded", "failed"})
        self.wait_consumer(
            "lambda_trigger_consumer_invocations_total",
            {"target": EARNINGS, "outcome": "function_error"},
            before + 1,
        )

    def _invoke_error(self) -> None:
        assert self.live.stack.moto is not None
        self.live.stack.moto.queue_invoke_error(
            "polygon-lambda",
            status=403,
            error_type="AccessDeniedException",
            message="not allowed to invoke (observability test)",
        )
        before = self.consumer_value(
            "lambda_trigger_consumer_invocations_total",
            {"target": POLYGON_LABEL, "outcome": "invoke_error"},
        )
        run_id = self.api_run(POLYGON, "invoke_error")
        self.wait_run_via_api(run_id, "invoke_error", {"succeeded", "failed"})
        self.wait_consumer(
            "lambda_trigger_consumer_invocations_total",
            {"target": POLYGON_LABEL, "outcome": "invoke_error"},
            before + 1,
        )

    def _api_client_errors(self) -> None:
        step = "api_client_errors"
        self.post_run("not-a-urn", step)  # 400 invalid_request
        self.post_run("urn:li:corpuser:alice", step)  # 400: not a dataset
        self.post_run(UNKNOWN, step)  # 404 dataset_not_found
        self.post_run(HIVE, step)  # 422 no_target
        self.get(f"/api/ingestion/runs/{new_run_id()}", step)  # 404 run_not_found

    def _unauthenticated(self) -> None:
        # No credentials at all: the api answers 401 without asking DataHub anything.
        response = httpx.post(
            f"{self.live.api_url}/api/ingestion/run", json={"datasetUrn": SIP}, timeout=30
        )
        self.traffic.api_statuses.setdefault("unauthenticated", []).append(response.status_code)

    def _noise_and_malformed(self) -> None:
        received = self.consumer_value("lambda_trigger_consumer_received_messages_total")
        # Records of other entities: dropped by their key alone. Their values are not even
        # Avro: a decode attempt would count a decode failure.
        for i in range(NOISE_DISCARDED):
            self.produce(f"urn:li:dataset:(urn:li:dataPlatform:hive,noise_{i},PROD)", b"junk")
        # A record keyed like a run request that is not Confluent-framed Avro.
        self.produce(f"urn:li:dataHubExecutionRequest:{new_run_id()}", b"\x07not avro at all")
        self.producer.flush(10)
        self.wait_consumer(
            "lambda_trigger_consumer_dead_letters_total",
            {"reason": "decode_framing"},
            self.traffic.steps_before("noise_and_malformed").consumer.total(
                "lambda_trigger_consumer_dead_letters_total", {"reason": "decode_framing"}
            )
            + 1,
        )
        self.wait_consumer(
            "lambda_trigger_consumer_received_messages_total", None, received + NOISE_DISCARDED + 1
        )

    def _cli_unmapped(self) -> None:
        request = request_run(self.datahub, HIVE, reason="observability test: unmapped")
        self.wait_run_in_datahub(request.run_id, "cli_unmapped", {"SUCCESS", "FAILURE"})
        failures = self.traffic.steps_before("cli_unmapped").consumer.total(
            "lambda_trigger_consumer_status_writes_total", {"status": "FAILURE"}
        )
        self.wait_consumer(
            "lambda_trigger_consumer_status_writes_total", {"status": "FAILURE"}, failures + 1
        )

    def _datahub_outage(self) -> None:
        """A run is in flight when DataHub goes down: its final status write fails and is
        retried from the run ledger until DataHub is back; the MCL keeps being read meanwhile
        (a DataHub outage never blocks the poll loop: the records produced during it are read
        and discarded before DataHub returns); the api answers 503."""
        step = "datahub_outage"
        moto, gms = self.live.stack.moto, self.live.stack.gms
        assert moto is not None and gms is not None
        write_failures = self.consumer_value("lambda_trigger_consumer_status_write_failures_total")
        # The function takes OUTAGE_LAMBDA_SECONDS: DataHub goes down while it runs, so the
        # claim (RUNNING) is written and the final status is not. The only timing assumption
        # of the traffic: taking DataHub down is quicker than that.
        moto.queue_result(
            "earnings-lambda", payload={"rows": 1}, delay_seconds=OUTAGE_LAMBDA_SECONDS
        )
        run_id = self.api_run(SIP, step)
        wait_for(
            "the fake Lambda to start",
            lambda: "earnings-lambda" not in moto.pending().get("results", {}),
            interval=0.02,
        )
        gms.set_down(True)
        down_since = time.time()
        # The function still runs: its invoke holds the one in-flight slot.
        self.traffic.inflight_during_outage = self.consumer_value(
            "lambda_trigger_consumer_inflight_invocations"
        )
        self.traffic.sync_runs_inflight_during_outage = self.consumer_value(
            "lambda_trigger_consumer_runs_inflight", {"kind": "sync"}
        )
        discarded_before = self.consumer_value(
            "lambda_trigger_consumer_key_discarded_messages_total"
        )
        try:
            # 503s: the caller cannot be identified. A labelled counter's series is born at
            # its first increment, which rate() cannot see: let Prometheus scrape the first
            # 503 before the others, so the 5xx ratio panel and alert see API_5XX_RUN - 1.
            self.post_run(SIP, step)
            self.live.wait_for_fresh_scrapes()
            for _ in range(API_5XX_RUN - 1):
                self.post_run(SIP, step)
            self.get("/api/ingestion/targets", step, params={"datasetUrn": SIP})  # 503
            self.get(f"/api/ingestion/runs/{run_id}", step)  # 503
            for i in range(NOISE_BACKLOG):
                self.produce(f"urn:li:dataset:(urn:li:dataPlatform:hive,backlog_{i},PROD)", b"x")
            self.producer.flush(10)
            # Until the final status write has failed and the records produced during the
            # outage were read (discarded by their key) while DataHub is still down.
            write_deadline = time.monotonic() + 30.0
            while True:
                consumer = self.live.scrape_consumer()
                lag = consumer.total("lambda_trigger_consumer_lag_messages")
                self.traffic.max_lag_during_outage = max(self.traffic.max_lag_during_outage, lag)
                failed = (
                    consumer.total("lambda_trigger_consumer_status_write_failures_total")
                    > write_failures
                )
                discarded = (
                    consumer.total("lambda_trigger_consumer_key_discarded_messages_total")
                    - discarded_before
                )
                self.traffic.discarded_during_outage = discarded
                if failed and discarded >= NOISE_BACKLOG:
                    break
                if time.monotonic() > write_deadline:
                    raise WaitTimeout(
                        "no failed status write, or the backlog unread, while DataHub was down\n"
                        + self.live.logs()
                    )
                time.sleep(0.25)
        finally:
            gms.set_down(False)
            self.traffic.outage = (down_since, time.time())
        self.wait_run_via_api(run_id, step, {"succeeded", "failed"})
        discarded = self.traffic.steps_before(step).consumer.total(
            "lambda_trigger_consumer_key_discarded_messages_total"
        )
        self.wait_consumer(
            "lambda_trigger_consumer_key_discarded_messages_total", None, discarded + NOISE_BACKLOG
        )
        wait_for(
            "no run in flight",
            lambda: self.consumer_value("lambda_trigger_consumer_inflight_invocations") == 0,
        )

    def _mapping_document(self) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(self.live.mapping_path.read_text("utf-8"))
        return document

    def _mapping_reload_success(self) -> None:
        """Map the Hive dataset to an asynchronous (Event) target: a run of it now starts."""
        step = "mapping_reload_success"
        document = self._mapping_document()
        document["targets"]["hive-async"] = {
            "type": "lambda",
            "function": "polygon-lambda",
            "invocationType": "Event",
            "label": HIVE_ASYNC,
        }
        document["rules"].append({"dataset": HIVE, "target": "hive-async"})
        reloads = {"result": "success"}
        before = self.consumer_value("lambda_trigger_consumer_mapping_reloads_total", reloads)
        self.edit_mapping(document)
        # LAMBDA_TRIGGER_MAPPING_RELOAD_SECONDS says how often the file is checked: watch
        # whether that happens with no request coming in.
        deadline = time.monotonic() + 2 * MAPPING_RELOAD_SECONDS + 0.5
        while time.monotonic() < deadline and not self.traffic.reload_without_request:
            self.traffic.reload_without_request = (
                self.consumer_value("lambda_trigger_consumer_mapping_reloads_total", reloads)
                > before
            )
            time.sleep(0.1)
        if self.traffic.reload_without_request:
            # The new target's series now exist at 0: let Prometheus store that before the
            # first invocation, so rate() sees it (what reloading on a clock is for).
            self.live.wait_for_fresh_scrapes()
        started = {"target": HIVE_ASYNC, "outcome": "started"}
        request = request_run(self.datahub, HIVE, reason="observability test: after reload")

        def outcome() -> str | None:
            if self.consumer_value("lambda_trigger_consumer_invocations_total", started) >= 1:
                return "started"
            result = self.datahub.read_result(request.run_id)
            return "FAILURE" if result is not None and result.status == "FAILURE" else None

        seen = wait_for(f"run {request.run_id} started", outcome, detail=self.live.logs)
        assert seen == "started", (
            f"run {request.run_id} failed: the reloaded mapping was not used\n{self.live.logs()}"
        )
        # No destination reports an Event invoke's outcome here: the run ends at once,
        # SUCCESS "accepted by Lambda; completion not tracked".
        self.wait_run_in_datahub(request.run_id, step, {"SUCCESS"})

    def _mapping_reload_error(self) -> None:
        """A broken edit: the reload fails, the previous mapping stays in force."""
        step = "mapping_reload_error"
        document = self._mapping_document()
        document["targets"]["earnings"]["functoin"] = "misspelt-key"
        self.edit_mapping(document)
        request = request_run(self.datahub, SIP, reason="observability test: bad mapping")
        self.wait_run_in_datahub(request.run_id, step, {"SUCCESS", "FAILURE"})
        before = self.traffic.steps_before(step).consumer.total(
            "lambda_trigger_consumer_mapping_reloads_total", {"result": "error"}
        )
        self.wait_consumer(
            "lambda_trigger_consumer_mapping_reloads_total", {"result": "error"}, before + 1
        )

    def _settle(self) -> None:
        """Idle: everything read, committed and scraped by Prometheus."""
        consumer = self.live.scrape_consumer()
        self.traffic.partitions = len(consumer.label_sets("lambda_trigger_consumer_lag_messages"))
        wait_for(
            "consumer lag back to 0",
            lambda: self.consumer_value("lambda_trigger_consumer_lag_messages") == 0,
            timeout=30,
        )
        last_step_start = self.traffic.steps["mapping_reload_error"][0].wall
        wait_for(
            "an offset commit after the last step started",
            lambda: (
                self.consumer_value("lambda_trigger_consumer_last_commit_timestamp_seconds")
                > last_step_start
            ),
        )
        self.live.wait_for_fresh_scrapes()
        self.traffic.end = snapshot(self.live)


class _Step:
    """Snapshots both services around one step."""

    def __init__(self, driver: _Driver, name: str) -> None:
        self.driver = driver
        self.name = name
        self.before: Snapshot | None = None

    def __enter__(self) -> _Step:
        self.before = snapshot(self.driver.live)
        self.driver.traffic.began[self.name] = self.before
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            assert self.before is not None
            self.driver.traffic.steps[self.name] = (self.before, snapshot(self.driver.live))


def drive_traffic(live: LiveStack, *, pause: float = 0.0) -> Traffic:
    """Run every step of STEPS, `pause` seconds apart (the dashboard picture uses a few
    seconds, so that each step shows as its own bump in the rates)."""
    driver = _Driver(live)
    try:
        return driver.run(pause)
    finally:
        driver.close()
