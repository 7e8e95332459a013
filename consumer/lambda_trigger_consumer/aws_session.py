"""The consumer's boto3 sessions, and the share of botocore's data they keep in memory.

botocore reads its data files once per session and holds them for the process's life:
`endpoints.json` (every endpoint of every AWS service in every partition: 6.7 MiB of Python
objects, botocore 1.44) and a model per service used (Lambda's: 1.9 MiB, most of it
documentation). Each `boto3.session.Session()` reads them all again. The consumer is a small
process (issue 25: at most 120 MiB while draining), so every session it makes shares one
loader, and that loader parses the files leaner:

- plain dicts, not botocore's OrderedDicts (larger; dicts keep their order since Python 3.7);
- no documentation strings (botocore uses them for docstrings and nothing else);
- of endpoints.json, only the services the consumer calls (ENDPOINT_SERVICES) and the global
  ones (one endpoint per partition: IAM, S3's global endpoint, ...). A client of any other
  service still works: botocore then resolves it from its partition's defaults, as it does for
  every service endpoints.json does not list, and today's clients take their URL from the
  service's own endpoint rules.

Lambda, Step Functions and SQS clients hold 5.6 MiB instead of 13.3 MiB
(tests/unit/lambda_trigger_consumer/test_aws_session.py checks that the clients resolve the
same endpoints and signing regions as stock botocore's, and what the loader keeps).

Each client still gets a session of its own (credentials, region and AWS_* settings are
resolved per session, as before): only the read-only data is shared.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from typing import Any

import boto3
import botocore.loaders
import botocore.session

# endpoints.json's keys of the services this process calls: Lambda, Step Functions ("states"),
# the completion queue (SQS), the Glue schema registry, and STS (credentials from a web
# identity or an assumed role, made by the session's credential providers).
ENDPOINT_SERVICES = frozenset({"lambda", "states", "sqs", "glue", "sts"})


def _lean_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """One JSON object as botocore's data needs it (json's object_pairs_hook: called for
    every object, innermost first, so nothing dropped here is ever kept)."""
    obj = {k: v for k, v in pairs if not (k == "documentation" and isinstance(v, str))}
    services = obj.get("services")
    if "partition" in obj and isinstance(services, dict):  # a partition of endpoints.json
        obj["services"] = {
            name: service
            for name, service in services.items()
            if name in ENDPOINT_SERVICES or _global(service)
        }
    return obj


def _global(service: Any) -> bool:
    """A service with one endpoint for its whole partition (IAM, S3's us-east-1, Route 53:
    22 of 305 in the commercial partition): a client of it cannot be made without its entry."""
    return isinstance(service, dict) and (
        "partitionEndpoint" in service or service.get("isRegionalized") is False
    )


class LeanJSONFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's JSON file loader (the same files, `.json` then `.json.gz`), parsing leaner."""

    def load_file(self, file_path: str) -> Any:
        if os.path.isfile(file_path + ".json"):
            with open(file_path + ".json", "rb") as fp:
                payload = fp.read()
        elif os.path.isfile(file_path + ".json.gz"):
            with gzip.open(file_path + ".json.gz", "rb") as fp:
                payload = fp.read()
        else:
            return None
        return json.loads(payload.decode("utf-8"), object_pairs_hook=_lean_object)


_lock = threading.Lock()
_loaders: list[botocore.loaders.Loader] = []  # the one loader, once made


def shared_loader() -> botocore.loaders.Loader:
    """The process's one data loader (its cache holds each file once). AWS_DATA_PATH is
    honoured as botocore does: read when the loader is made."""
    with _lock:
        if not _loaders:
            search_path = botocore.session.get_session().get_config_variable("data_path")
            loader = botocore.loaders.create_loader(search_path)
            loader.file_loader = LeanJSONFileLoader()
            _loaders.append(loader)
        return _loaders[0]


def new_session() -> boto3.session.Session:
    """A boto3 session like `boto3.session.Session()`, on the shared loader."""
    loader = shared_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", loader)
    session = boto3.session.Session(botocore_session=core)
    with _lock:
        # boto3 adds its own data folder to the loader's search path for every session it
        # makes: once is enough for a shared loader.
        loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session
