"""The parameter form (issue 22) in a real browser: Debian's Chromium fills the form the api's
schema generates (date, enum, number, boolean), runs, and the Lambda behind moto receives
exactly those values. The dialog's picture is docs/images/params-form.png."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devstack.services import MAPPING_FILE_VARIABLE, SAMPLE_MAPPING
from devstack.stack import Stack

from .browser_stack import ARTIFACTS, REPO, SIP, browser_stack, run_page_script

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SCHEMA = {
    "type": "object",
    "title": "Backfill",
    "properties": {
        "start": {"type": "string", "format": "date", "title": "First day"},
        "mode": {
            "type": "string",
            "title": "Mode",
            "enum": ["incremental", "full"],
            "default": "incremental",
        },
        "batch": {"type": "integer", "title": "Batch size", "minimum": 1, "maximum": 100},
        "dryRun": {
            "type": "boolean",
            "title": "Dry run",
            "default": False,
            "description": "Plan the load, write nothing",
        },
    },
    "required": ["start"],
}


def _mapping_with_parameters(workdir: Path) -> Path:
    mapping = yaml.safe_load(SAMPLE_MAPPING.read_text())
    mapping["targets"]["earnings"]["parameters"] = SCHEMA
    path = workdir / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("params-browser-stack")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MAPPING_FILE_VARIABLE, str(_mapping_with_parameters(workdir)))
        with browser_stack(workdir, "e2e/build.mjs", 120) as stack:
            yield stack


def test_the_form_is_filled_and_the_lambda_receives_exactly_those_values(
    services: Stack,
) -> None:
    assert services.moto is not None
    services.moto.queue_result("earnings-lambda", payload={"rowsLoaded": 7})
    before = len(services.moto.invocations("earnings-lambda"))
    ARTIFACTS.mkdir(exist_ok=True)
    dialog_shot = ARTIFACTS / "params-form.png"
    dialog_shot.unlink(missing_ok=True)
    code, result = run_page_script(
        "e2e/run.mjs",
        services,
        {
            "DATASET_URN": SIP,
            "E2E_SCREENSHOT": str(ARTIFACTS / "params-run.png"),
            "E2E_DIALOG_SCREENSHOT": str(dialog_shot),
            "E2E_REASON": "backfill January",
            "E2E_PARAMS": json.dumps(
                {"start": "2026-01-31", "mode": "full", "batch": "25", "dryRun": True}
            ),
        },
    )
    assert code == 0 and result["ok"], result
    assert result["parameterErrors"] == []
    # the form the browser drew came from the api: the schema's keywords, nothing else
    assert result["targets"]["body"]["parameters"]["properties"] == SCHEMA["properties"]
    invocations = services.moto.invocations("earnings-lambda")
    assert len(invocations) == before + 1
    payload = invocations[-1].payload
    assert payload["parameters"] == {
        "start": "2026-01-31",
        "mode": "full",
        "batch": 25,
        "dryRun": True,
    }
    assert payload["reason"] == "backfill January"
    assert payload["layer"] == "bronze"
    assert dialog_shot.exists() and dialog_shot.stat().st_size > 1000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        docs_image = REPO / "docs" / "images" / "params-form.png"
        docs_image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dialog_shot, docs_image)


def test_an_invalid_value_is_shown_inline_and_nothing_is_sent(services: Stack) -> None:
    assert services.moto is not None
    before = len(services.moto.invocations("earnings-lambda"))
    code, result = run_page_script(
        "e2e/run.mjs",
        services,
        {
            "DATASET_URN": SIP,
            "E2E_SCREENSHOT": str(ARTIFACTS / "params-invalid.png"),
            "E2E_PARAMS": json.dumps({"start": "2026-01-31", "batch": "500"}),
            "E2E_TIMEOUT_MS": "4000",
        },
    )
    assert code == 1 and not result["ok"]
    assert result["parameterErrors"] == ["Batch size must be <= 100"]
    assert result["runRequests"] == 0
    assert len(services.moto.invocations("earnings-lambda")) == before
