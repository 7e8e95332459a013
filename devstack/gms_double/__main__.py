"""`python -m devstack.gms_double --bootstrap HOST:PORT [--port N] [--state-file PATH]`:
run the GMS double in the foreground until Ctrl-C, printing its URL and admin token."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from pathlib import Path

from devstack.gms_double.server import GmsDouble


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.gms_double", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--admin-token", default=None)
    parser.add_argument(
        "--schema-registry-type",
        choices=["INTERNAL", "AWS_GLUE"],
        default="INTERNAL",
        help="AWS_GLUE: MCLs in Glue framing, schemas registered in the Glue registry at "
        "--glue-endpoint-url (moto's, locally)",
    )
    parser.add_argument("--glue-endpoint-url", default=None)
    parser.add_argument("--glue-region", default="us-east-1")
    parser.add_argument("--glue-registry-name", default="default-registry")
    parser.add_argument("--glue-compression", choices=["NONE", "ZLIB"], default="NONE")
    parser.add_argument(
        "--schema-registry-user-info",
        default=None,
        metavar="USER:PASSWORD",
        help="the registry endpoint answers only requests with this basic auth",
    )
    parser.add_argument(
        "--datahub-version",
        default=None,
        help="the DataHub release to behave as where releases differ (write validators, see "
        "write_auth.py), or `strict`/`relaxed`; default $GMS_DOUBLE_DATAHUB_VERSION or v1.7.0",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    double = GmsDouble(
        args.bootstrap,
        host=args.host,
        port=args.port,
        state_file=args.state_file,
        admin_token=args.admin_token,
        schema_registry_type=args.schema_registry_type,
        glue_endpoint_url=args.glue_endpoint_url,
        glue_region=args.glue_region,
        glue_registry_name=args.glue_registry_name,
        glue_compression=args.glue_compression,
        schema_registry_user_info=args.schema_registry_user_info,
        datahub_version=args.datahub_version,
    )
    with double:
        print(f"DATAHUB_GMS_URL={double.url}", flush=True)
        print(f"SCHEMA_REGISTRY_TYPE={double.schema_registry_type}", flush=True)
        if double.schema_registry_type == "AWS_GLUE":
            print(f"AWS_GLUE_SCHEMA_REGISTRY_REGION={args.glue_region}", flush=True)
        else:
            print(f"SCHEMA_REGISTRY_URL={double.schema_registry_url}", flush=True)
        print(f"DATAHUB_GMS_TOKEN={double.admin_token}", flush=True)
        print(
            f"GMS_DOUBLE_DATAHUB_VERSION={double.datahub_version} "
            f"(ExecuteIngestionAuthValidator: {double.execute_validator.value})",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
