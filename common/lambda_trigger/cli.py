"""`datahub-lambda-trigger`: trigger a run without the api, by writing the request aspect.

    datahub-lambda-trigger request DATASET_URN [--job JOB_URN] [--reason TEXT]
                                   [--param NAME=VALUE ...] [--mapping FILE] [--wait]
    datahub-lambda-trigger status RUN_ID
    datahub-lambda-trigger mapping check FILE... | explain DATASET_URN  (see mapping_cli)

Reads DATAHUB_GMS_URL and DATAHUB_GMS_TOKEN like the services. The same request can be
written from anywhere with the SDK (see docs/triggering.md): this CLI is that code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from lambda_trigger import iam_policy, mapping_cli, sources
from lambda_trigger.cli_parameters import parameter_args
from lambda_trigger.contract import RunRequest, SourceType, now_ms, run_state
from lambda_trigger.datahub import (
    DataHubClient,
    DataHubUnavailable,
    PreconditionFailed,
    WriteRejected,
)
from lambda_trigger.mapping import DEFAULT_LABEL, MappingError
from lambda_trigger.parameters import ParameterError
from lambda_trigger.runid import new_run_id
from lambda_trigger.settings import DataHubSettings
from lambda_trigger.urns import InvalidUrnError, parse_dataset_urn, validate_data_job_urn

TERMINAL = {"succeeded", "failed"}


def request_run(
    client: DataHubClient,
    dataset_urn: str,
    job_urn: str | None = None,
    reason: str | None = None,
    actor_urn: str | None = None,
    source_type: str = SourceType.CLI.value,
    extra_args: dict[str, str] | None = None,
) -> RunRequest:
    """Write one run request; returns it (its `run_id` is what `status` takes). It names the
    dataset's ingestion source, created on first use (sources.FirstUseSources), which GMS's
    ExecuteIngestionAuthValidator requires before DataHub v1.3.0.
    `extra_args`: more request args, e.g. `parameters` (cli_parameters.py)."""
    dataset = parse_dataset_urn(dataset_urn).urn
    source = sources.FirstUseSources().ensure(client, dataset, "first-use", DEFAULT_LABEL)
    request = RunRequest(
        run_id=new_run_id(),
        dataset_urn=dataset,
        executor_id=client.settings.executor_id,
        source_type=source_type,
        requested_at_ms=now_ms(),
        job_urn=validate_data_job_urn(job_urn) if job_urn else None,
        reason=reason,
        actor_urn=actor_urn,
        ingestion_source=source,
        extra_args=dict(extra_args or {}),
    )
    client.write_request(request)
    return request


def run_status(client: DataHubClient, run_id: str) -> dict[str, Any] | None:
    request = client.read_request(run_id)
    if request is None:
        return None
    result = client.read_result(run_id)
    return {
        "runId": run_id,
        "datasetUrn": request.args.get("datasetUrn"),
        "state": run_state(result.status if result else None).value,
        "datahubStatus": result.status if result else None,
        "durationMs": result.durationMs if result else None,
        "report": result.report if result else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="datahub-lambda-trigger", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("request", help="request a run of a dataset's ingestion job")
    req.add_argument("dataset_urn")
    req.add_argument("--job", dest="job_urn")
    req.add_argument("--reason")
    req.add_argument(
        "--actor",
        help="corpuser URN recorded as the requester; the consumer believes it only when the "
        "request is written with the api's service token, else the token's user is the requester",
    )
    req.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run parameter, typed by the target's schema in the mapping (repeat for more)",
    )
    req.add_argument(
        "--mapping",
        metavar="FILE",
        help="the mapping that types --param values (default: the services' variables)",
    )
    req.add_argument(
        "--wait", action="store_true", help="poll until the run ends; exit 1 if it failed"
    )
    req.add_argument("--timeout", type=float, default=900.0)
    st = sub.add_parser("status", help="print a run's state as JSON")
    st.add_argument("run_id")
    mapping_cli.add_parser(sub)
    sources.add_parser(sub)  # `sources sync` (sources.py)
    iam_policy.add_arguments(
        sub.add_parser("iam-policy", help="print the consumer's least IAM policy")
    )
    args = parser.parse_args(argv)
    if args.command == "mapping":  # offline: no DataHub client
        return mapping_cli.run(args)
    if args.command == "iam-policy":
        return iam_policy.run(args)
    if args.command == "sources":
        return sources.run(args)

    client = DataHubClient(DataHubSettings())
    try:
        if args.command == "request":
            request = request_run(
                client,
                args.dataset_urn,
                args.job_urn,
                args.reason,
                args.actor,
                extra_args=parameter_args(client, args.dataset_urn, args.param, args.mapping),
            )
            print(json.dumps({"runId": request.run_id, "status": "requested", "urn": request.urn}))
            if not args.wait:
                return 0
            deadline = time.monotonic() + args.timeout
            last = None
            while time.monotonic() < deadline:
                state = run_status(client, request.run_id)
                if state and state["state"] != last:
                    last = state["state"]
                    print(json.dumps(state), flush=True)
                if last in TERMINAL:
                    return 0 if last == "succeeded" else 1
                time.sleep(1.0)
            print(f"timed out after {args.timeout:.0f} s", file=sys.stderr)
            return 3
        state = run_status(client, args.run_id)
        if state is None:
            print(f"no run {args.run_id}", file=sys.stderr)
            return 1
        print(json.dumps(state))
        return 0
    except (InvalidUrnError, ParameterError, MappingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DataHubUnavailable, WriteRejected, PreconditionFailed) as exc:
        print(f"error: DataHub: {exc}", file=sys.stderr)
        return 4
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
