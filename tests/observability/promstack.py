"""A real Prometheus on loopback, for tests: scrape given targets, run PromQL, check panels.

Uses Debian's `prometheus` package (`apt-get install -y prometheus`: /usr/bin/prometheus,
/usr/bin/promtool). Each PromStack has its own config, its own temporary TSDB and a free
127.0.0.1 port; nothing of the system's prometheus service is used.

Typical use (see docs/observability.md, "Checking dashboards against running services"):

    from observability.expressions import all_expressions
    from observability.promstack import PromStack, ScrapeTarget

    targets = [ScrapeTarget("lambda-trigger-consumer", "127.0.0.1:9102"),
               ScrapeTarget("lambda-trigger-api", "127.0.0.1:8000")]
    with PromStack(targets, rule_files=[RULES_PATH]) as prom:
        prom.wait_until_up(timeout=30, min_scrapes=3)
        results = prom.evaluate(all_expressions())
        assert [r.describe() for r in results if not r.ok] == []
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml

from devstack.lifecycle import StartStop

from .expressions import DASHBOARD_TEST_VALUES, NamedExpr

INSTALL_HINT = (
    "apt-get install prometheus (Debian: apt-get update && apt-get install -y prometheus)"
)


class PrometheusNotInstalled(RuntimeError):
    """prometheus / promtool is not on this machine."""


class PromStackError(RuntimeError):
    """Prometheus did not start, or did not reach the expected state in time."""


class PromQLError(RuntimeError):
    """Prometheus rejected a query (syntax or evaluation error)."""


def find_binary(name: str) -> str:
    """Absolute path of `prometheus` or `promtool`; raises with the install command if missing."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/local/bin") / name) if p.is_file()),
        None,
    )
    if found is None:
        raise PrometheusNotInstalled(f"`{name}` not found: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ScrapeTarget:
    """A /metrics endpoint to scrape: `job` becomes the series' job label."""

    job: str
    address: str  # host:port
    metrics_path: str = "/metrics"


@dataclass(frozen=True)
class EvalResult:
    named: NamedExpr
    query: str
    series: int
    error: str | None = None
    missing_label: bool = False

    @property
    def ok(self) -> bool:
        if self.error is not None or self.missing_label:
            return False
        return self.series > 0 or not self.named.expect_series

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.named.source}: error {self.error} (query {self.query})"
        if self.missing_label:
            return f"{self.named.source}: no series has label {self.named.label!r} (query {self.query})"
        return f"{self.named.source}: {self.series} series (query {self.query})"


def prometheus_config(
    targets: Sequence[ScrapeTarget],
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> dict[str, Any]:
    """A Prometheus config scraping `targets`, one scrape job per job label."""
    jobs: dict[str, list[ScrapeTarget]] = {}
    for target in targets:
        jobs.setdefault(target.job, []).append(target)
    scrape_configs: list[dict[str, Any]] = []
    for job, members in jobs.items():
        paths = {m.metrics_path for m in members}
        if len(paths) != 1:
            raise ValueError(f"targets of job {job} use different metrics paths: {sorted(paths)}")
        scrape_configs.append(
            {
                "job_name": job,
                "metrics_path": paths.pop(),
                "static_configs": [{"targets": [m.address for m in members]}],
            }
        )
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": scrape_configs,
    }


class PromStack(StartStop):
    """One Prometheus process with its own config and TSDB on a free 127.0.0.1 port."""

    def __init__(
        self,
        targets: Sequence[ScrapeTarget] = (),
        *,
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        startup_timeout: float = 30.0,
        binary: str | None = None,
    ) -> None:
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.startup_timeout = startup_timeout
        self.binary = binary or find_binary("prometheus")
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise PromStackError("PromStack is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        if self._workdir is None:
            raise PromStackError("PromStack is not started")
        return self._workdir / "prometheus.log"

    def start(self) -> Self:
        if self._proc is not None:
            raise PromStackError("PromStack already started")
        self._workdir = Path(tempfile.mkdtemp(prefix="promstack-"))
        config_path = self._workdir / "prometheus.yml"
        config = prometheus_config(
            self.targets, self.rule_files, self.scrape_interval, self.evaluation_interval
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        # A port picked here can be taken before prometheus binds it: retry a few times.
        for _attempt in range(3):
            self.port = free_port()
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config_path}",
                        f"--storage.tsdb.path={self._workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--storage.tsdb.retention.time=1d",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            try:
                self._wait_ready()
                return self
            except PromStackError:
                if self._proc.poll() is None:
                    self.stop()
                    raise
                if "address already in use" not in self.log_text():
                    self.stop()
                    raise
                self._proc = None
        self.stop()
        raise PromStackError("could not bind a free port for prometheus")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PromStackError(
                    f"prometheus exited with {self._proc.returncode}:\n{self.log_text()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise PromStackError(
            f"prometheus not ready after {self.startup_timeout}s:\n{self.log_text()}"
        )

    def log_text(self) -> str:
        if self._workdir is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # -- HTTP api ----------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as err:
            try:
                body = json.load(err)
            except ValueError:
                raise PromQLError(f"HTTP {err.code} from {path}") from err
            raise PromQLError(f"{body.get('errorType')}: {body.get('error')}") from err
        if body.get("status") != "success":
            raise PromQLError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (a scalar becomes one unlabelled sample)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        data = self._get("/api/v1/targets", {"state": "active"})
        targets: list[dict[str, Any]] = data["activeTargets"]
        return targets

    def rules(self) -> list[dict[str, Any]]:
        data = self._get("/api/v1/rules")
        groups: list[dict[str, Any]] = data["groups"]
        return groups

    def wait_until_up(self, timeout: float = 30.0, min_scrapes: int = 3) -> None:
        """Until every target is up and was scraped at least `min_scrapes` times (for rate())."""
        deadline = time.monotonic() + timeout
        status = "no targets reported yet"
        while time.monotonic() < deadline:
            targets = self.active_targets()
            status = ", ".join(
                f"{t['labels'].get('job')}/{t['labels'].get('instance')}={t['health']}"
                f"{' (' + t['lastError'] + ')' if t.get('lastError') else ''}"
                for t in targets
            )
            if len(targets) >= len(self.targets) and all(t["health"] == "up" for t in targets):
                counts = self.query("count_over_time(up[5m])")
                if len(counts) >= len(self.targets) and all(
                    float(sample["value"][1]) >= min_scrapes for sample in counts
                ):
                    return
            time.sleep(0.25)
        raise PromStackError(f"targets not up after {timeout}s: {status}\n{self.log_text()}")

    # -- checking expressions ----------------------------------------------------------------
    def evaluate(
        self,
        exprs: Iterable[NamedExpr],
        variables: Mapping[str, str] = DASHBOARD_TEST_VALUES,
        at: float | None = None,
    ) -> list[EvalResult]:
        """Run every expression (Grafana variables substituted); one result per expression."""
        results: list[EvalResult] = []
        for named in exprs:
            query = named.concrete(variables)
            try:
                samples = self.query(query, at)
            except PromQLError as err:
                results.append(EvalResult(named, query, 0, error=str(err)))
                continue
            missing_label = named.label is not None and not any(
                named.label in sample["metric"] for sample in samples
            )
            results.append(EvalResult(named, query, len(samples), missing_label=missing_label))
        return results


def failed(results: Iterable[EvalResult]) -> list[EvalResult]:
    """The results that errored, or returned no series although they must."""
    return [r for r in results if not r.ok]
