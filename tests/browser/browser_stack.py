"""What every browser test needs: Debian's Chromium, the frontend's node_modules, a bundle built
from the sources under test, and the local stack with the api and the consumer running."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import Stack

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend-patch"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLY = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
UNMAPPED = "urn:li:dataset:(urn:li:dataPlatform:hive,SampleHiveDataset,PROD)"


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: apt-get install chromium (the browser tests never download one)"
        )
    if not (FRONTEND / "node_modules").exists():
        pytest.fail(
            "frontend-patch/node_modules missing: run `npm ci` in frontend-patch (make test does)"
        )


@contextmanager
def browser_stack(workdir: Path, build_script: str, timeout: float = 120) -> Iterator[Stack]:
    """Build `frontend-patch/<build_script>`, then run the stack with its services."""
    require_browser()
    subprocess.run(
        ["node", build_script], cwd=FRONTEND, check=True, capture_output=True, timeout=timeout
    )
    with Stack(workdir, with_services=True) as stack:
        yield stack


def run_page_script(
    script: str, stack: Stack, extra_env: dict[str, str], timeout: float = 180
) -> tuple[int, dict[str, Any]]:
    """Run a playwright-core driver (`frontend-patch/<script>`) against the stack's api and
    return its exit code and the JSON result it prints last. The test browser has no DataHub session: the page
    server adds the admin's token, as datahub-frontend's session would for a signed-in user."""
    env = stack.env()
    done = subprocess.run(
        ["node", script],
        cwd=FRONTEND,
        env={
            **os.environ,
            "API_URL": env["LAMBDA_TRIGGER_API_URL"],
            "API_BEARER_TOKEN": env["DATAHUB_GMS_TOKEN"],
            "E2E_TIMEOUT_MS": "60000",
            "CHROMIUM_PATH": CHROMIUM,
            **extra_env,
        },
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    assert lines, (
        f"no result from {script} (exit {done.returncode}):\n"
        f"{done.stdout.decode()}\n{done.stderr.decode()}"
    )
    result: dict[str, Any] = json.loads(lines[-1])
    return done.returncode, result
