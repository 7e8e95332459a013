"""Where a run shows in DataHub's own places (issue 11), end to end with the project's services.

On the local stack with the api and the consumer as processes: `datahub-lambda-trigger sources
sync` makes the mapped datasets ingestion sources (one with a cron schedule); a run from the
button's api and a run fired by DataHub's scheduler (the GMS double's) invoke the Lambda; then
the two queries DataHub's UI makes are asked of the GMS double's GraphQL: the dataset's Runs tab
(getDatasetRuns) and the source's run history (ingestionSource.executions). The answers are
drawn as tables by this test and photographed by Chromium (frontend-patch/e2e/shot.mjs) for
docs/history.md: the pictures show the data those DataHub pages receive, not DataHub's own UI, which is
not part of the local stack. With UPDATE_DOCS_SCREENSHOT=1 they go to docs/images/.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.stack import Stack
from lambda_trigger.sources import source_urn

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend-patch"
ARTIFACTS = REPO / "test-artifacts"
SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SYSTEM_ACTOR = "urn:li:corpuser:__datahub_system"

RUNS_TAB = """
query getDatasetRuns($urn: String!, $start: Int!, $count: Int!, $direction: RelationshipDirection!) {
  dataset(urn: $urn) { runs(start: $start, count: $count, direction: $direction) { total runs {
    name created { time actor }
    state(startTimeMillis: null, endTimeMillis: null, limit: 1) {
      status result { resultType nativeResultType } timestampMillis durationMillis }
    parentTemplate: relationships(input: {types: ["InstanceOf"], direction: OUTGOING, start: 0, count: 1}) {
      relationships { entity { urn } } }
  } } }
}
"""
SOURCE_HISTORY = """
query history($urn: String!) { ingestionSource(urn: $urn) { name type executions(start: 0, count: 10) {
  total executionRequests { id input { source { type } requestedAt actorUrn } result { status durationMs } } } } }
"""


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium")
    if not (FRONTEND / "node_modules").exists():
        pytest.fail("frontend-patch/node_modules missing: run `npm ci` in frontend-patch")
    # The services inherit os.environ: DataHub's scheduler writes as the system actor, which
    # must be allowed to start runs (docs/history.md).
    before = os.environ.get("LAMBDA_TRIGGER_ALLOWED_ACTORS")
    os.environ["LAMBDA_TRIGGER_ALLOWED_ACTORS"] = SYSTEM_ACTOR
    try:
        with Stack(tmp_path_factory.mktemp("native-places"), with_services=True) as stack:
            yield stack
    finally:
        if before is None:
            os.environ.pop("LAMBDA_TRIGGER_ALLOWED_ACTORS", None)
        else:
            os.environ["LAMBDA_TRIGGER_ALLOWED_ACTORS"] = before


def _graphql(env: dict[str, str], query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{env['DATAHUB_GMS_URL']}/api/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {env['DATAHUB_GMS_TOKEN']}"},
        timeout=10,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def _wait_status(stack: Stack, run_id: str) -> str:
    assert stack.gms is not None
    deadline = time.monotonic() + 60
    while True:
        result = stack.gms.get_aspect(
            f"urn:li:dataHubExecutionRequest:{run_id}", "dataHubExecutionRequestResult"
        )
        if result is not None and result["status"] != "RUNNING":
            return str(result["status"])
        assert time.monotonic() < deadline, f"run {run_id} did not end"
        time.sleep(0.2)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _page(title: str, note: str, head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"""<!doctype html><meta charset="utf-8"><style>
