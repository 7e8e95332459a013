"""The REAL api and consumer on the local stack, scraped by a real Prometheus.

`live_stack(workdir)` starts devstack's Stack with the services (Kafka broker, GMS test double,
moto server, then `python -m lambda_trigger_api` and `python -m lambda_trigger_consumer` as
child processes) and a PromStack scraping them every second under the contract's job names,
with the alert rule file loaded. Used by test_end_to_end_real.py and render_dashboard.py.

The services read their settings from the environment they inherit, so the stack is started
with these set in os.environ (restored afterwards):

- DEVSTACK_MAPPING_FILE: a copy of mappings/example.yaml in `workdir`, which the traffic edits
  to exercise mapping reloads (devstack/services.py passes it to both services);
- LAMBDA_TRIGGER_MAPPING_RELOAD_SECONDS=1: the consumer notices an edit within a second;
- LAMBDA_TRIGGER_MAX_INFLIGHT=1: one run at a time, so a run held up by a DataHub outage
  blocks the consumer and unread messages pile up (what the lag gauge must show).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from devstack.services import MAPPING_FILE_VARIABLE, SAMPLE_MAPPING
from devstack.stack import Stack
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.settings import DataHubSettings

from .expressions import RULES_PATH
from .promstack import PromStack, ScrapeTarget
from .scrape import Scrape, scrape

CONSUMER_JOB = "lambda-trigger-consumer"
API_JOB = "lambda-trigger-api"
MAPPING_RELOAD_SECONDS = 1.0
MAX_INFLIGHT = 1

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition the traffic waits for did not come true."""


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> T:
    """Call `probe` until it returns something other than None / False; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            extra = f": {detail()}" if detail is not None else ""
            raise WaitTimeout(f"{what}: not reached after {timeout:.0f} s{extra}")
        time.sleep(interval)


_REGEX_META = set("\\.+*?()|[]{}^$")


def grafana_regex_value(value: str) -> str:
    """One value of a multi-value Grafana variable as it lands in a `=~"..."` matcher: regex
    metacharacters escaped (Grafana's Prometheus data source does this), then written as a
    PromQL string literal body (backslashes doubled)."""
    escaped = "".join(f"\\{c}" if c in _REGEX_META else c for c in value)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set os.environ entries for the block (child processes inherit them), then restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class LiveStack:
    """The running stack, its services and the Prometheus scraping them."""

    stack: Stack
    prom: PromStack
    mapping_path: Path
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return self.env["LAMBDA_TRIGGER_API_URL"]

    @property
    def consumer_url(self) -> str:
        return self.env["LAMBDA_TRIGGER_CONSUMER_URL"]

    @property
    def token(self) -> str:
        return self.env["DATAHUB_GMS_TOKEN"]

    @property
    def kafka_bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    def scrape_api(self) -> Scrape:
        return scrape(self.api_url)

    def scrape_consumer(self) -> Scrape:
        return scrape(self.consumer_url)

    def api(self) -> httpx.Client:
        """An HTTP client for the api, authenticated as DataHub's admin (DATAHUB_GMS_TOKEN)."""
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30.0,
        )

    def datahub(self) -> DataHubClient:
        """A DataHub client like the CLI's (DATAHUB_GMS_URL, DATAHUB_GMS_TOKEN)."""
        return DataHubClient(
            DataHubSettings(gms_url=self.env["DATAHUB_GMS_URL"], gms_token=self.token)
        )

    def wait_for_fresh_scrapes(self, timeout: float = 30.0) -> None:
        """Until Prometheus holds a scrape of both services taken after this call."""
        since = time.time()

        def fresh() -> bool:
            samples = self.prom.query("timestamp(up)")
            jobs = {s["metric"].get("job") for s in samples if float(s["value"][1]) > since + 0.001}
            return {CONSUMER_JOB, API_JOB} <= jobs

        wait_for("a Prometheus scrape of both services", fresh, timeout=timeout)

    def logs(self) -> str:
        """The tail of the services' logs, for failure messages."""
        parts: list[str] = []
        for managed in self.stack.processes:
            text = managed.log_path.read_text("utf-8", errors="replace")
            parts.append(f"--- {managed.name} ({managed.log_path}):\n{text[-3000:]}")
        return "\n".join(parts)


@contextmanager
def live_stack(workdir: Path, *, prometheus_binary: str | None = None) -> Iterator[LiveStack]:
    """Start Kafka, the GMS double, moto, the api, the consumer and Prometheus; stop them all."""
    workdir.mkdir(parents=True, exist_ok=True)
    mapping_path = workdir / "mapping.yaml"
    shutil.copyfile(SAMPLE_MAPPING, mapping_path)
    environ = {
        MAPPING_FILE_VARIABLE: str(mapping_path),
        "LAMBDA_TRIGGER_MAPPING_RELOAD_SECONDS": str(MAPPING_RELOAD_SECONDS),
        "LAMBDA_TRIGGER_MAX_INFLIGHT": str(MAX_INFLIGHT),
        # The traffic counts every record the consumer discards; the Runs tab records would add
        # MCLs of their own to each run (tests/integration/test_history.py covers them).
        "LAMBDA_TRIGGER_NATIVE_HISTORY": "false",
        # Dependencies re-checked every second, so the final snapshot sees them back up.
        "LAMBDA_TRIGGER_DEPENDENCY_PROBE_SECONDS": "1",
    }
    with patched_environ(environ), Stack(workdir / "devstack", with_services=True) as stack:
        env = stack.env()
        targets = [
            ScrapeTarget(CONSUMER_JOB, env["LAMBDA_TRIGGER_CONSUMER_URL"].removeprefix("http://")),
            ScrapeTarget(API_JOB, env["LAMBDA_TRIGGER_API_URL"].removeprefix("http://")),
        ]
        with PromStack(targets, rule_files=[RULES_PATH], binary=prometheus_binary) as prom:
            prom.wait_until_up(timeout=30, min_scrapes=3)
            yield LiveStack(stack, prom, mapping_path, env)
