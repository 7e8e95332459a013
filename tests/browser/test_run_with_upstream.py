"""Run with upstream (issue 21, item 5) in a real browser against the real api and local stack.

DataHub's lineage is seeded through the GMS double (`upstreamLineage` on the earnings dataset:
the polygon dataset, which has a job, and the Hive sample, which has none). Debian's Chromium
checks "Run with upstream" in the dialog, the plan the api answers is shown (two waves, the Hive
dataset skipped as unmapped), Run starts one parent run, and the "Upstream runs" dialog shows
each child by wave until both Lambdas (moto) ran, the upstream one first.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import (
    DatasetLineageTypeClass,
    UpstreamClass,
    UpstreamLineageClass,
)

from devstack.stack import Stack

from .browser_stack import ARTIFACTS, POLY, REPO, SIP, UNMAPPED, browser_stack, run_page_script

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with browser_stack(tmp_path_factory.mktemp("upstream-browser-stack"), "e2e/build.mjs") as stack:
        env = stack.env()
        # DataHub's lineage as an ingestion writes it: the downstream's upstreamLineage aspect.
        emitter = DatahubRestEmitter(env["DATAHUB_GMS_URL"], token=env.get("DATAHUB_GMS_TOKEN"))
        lineage = UpstreamLineageClass(
            upstreams=[
                UpstreamClass(dataset=POLY, type=DatasetLineageTypeClass.TRANSFORMED),
                UpstreamClass(dataset=UNMAPPED, type=DatasetLineageTypeClass.TRANSFORMED),
            ]
        )
        emitter.emit_mcp(MetadataChangeProposalWrapper(entityUrn=SIP, aspect=lineage))
        yield stack


def test_plan_shown_then_parent_run_with_children_by_wave(services: Stack) -> None:
    assert services.moto is not None
    services.moto.queue_result("polygon-lambda", payload={"rowsLoaded": 10})
    services.moto.queue_result("earnings-lambda", payload={"rowsLoaded": 20})
    before_poly = len(services.moto.invocations("polygon-lambda"))
    before_earn = len(services.moto.invocations("earnings-lambda"))
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "run-with-upstream.png"
    screenshot.unlink(missing_ok=True)

    code, result = run_page_script(
        "e2e/run.mjs",
        services,
        {
            "DATASET_URN": SIP,
            "E2E_UPSTREAM": "1",
            "E2E_EXPECT": "succeeded",
            "E2E_SCREENSHOT": str(screenshot),
            "E2E_DIALOG_SCREENSHOT": str(ARTIFACTS / "run-with-upstream-plan.png"),
            "E2E_PROGRESS_SCREENSHOT": str(ARTIFACTS / "run-with-upstream-progress.png"),
        },
    )
    assert code == 0 and result["ok"], result

    # The plan the api answered, and what the dialog showed of it before Run was clicked.
    answer = result["planAnswer"]
    assert answer["status"] == 200, answer
    waves = [[row["datasetUrn"] for row in wave] for wave in answer["body"]["waves"]]
    assert waves == [[POLY], [SIP]]
    assert {"datasetUrn": UNMAPPED, "reason": "unmapped"} in [
        {"datasetUrn": row["datasetUrn"], "reason": row["reason"]}
        for row in answer["body"]["skipped"]
    ]
    shown = result["plan"]
    assert shown["summary"].startswith("2 runs in 2 waves"), shown
    assert shown["waves"][1].startswith("Wave 2 (this dataset):"), shown
    assert any("no ingestion job is mapped for it" in row for row in shown["skipped"]), shown
    assert shown["runLabel"] == "Run all 2"

    # One POST /run, as a parent run of the plan's depth.
    assert result["runRequests"] == 1
    body = result["runBodies"][0]
    assert body["datasetUrn"] == SIP and body["withUpstream"] is True
    assert body.get("maxDepth") == answer["body"].get("maxDepth")

    # Each child by wave, all ended, as the progress dialog showed them.
    children = result["children"]
    assert [wave["wave"] for wave in children] == ["Wave 1", "Wave 2"], children
    assert [[c["datasetUrn"] for c in wave["children"]] for wave in children] == [[POLY], [SIP]]
    # The api sends DataHub's statuses; the page shows them as run states.
    assert all(c["status"] == "SUCCESS" for wave in children for c in wave["children"]), children
    assert all(c["state"] == "succeeded" for wave in children for c in wave["children"]), children

    # Both Lambdas ran once, the upstream one first.
    poly = services.moto.invocations("polygon-lambda")[before_poly:]
    earn = services.moto.invocations("earnings-lambda")[before_earn:]
    assert len(poly) == 1 and len(earn) == 1
    all_calls = services.moto.invocations()
    assert all_calls.index(poly[0]) < all_calls.index(earn[0])
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        # frontend-patch/README.md shows the dialog with the plan.
        shutil.copyfile(
            ARTIFACTS / "run-with-upstream-plan.png",
            REPO / "docs" / "images" / "run-with-upstream-plan.png",
        )


def test_cancel_on_the_parent_stops_the_later_waves(services: Stack) -> None:
    assert services.moto is not None
    # Wave 1's Lambda takes a while: the parent is still running when Cancel run is clicked.
    services.moto.queue_result("polygon-lambda", payload={"rowsLoaded": 1}, delay_seconds=8)
    before_poly = len(services.moto.invocations("polygon-lambda"))
    before_earn = len(services.moto.invocations("earnings-lambda"))

    code, result = run_page_script(
        "e2e/run.mjs",
        services,
        {
            "DATASET_URN": SIP,
            "E2E_UPSTREAM": "1",
            "E2E_EXPECT": "cancelled",
            "E2E_SCREENSHOT": str(ARTIFACTS / "run-with-upstream-cancelled.png"),
        },
    )
    assert code == 0 and result["ok"], result
    assert result["cancelRequests"] == 1
    children = result["children"]
    assert [[c["datasetUrn"] for c in wave["children"]] for wave in children] == [[POLY], [SIP]]
    # The dataset's own run (wave 2) never started: cancelled with the parent.
    assert children[1]["children"][0]["state"] == "cancelled", children
    services.moto.wait_for_invocations("polygon-lambda", count=before_poly + 1, timeout=30)
    time.sleep(12)  # wave 1's Lambda ends meanwhile; wave 2 would have been invoked by now
    assert len(services.moto.invocations("earnings-lambda")) == before_earn