body {{ font-family: sans-serif; margin: 24px; color: #262626 }}
h1 {{ font-size: 18px; margin: 0 0 4px }} p {{ color: #8c8c8c; font-size: 12px; margin: 0 0 14px }}
table {{ border-collapse: collapse; width: 100% }} th, td {{ text-align: left; padding: 8px 12px;
border-bottom: 1px solid #f0f0f0; font-size: 13px }} th {{ background: #fafafa }}
td:nth-child(5) {{ font-weight: 600 }}</style>
<h1>{html.escape(title)}</h1><p>{html.escape(note)}</p>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>{cells}</table>"""


def _shoot(page: str, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    page_file = ARTIFACTS / f"{name}.html"
    page_file.write_text(page)
    shot = ARTIFACTS / f"{name}.png"
    done = subprocess.run(
        ["node", "e2e/shot.mjs", str(page_file), str(shot)],
        cwd=FRONTEND,
        env={**os.environ, "CHROMIUM_PATH": CHROMIUM},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert shot.exists() and shot.stat().st_size > 1000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(shot, REPO / "docs" / "images" / f"{name}.png")
    return shot


def test_button_and_scheduled_runs_in_the_runs_tab_and_the_source_history(
    services: Stack, tmp_path: Path
) -> None:
    assert services.gms is not None and services.moto is not None
    env = services.env()
    # `sources sync` from the command line, with a nightly schedule on the first dataset.
    mapping = yaml.safe_load((REPO / "mappings" / "example.yaml").read_text())
    mapping["rules"][0]["schedule"] = {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(yaml.safe_dump(mapping))
    synced = subprocess.run(
        [str(REPO / ".venv" / "bin" / "datahub-lambda-trigger"), "sources", "sync"],
        env={
            **os.environ,
            **env,
            "DATAHUB_INGESTION_LAMBDA_MAPPING_FILE": str(mapping_file),
            "DATAHUB_INGESTION_LAMBDA_MAPPING": "",
        },
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert synced.returncode == 0, synced.stderr.decode()
    executor = env.get("LAMBDA_TRIGGER_EXECUTOR_ID", "lambda-trigger")
    source = source_urn(executor, SIP)
    assert source in json.loads(synced.stdout.decode().strip().splitlines()[-1])["written"]

    # A button run (the api, as a signed-in user would through the page) ...
    services.moto.queue_result("earnings-lambda", payload={"rowsLoaded": 1200})
    started = httpx.post(
        f"{env['LAMBDA_TRIGGER_API_URL']}/api/ingestion/run",
        json={"datasetUrn": SIP, "reason": "late data"},
        headers={"Authorization": f"Bearer {env['DATAHUB_GMS_TOKEN']}"},
        timeout=10,
    )
    assert started.status_code == 202, started.text
    button_run = started.json()["runId"]
    assert _wait_status(services, button_run) == "SUCCESS"
    # ... and DataHub's scheduler firing the source at 02:30 Berlin time.
    services.moto.queue_result("earnings-lambda", function_error="no new rows upstream")
    fired = services.gms.scheduler.tick(datetime(2026, 1, 15, 1, 30, tzinfo=UTC))
    scheduled_run = fired[source]
    assert _wait_status(services, scheduled_run) == "FAILURE"

    deadline = time.monotonic() + 30
    while True:
        runs = _graphql(
            env, RUNS_TAB, {"urn": SIP, "start": 0, "count": 20, "direction": "OUTGOING"}
        )["dataset"]["runs"]["runs"]
        done = {r["name"]: r for r in runs if r["state"] and r["state"][0]["status"] == "COMPLETE"}
        if button_run in done and scheduled_run in done:
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)
    assert done[button_run]["state"][0]["result"]["resultType"] == "SUCCESS"
    assert done[scheduled_run]["state"][0]["result"]["resultType"] == "FAILURE"
    rows = []
    for run in runs:
        event = run["state"][0] if run["state"] else {}
        result = event.get("result") or {}
        template = run["parentTemplate"]["relationships"]
        rows.append(
            [
                _when(run["created"]["time"]),
                f"{(event.get('durationMillis') or 0) / 1000:.1f} s",
                run["name"],
                template[0]["entity"]["urn"] if template else "",
                result.get("nativeResultType") or event.get("status", ""),
                run["created"]["actor"],
            ]
        )
    _shoot(
        _page(
            "Dataset Runs tab: AwsDataCatalog.financial_data.us_stocks_sip_v2",
            "GraphQL getDatasetRuns answered by the GMS double after a button run and a "
            "scheduled run (drawn by the test, not DataHub's UI)",
            ["Time", "Duration", "Run ID", "Task", "Status", "Requested by"],
            rows,
        ),
        "runs-tab-query",
    )

    history = _graphql(env, SOURCE_HISTORY, {"urn": source})["ingestionSource"]
    assert history["name"] == "Earnings loader: AwsDataCatalog.financial_data.us_stocks_sip_v2"
    requests = history["executions"]["executionRequests"]
    # Every request names its dataset's ingestion source (source_urns.py, issue 20), so the
    # button's run is in the source's history too, next to the scheduled one.
    assert sorted(r["id"] for r in requests) == sorted([button_run, scheduled_run])
    _shoot(
        _page(
            f"Ingestion source: {history['name']}",
            "GraphQL ingestionSource.executions answered by the GMS double: the source's run "
            "history on DataHub's Ingestion page (drawn by the test, not DataHub's UI)",
            ["Requested", "Duration", "Execution request", "Source", "Status", "Requested by"],
            [
                [
                    _when(r["input"]["requestedAt"]),
                    f"{((r['result'] or {}).get('durationMs') or 0) / 1000:.1f} s",
                    r["id"],
                    r["input"]["source"]["type"],
                    (r["result"] or {}).get("status", ""),
                    r["input"]["actorUrn"] or "schedule",
                ]
                for r in requests
            ],
        ),
        "ingestion-source-history",
    )
