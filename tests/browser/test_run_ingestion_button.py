"""The button in a real browser against the real api and the whole local stack.

Debian's Chromium driven by playwright-core (frontend-patch/e2e/run.mjs): the page mounts the
component for a seeded dataset, the click goes through the api, the consumer invokes the
(moto) Lambda, and the page shows the run's final state. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.stack import Stack

from .browser_stack import (
    ARTIFACTS,
    POLY,
    REPO,
    SIP,
    UNMAPPED,
    browser_stack,
    run_page_script,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with browser_stack(tmp_path_factory.mktemp("browser-stack"), "e2e/build.mjs", 120) as stack:
        yield stack


def _click_through(stack: Stack, dataset: str, expect: str, name: str) -> dict[str, Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    code, result = run_page_script(
        "e2e/run.mjs",
        stack,
        {
            "DATASET_URN": dataset,
            "E2E_SCREENSHOT": str(screenshot),
            "E2E_DIALOG_SCREENSHOT": str(ARTIFACTS / f"{name}-dialog.png"),
            "E2E_EXPECT": expect,
        },
    )
    assert code == 0 and result["ok"], result
    assert screenshot.exists() and screenshot.stat().st_size > 1000
    return result


def test_click_confirm_lambda_invoked_page_shows_success(services: Stack) -> None:
    assert services.moto is not None and services.gms is not None
    services.moto.queue_result("earnings-lambda", payload={"rowsLoaded": 1234})
    before = len(services.moto.invocations("earnings-lambda"))
    result = _click_through(services, SIP, "succeeded", "run-ingestion-succeeded")
    invocations = services.moto.invocations("earnings-lambda")
    assert len(invocations) == before + 1
    run_id = invocations[-1].payload["runId"]
    assert invocations[-1].payload["reason"] == "e2e check"
    stored = services.gms.get_aspect(
        f"urn:li:dataHubExecutionRequest:{run_id}", "dataHubExecutionRequestResult"
    )
    assert stored is not None and stored["status"] == "SUCCESS"
    # What the browser saw never named the function.
    assert "earnings-lambda" not in json.dumps(result)
    docs_image = REPO / "docs" / "images" / "run-ingestion-succeeded.png"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        docs_image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "run-ingestion-succeeded.png", docs_image)


def test_function_error_shows_failure(services: Stack) -> None:
    assert services.moto is not None
    services.moto.queue_result(
        "polygon-lambda", function_error="source bucket is empty", error_type="ValueError"
    )
    result = _click_through(services, POLY, "failed", "run-ingestion-failed")
    assert result["phase"] == "failed"


def test_no_button_for_a_dataset_without_a_job(services: Stack) -> None:
    assert services.moto is not None
    before = len(services.moto.invocations())
    result = _click_through(services, UNMAPPED, "hidden", "run-ingestion-hidden")
    assert result["phase"] == "hidden"
    assert len(services.moto.invocations()) == before
