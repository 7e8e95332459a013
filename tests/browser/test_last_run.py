"""After a page reload the button tells the dataset's last run (issue 11), in a real browser.

Debian's Chromium driven by playwright-core (frontend-patch/e2e/reload.mjs) against the whole
local stack with the project's services: the page runs the dataset's ingestion through the api,
the consumer invokes the (moto) Lambda and writes the run to DataHub's run history (the GMS
double's Runs tab), the page is reloaded and shows "Last run succeeded ... by ..." from
`GET /api/ingestion/targets`. The screenshot goes to test-artifacts/ and, with
UPDATE_DOCS_SCREENSHOT=1, to docs/images/last-run-after-reload.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from devstack.stack import Stack

from .browser_stack import ARTIFACTS, CHROMIUM, FRONTEND, REPO, SIP, browser_stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with browser_stack(tmp_path_factory.mktemp("last-run-stack"), "e2e/build.mjs", 120) as stack:
        yield stack


def test_reload_after_a_run_shows_the_last_run(services: Stack) -> None:
    assert services.moto is not None and services.gms is not None
    services.moto.queue_result("earnings-lambda", payload={"rowsLoaded": 7})
    env = services.env()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "last-run-after-reload.png"
    screenshot.unlink(missing_ok=True)
    done = subprocess.run(
        ["node", "e2e/reload.mjs"],
        cwd=FRONTEND,
        env={
            **os.environ,
            "DATASET_URN": SIP,
            "API_URL": env["LAMBDA_TRIGGER_API_URL"],
            # No DataHub session in the test browser: the page server adds the admin's token.
            "API_BEARER_TOKEN": env["DATAHUB_GMS_TOKEN"],
            "E2E_SCREENSHOT": str(screenshot),
            "E2E_TIMEOUT_MS": "60000",
            "CHROMIUM_PATH": CHROMIUM,
        },
        capture_output=True,
        timeout=240,
        check=False,
    )
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    assert lines, f"no result from reload.mjs:\n{done.stdout.decode()}\n{done.stderr.decode()}"
    result = json.loads(lines[-1])
    assert done.returncode == 0 and result["ok"], result
    assert result["phaseBeforeReload"] == "succeeded"
    run_id = result["runId"]
    assert result["lastRun"]["runId"] == run_id and result["lastRun"]["state"] == "succeeded"
    assert result["lastRunText"].startswith("Last run succeeded just now by ")
    # The dataset's Runs tab, the URN as DataHub's urlEncodeUrn leaves it (nothing to escape here).
    assert result["lastRunHref"] == f"/dataset/{SIP}/Runs"
    # What the page showed is DataHub's own record of the run: the Runs tab's process instance.
    props = services.gms.get_aspect(
        f"urn:li:dataProcessInstance:{run_id}", "dataProcessInstanceProperties"
    )
    assert props is not None and props["name"] == run_id
    assert screenshot.exists() and screenshot.stat().st_size > 1000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(screenshot, REPO / "docs" / "images" / "last-run-after-reload.png")
