"""`python -m devstack demo` (`make demo`): the whole path once, on a fresh machine.

Starts the stack with the api and the consumer, asks the api to run one sample dataset (as
the DataHub admin user of the GMS double), prints each status the run goes through and
what the fake Lambda received, stops everything. Exit code 0 only if the run succeeded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from devstack.stack import Stack

DATASET = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def _say(message: str) -> None:
    print(message, flush=True)


def run_demo(state_dir: Path, timeout: float = 60.0) -> int:
    started = time.monotonic()
    with Stack(state_dir, with_services=True) as stack:
        env = stack.env()
        _say(f"stack up in {time.monotonic() - started:.1f} s")
        for key in (
            "KAFKA_BOOTSTRAP_SERVERS",
            "DATAHUB_GMS_URL",
            "AWS_ENDPOINT_URL",
            "LAMBDA_TRIGGER_API_URL",
        ):
            _say(f"  {key}={env[key]}")
        api = env["LAMBDA_TRIGGER_API_URL"]
        headers = {"Authorization": f"Bearer {env['DATAHUB_GMS_TOKEN']}"}
        assert stack.moto is not None
        stack.moto.queue_result(
            "earnings-lambda", payload={"rowsLoaded": 1234, "table": "us_stocks_sip_v2"}
        )
        with httpx.Client(timeout=10) as client:
            targets = client.get(
                f"{api}/api/ingestion/targets", params={"datasetUrn": DATASET}, headers=headers
            )
            _say(f"GET  /api/ingestion/targets -> {targets.status_code} {targets.text}")
            response = client.post(
                f"{api}/api/ingestion/run",
                json={"datasetUrn": DATASET, "reason": "make demo"},
                headers=headers,
            )
            _say(f"POST /api/ingestion/run -> {response.status_code} {response.text}")
            if response.status_code != 202:
                return 1
            run_id = response.json()["runId"]
            last = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                status = client.get(f"{api}/api/ingestion/runs/{run_id}", headers=headers).json()
                if status["state"] != last:
                    last = status["state"]
                    _say(f"  run {run_id}: {last:<10} {status['message']}")
                if last in ("succeeded", "failed"):
                    break
                time.sleep(0.2)
        for invocation in stack.moto.invocations():
            _say(
                f"Lambda {invocation.function_name} ({invocation.invocation_type}) received: "
                f"{json.dumps(invocation.payload)}"
            )
        _say(f"demo finished in {time.monotonic() - started:.1f} s: {last}")
        return 0 if last == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(run_demo(Path(".devstack")))
