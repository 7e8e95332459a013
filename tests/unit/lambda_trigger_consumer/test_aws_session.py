"""aws_session.py: the consumer's sessions share one lean copy of botocore's data, and their
clients resolve exactly what stock botocore's do."""

from __future__ import annotations

import tracemalloc
from typing import Any

import boto3
import botocore.loaders
import pytest

from lambda_trigger_consumer import aws_session
from lambda_trigger_consumer.aws_session import (
    ENDPOINT_SERVICES,
    LeanJSONFileLoader,
    new_session,
    shared_loader,
)

# Partitions with their own rules: commercial, China, GovCloud, and a region with an opt-in.
REGIONS = ("us-east-1", "eu-west-1", "ap-east-1", "cn-north-1", "us-gov-west-1")
# What the consumer calls, and services it does not (resolved from partition defaults).
SERVICES = (
    *("lambda", "stepfunctions", "sqs", "glue", "sts"),
    *("dynamodb", "s3", "kafka", "iam", "events", "logs", "secretsmanager", "route53"),
)


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DATA_PATH", "AWS_USE_FIPS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def _resolved(client: Any) -> tuple[Any, ...]:
    signer = client._request_signer
    return (
        client.meta.endpoint_url,
        client.meta.region_name,
        signer.signing_name,
        signer.region_name,
        signer.signature_version,
        client.meta.partition,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_clients_resolve_what_stock_botocore_resolves(service: str) -> None:
    stock, lean = boto3.session.Session(), new_session()
    for region in REGIONS:
        expected = _resolved(stock.client(service, region_name=region))  # type: ignore[call-overload]
        assert _resolved(lean.client(service, region_name=region)) == expected  # type: ignore[call-overload]


def test_a_request_is_built_and_signed_as_stock_botocore_builds_it() -> None:
    """The whole request a client sends (URL, headers, body), documentation dropped from the
    model or not: the Lambda Invoke and Step Functions call the consumer makes."""

    def sent(session: boto3.session.Session, service: str, call: str, **kwargs: Any) -> Any:
        client = session.client(service, region_name="eu-west-1")  # type: ignore[call-overload]
        captured: list[Any] = []

        def capture(request: Any, **_: Any) -> Any:
            captured.append(request)
            raise _Sent

        client.meta.events.register("before-send", capture)
        with pytest.raises(_Sent):
            getattr(client, call)(**kwargs)
        request = captured[0]
        headers = {
            k: v
            for k, v in request.headers.items()
            if k not in ("Authorization", "X-Amz-Date", "amz-sdk-invocation-id")
        }
        return request.url, request.method, headers, request.body

    for service, call, kwargs in (
        ("lambda", "invoke", {"FunctionName": "f", "Payload": b"{}", "Qualifier": "live"}),
        ("stepfunctions", "start_execution", {"stateMachineArn": "arn:x", "input": "{}"}),
        ("sqs", "receive_message", {"QueueUrl": "https://q", "MaxNumberOfMessages": 10}),
    ):
        assert sent(new_session(), service, call, **kwargs) == sent(
            boto3.session.Session(), service, call, **kwargs
        )


class _Sent(Exception):
    pass


def test_every_session_shares_one_loader_and_each_file_is_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aws_session, "_loaders", [])
    reads: list[str] = []
    original = LeanJSONFileLoader.load_file

    def counted(self: LeanJSONFileLoader, file_path: str) -> Any:
        reads.append(file_path)
        return original(self, file_path)

    monkeypatch.setattr(LeanJSONFileLoader, "load_file", counted)
    for _ in range(3):
        new_session().client("lambda", region_name="us-east-1")
        new_session().client("sqs", region_name="eu-west-1")
    assert sum(path.endswith("/endpoints") for path in reads) == 1
    assert sum(path.endswith("lambda/2015-03-31/service-2") for path in reads) == 1
    # boto3 adds its data folder to the loader for every session: the shared one keeps one.
    paths = shared_loader().search_paths
    assert len(paths) == len(set(paths))


def test_the_loader_keeps_only_what_the_consumer_uses() -> None:
    loader = botocore.loaders.create_loader()
    loader.file_loader = LeanJSONFileLoader()
    endpoints = loader.load_data("endpoints")
    for partition in endpoints["partitions"]:
        kept = set(partition["services"])
        assert all(
            s in ENDPOINT_SERVICES or aws_session._global(partition["services"][s]) for s in kept
        )
        assert len(kept) < 40
    assert {"lambda", "states", "sqs"} <= set(endpoints["partitions"][0]["services"])
    model = loader.load_service_model("lambda", "service-2")

    def documented(node: Any) -> bool:
        if isinstance(node, dict):
            return any(
                (k == "documentation" and isinstance(v, str)) or documented(v)
                for k, v in node.items()
            )
        return isinstance(node, list) and any(documented(v) for v in node)

    assert not documented(model)
    assert "Invoke" in model["operations"] and type(model["shapes"]) is dict


def test_the_clients_hold_less_than_half_of_what_stock_botocore_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda, Step Functions and SQS clients: 5.6 MiB instead of 13.3 MiB (botocore 1.44)."""

    def held(make: Any) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            session = make()
            clients = [
                session.client(s, region_name="us-east-1")
                for s in ("lambda", "stepfunctions", "sqs")
            ]
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del clients
        return after - before

    monkeypatch.setattr(aws_session, "_loaders", [])  # read the files again
    lean = held(new_session)
    stock = held(boto3.session.Session)
    assert lean < stock / 2, (lean, stock)
