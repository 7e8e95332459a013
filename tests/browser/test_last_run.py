"""After a page reload the button tells the dataset's last run (issue 11), in a real browser.

Debian's Chromium driven by playwright-core (frontend-patch/e2e/reload.mjs) against the whole
local stack with the project's services: the page runs the dataset's ingestion through the api,
the consumer invokes the (moto) Lambda and writes the run to DataHub's run history (the GMS
double's Runs tab), the page is reloaded and shows "Last run succeeded ... by ..." from
`GET /api/ingestion/targets`. The screenshot goes to test-artifacts/ and, with
UPDATE_DOCS_SCREENSHOT=1, to docs/images/last-run-after-reload.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from devstack.stack import Stack

from .browser_stack import ARTIFACTS, REPO, SIP, browser_stack, run_page_script

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with browser_stack(tmp_path_factory.mktemp("last-run-stack"), "e2e/build.mjs", 120) as stack:
        yield stack


def test_reload_after_a_run_shows_the_last_run(services: Stack) -> None:
    assert services.moto is not None and services.gms is not None
    services.moto.queue_result("earnings-lambda", payload={"rowsLoaded": 7})
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "last-run-after-reload.png"
    screenshot.unlink(missing_ok=True)
    code, result = run_page_script(
        "e2e/reload.mjs",
        services,
        {"DATASET_URN": SIP, "E2E_SCREENSHOT": str(screenshot)},
        timeout=240,
    )
    assert code == 0 and result["ok"], result
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
