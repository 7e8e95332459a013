"""The project's own services on the local stack: the api and the consumer as child processes
of `python -m devstack up --with-services` (and `make run` / `make demo`).

Also sets up what they need on the fake AWS side: the sample mapping's Lambda functions.

`DEVSTACK_MAPPING_FILE` (default `mappings/example.yaml`) names the mapping file both services
read: tests point it at a copy they edit to exercise mapping reloads. Every other setting the
services read (e.g. `LAMBDA_TRIGGER_MAPPING_RELOAD_SECONDS`) is inherited from os.environ.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

from devstack.aws import MotoServer
from devstack.ports import free_port
from devstack.procs import ProcessSpec

REPO = Path(__file__).resolve().parent.parent
SAMPLE_MAPPING = REPO / "mappings" / "example.yaml"
SAMPLE_FUNCTIONS = ("earnings-lambda", "polygon-lambda")
MAPPING_FILE_VARIABLE = "DEVSTACK_MAPPING_FILE"


class ServiceHost(Protocol):
    """What the services need from the stack they run on (stack.Stack is one).

    A protocol rather than an import of stack.py, which starts these services: the package
    reads top-down (issue 23).
    """

    @property
    def moto(self) -> MotoServer | None: ...

    def env(self) -> dict[str, str]: ...


def mapping_file() -> Path:
    """The mapping the services read: $DEVSTACK_MAPPING_FILE, else the sample mapping."""
    configured = os.environ.get(MAPPING_FILE_VARIABLE, "").strip()
    return Path(configured).resolve() if configured else SAMPLE_MAPPING


def prepare_aws(moto: MotoServer) -> None:
    """Create the example mapping's functions (idempotent across restarts of the api/consumer)."""
    existing = {
        f["FunctionName"] for f in moto.lambda_client().list_functions().get("Functions", [])
    }
    for name in SAMPLE_FUNCTIONS:
        if name not in existing:
            moto.create_lambda(name)


def service_specs(stack: ServiceHost) -> list[ProcessSpec]:
    """The api then the consumer, each ready when its /readyz answers 2xx."""
    assert stack.moto is not None
    prepare_aws(stack.moto)
    env = stack.env()
    api_port, consumer_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    consumer_url = f"http://127.0.0.1:{consumer_port}"
    shared = {"DATAHUB_INGESTION_LAMBDA_MAPPING_FILE": str(mapping_file())}
    # The api holds no AWS credentials, in the local stack too: blank out what the stack
    # exports (the child's environment is os.environ + the stack's env + these).
    no_aws = {key: "" for key in env if key.startswith("AWS_")}
    api = ProcessSpec(
        name="api",
        argv=[sys.executable, "-m", "lambda_trigger_api"],
        env={
            **shared,
            **no_aws,
            "LAMBDA_TRIGGER_API_HOST": "127.0.0.1",
            "LAMBDA_TRIGGER_API_PORT": str(api_port),
        },
        ready_url=f"{api_url}/readyz",
        exports={"LAMBDA_TRIGGER_API_URL": api_url},
    )
    consumer = ProcessSpec(
        name="consumer",
        argv=[sys.executable, "-m", "lambda_trigger_consumer"],
        env={
            **shared,
            "LAMBDA_TRIGGER_CONSUMER_HTTP_HOST": "127.0.0.1",
            "LAMBDA_TRIGGER_CONSUMER_HTTP_PORT": str(consumer_port),
            "LAMBDA_TRIGGER_COMMIT_INTERVAL_SECONDS": "0.5",
        },
        ready_url=f"{consumer_url}/readyz",
        exports={"LAMBDA_TRIGGER_CONSUMER_URL": consumer_url},
    )
    return [api, consumer]
