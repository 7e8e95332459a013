"""Nothing on Kafka is trusted for what it says (issue 19), against the real broker, GMS double
and moto server: forged and malformed run ledger records, hostile MCL records, a KILL by someone
who may not cancel, a forged completion record, and a consumer next to a GMS without
authentication."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import RoleMembershipClass

from devstack.gms_double.seed import ADMIN_USER
from lambda_trigger.contract import INPUT_ASPECT, RunRequest, SourceType, now_ms
from lambda_trigger.datahub import DataHubClient
from lambda_trigger.runid import new_run_id
from lambda_trigger_consumer.ledger import partition_for
from lambda_trigger_consumer.ledger_auth import LedgerKeyError, LedgerSigner, parse_keys

from .conftest import SIP, Env, RunningConsumer, emit

pytestmark = pytest.mark.integration

REJECTED = "lambda_trigger_consumer_ledger_records_rejected_total"
PARTITIONS = 3  # ConsumerSettings' default for the topics the consumer creates


def _producer(env: Env) -> Producer:
    return Producer({"bootstrap.servers": env.stack.kafka_bootstrap})


def _produce(
    env: Env,
    topic: str,
    key: bytes,
    value: bytes | None,
    partition: int,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> int:
    """Produce one record as anyone with write access to the topic would; returns its offset."""
    producer = _producer(env)
    offsets: list[int] = []
    producer.produce(
        topic,
        key=key,
        value=value,
        partition=partition,
        headers=headers or [],
        on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()),
    )
    producer.flush(30)
    assert offsets and offsets[0] >= 0, "not produced"
    return offsets[0]


def _test_signer() -> LedgerSigner:
    """The test suite's ledger key (tests/conftest.py): a holder of the key, e.g. after a leak."""
    import os

    return LedgerSigner(parse_keys(os.environ["LAMBDA_TRIGGER_LEDGER_KEYS"]))


def _dead_letters(
    env: Env,
    min_count: int,
    timeout: float = 30.0,
    where: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """The dead letters on the test's dead-letter topic, read until `min_count` of them match
    `where` (all do without it): other records may sit on the topic before the one wanted."""
    consumer = Consumer(
        {
            "bootstrap.servers": env.stack.kafka_bootstrap,
            "group.id": f"dlq-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    topic = f"dlq-{env.executor_id}"
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < min_count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and (where is None or where(msg)):
                found.append(msg)
    finally:
        consumer.close()
    return found


def _headers(msg: Any) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in msg.headers() or []}


def _wait_metric(
    consumer: RunningConsumer, name: str, labels: dict[str, str], value: float
) -> None:
    """Partitions are fetched side by side: the bad record may be read after the good run."""
    deadline = time.monotonic() + 30
    while consumer.metric(name, labels) < value and time.monotonic() < deadline:
        time.sleep(0.1)
    assert consumer.metric(name, labels) == value


def _good_run_succeeds(env: Env, consumer: RunningConsumer) -> None:
    """The consumer is alive: its thread runs and a following good run ends SUCCESS."""
    request = env.request(SIP)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "SUCCESS", result.report
    assert consumer.thread.is_alive()


def _forged_claimed(
    env: Env, function: str, writer: str = "urn:li:corpuser:ceo"
) -> tuple[str, bytes]:
    """A run in the CLAIMED phase naming a function of the attacker's choice."""
    run_id = new_run_id()
    request = RunRequest(
        run_id=run_id,
        dataset_urn=SIP,
        executor_id=env.executor_id,
        source_type=SourceType.SDK.value,
        requested_at_ms=now_ms(),
        actor_urn="urn:li:corpuser:ceo",
        writer_urn=writer,
    )
    start = now_ms()
    entry = {
        "v": 1,
        "kind": "state",
        "run_id": run_id,
        "dataset_urn": SIP,
        "phase": "claimed",
        "request": {**asdict(request), "writer": writer},
        "nonce": "f0f0f0f0",
        "target": {
            "kind": "lambda",
            "key": "evil",
            "label": "Earnings loader",
            "matched_by": "exact",
            "function": function,
            "payload": {"drop": "everything"},
        },
        "start_ms": start,
        "deadline_ms": start + 600_000,
        "seq": 5,
    }
    return run_id, json.dumps(entry).encode()


def test_a_forged_ledger_record_invokes_nothing(env: Env, start_consumer: Any) -> None:
    """An unsigned CLAIMED record naming an unmapped function: skipped before it is folded,
    dead-lettered by reference (no content), counted; nothing is invoked."""
    evil = f"evil-{uuid.uuid4().hex[:8]}"
    env.moto.create_lambda(evil)
    consumer = start_consumer()
    run_id, value = _forged_claimed(env, evil)
    topic = f"runs-{env.executor_id}"
    offset = _produce(env, topic, run_id.encode(), value, partition_for(SIP, run_id, PARTITIONS))

    _good_run_succeeds(env, consumer)
    assert env.moto.invocations(evil) == []
    _wait_metric(consumer, REJECTED, {"reason": "unsigned"}, 1)
    letters = _dead_letters(
        env, 1, where=lambda m: _headers(m).get("lambda-trigger.source.topic") == topic
    )
    assert len(letters) == 1
    headers = _headers(letters[0])
    assert headers["lambda-trigger.reason"] == "ledger_unsigned"
    assert headers["lambda-trigger.source.offset"] == str(offset)
    assert letters[0].value() is None and letters[0].key() is None  # by reference only


def test_a_signed_record_naming_another_target_is_refused_before_the_invoke(
    env: Env, start_consumer: Any
) -> None:
    """The same record signed with the consumers' key (a leaked key, a bug): the check right
    before the invoke finds that the mapping names another target, and the run ends FAILURE."""
    evil = f"evil-{uuid.uuid4().hex[:8]}"
    env.moto.create_lambda(evil)
    consumer = start_consumer()
    # Written as if by the api's service principal, so that the writer check passes.
    run_id, value = _forged_claimed(env, evil, writer=ADMIN_USER)
    key = run_id.encode()
    _produce(
        env,
        f"runs-{env.executor_id}",
        key,
        value,
        partition_for(SIP, run_id, PARTITIONS),
        _test_signer().headers(key, value),
    )
    result = env.wait_status(run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "FAILURE"
    assert "not the one the mapping names" in (result.report or "")
    assert env.moto.invocations(evil) == []
    assert (
        consumer.metric("lambda_trigger_consumer_pre_invoke_refusals_total", {"reason": "target"})
        == 1
    )


@pytest.mark.parametrize("signed", [False, True])
def test_a_malformed_ledger_record_does_not_stop_the_consumer(
    env: Env, start_consumer: Any, signed: bool
) -> None:
    """{"kind":"state","run_id":"p","phase":"bogus"} raised a ValueError that killed the poll
    loop, on every restart. Unsigned, it fails the MAC; signed, it fails to parse: skipped,
    counted, and the next run is handled."""
    consumer = start_consumer()
    value = json.dumps({"kind": "state", "run_id": "p", "phase": "bogus"}).encode()
    headers = _test_signer().headers(b"p", value) if signed else None
    _produce(env, f"runs-{env.executor_id}", b"p", value, 0, headers)
    _good_run_succeeds(env, consumer)
    reason = "unreadable" if signed else "unsigned"
    _wait_metric(consumer, REJECTED, {"reason": reason}, 1)


def test_deeply_nested_aspect_json_does_not_stop_the_consumer(
    env: Env, start_consumer: Any
) -> None:
    """An MCL whose aspect is JSON nested 100,000 deep (RecursionError in json.loads)."""
    consumer = start_consumer()
    run_id = new_run_id()
    urn = f"urn:li:dataHubExecutionRequest:{run_id}"
    depth = 100_000
    head = json.dumps({"executorId": env.executor_id})[:-1]  # the object, left open
    aspect = head + ', "x": ' + "[" * depth + "]" * depth + "}"
    mcl = {
        "auditHeader": None,
        "entityType": "dataHubExecutionRequest",
        "entityUrn": urn,
        "entityKeyAspect": None,
        "changeType": "UPSERT",
        "aspectName": INPUT_ASPECT,
        "aspect": {"value": aspect.encode(), "contentType": "application/json"},
        "systemMetadata": None,
        "headers": None,
        "previousAspectValue": None,
        "previousSystemMetadata": None,
        "created": {"time": now_ms(), "actor": "urn:li:corpuser:datahub"},
    }
    _produce(env, env.gms.versioned_topic, urn.encode(), env.gms.codec.encode(mcl), 0)
    _good_run_succeeds(env, consumer)
    _wait_metric(consumer, "lambda_trigger_consumer_decode_failures_total", {"reason": "aspect"}, 1)


def test_a_consumer_without_a_ledger_key_does_not_start(
    env: Env, start_consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDA_TRIGGER_LEDGER_KEYS")
    with pytest.raises(LedgerKeyError, match="no run ledger key"):
        start_consumer()
    monkeypatch.setenv("LAMBDA_TRIGGER_DEV_UNSIGNED_LEDGER", "true")
    consumer = start_consumer()  # a local stack may, and says so loudly
    _good_run_succeeds(env, consumer)


def _user(env: Env, name: str) -> tuple[str, str]:
    urn = f"urn:li:corpuser:{name}-{uuid.uuid4().hex[:6]}"
    token = f"token-{urn}"
    env.gms.add_token(token, urn, name, manage_ingestion=False)
    return urn, token


def test_a_kill_by_a_writer_who_may_not_cancel_is_ignored(env: Env, start_consumer: Any) -> None:
    """Mallory (no run right, not the requester) writes a KILL for someone's Step Functions
    run: the execution is not stopped and the run ends SUCCESS; the signal is counted."""
    name = f"sm-{uuid.uuid4().hex[:8]}"
    arn = env.moto.create_state_machine(name)
    env.mapping["targets"]["earnings"] = {
        "type": "stepfunctions",
        "stateMachineArn": arn,
        "label": "Earnings pipeline",
    }
    env.moto.queue_execution_result(arn, "SUCCEEDED", output={"rows": 1}, delay_seconds=8)
    consumer = start_consumer()
    request = env.request(SIP)
    env.wait_status(request.run_id, {"RUNNING"})
    deadline = time.monotonic() + 20
    while not [e for e in env.moto.executions(arn) if e["name"] == request.run_id]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    mallory, token = _user(env, "mallory")
    client = DataHubClient(env.datahub_settings(token=token))
    try:
        client.write_signal(request.run_id, env.executor_id, mallory)
    finally:
        client.close()
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE", "CANCELLED"}, timeout=60)
    assert result.status == "SUCCESS", result.report
    (execution,) = [e for e in env.moto.executions(arn) if e["name"] == request.run_id]
    assert execution["status"] == "SUCCEEDED"
    assert consumer.metric("lambda_trigger_consumer_cancels_ignored_total") == 1


def test_a_forged_destination_record_does_not_decide_the_run(env: Env, start_consumer: Any) -> None:
    """An SQS message naming a victim's runId and the right function, with a made-up request
    id: ignored and counted; the genuine record (AWS's request id) decides the run."""
    function = env.functions["sip"]
    url, queue_arn = env.moto.create_queue(f"done-{uuid.uuid4().hex[:8]}")
    env.moto.set_destinations(function, queue_arn)
    env.mapping["targets"]["earnings"]["invocationType"] = "Event"
    env.moto.queue_result(function, payload={"loaded": 7}, delay_seconds=8)
    consumer = start_consumer(completion_queue_url=url)
    request = env.request(SIP)
    env.wait_status(request.run_id, {"RUNNING"})
    deadline = time.monotonic() + 20
    while not env.moto.invocations(function) or not env.moto.invocations(function)[0].request_id:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (invocation,) = env.moto.invocations(function)
    arn = env.moto.lambda_client().get_function(FunctionName=function)["Configuration"][
        "FunctionArn"
    ]
    forged = {
        "version": "1.0",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": invocation.payload,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "ATTACKER TEXT"},
    }
    env.moto.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(forged))
    # The forged record arrives seconds before the genuine one (the function "runs" 8 s).
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "SUCCESS", result.report
    assert "ATTACKER" not in (result.report or "")
    records = "lambda_trigger_consumer_completion_records_total"
    assert consumer.metric(records, {"result": "unbound"}) == 1
    assert consumer.metric(records, {"result": "matched"}) == 2  # both reached the ledger


@pytest.fixture
def auth_off(env: Env) -> Any:
    env.gms.credentials.auth_enabled = False  # METADATA_SERVICE_AUTH_ENABLED=false
    try:
        yield
    finally:
        env.gms.credentials.auth_enabled = True


def _write_as_header_actor(env: Env, actor: str) -> RunRequest:
    """With GMS authentication off, a made-up token and `X-DataHub-Actor` make the MCL's
    `created.actor` whatever the writer says (NoOpAuthenticator)."""
    request = RunRequest(
        run_id=new_run_id(),
        dataset_urn=SIP,
        executor_id=env.executor_id,
        source_type=SourceType.SDK.value,
        requested_at_ms=now_ms(),
        actor_urn=actor,
    )
    emitter = DatahubRestEmitter(
        env.gms.url, token="made-up-anything", extra_headers={"X-DataHub-Actor": actor}
    )
    try:
        emitter.emit_mcp(
            MetadataChangeProposalWrapper(entityUrn=request.urn, aspect=request.to_aspect())
        )
    finally:
        emitter.close()
    return request


def test_a_consumer_next_to_an_unauthenticated_gms_refuses_made_up_writers(
    env: Env, start_consumer: Any, auth_off: None, caplog: pytest.LogCaptureFixture
) -> None:
    ceo = f"urn:li:corpuser:ceo-{uuid.uuid4().hex[:6]}"
    env.gms.add_token(f"token-{ceo}", ceo, "ceo", manage_ingestion=True)
    emit(env, ceo, RoleMembershipClass(roles=["urn:li:dataHubRole:Admin"]))
    caplog.set_level("INFO", logger="lambda_trigger_consumer.authorize")
    start_consumer()
    forged = _write_as_header_actor(env, ceo)
    result = env.wait_status(forged.run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "FAILURE"
    assert f"not authorised: {ceo} may not start runs" in (result.report or "")
    assert env.moto.invocations(env.functions["sip"]) == []
    assert "GMS authentication is OFF" in caplog.text
    # The api's own service principal still may (what the api writes for a checked caller).
    ok = env.request(SIP)
    assert env.wait_status(ok.run_id, {"SUCCESS", "FAILURE"}, timeout=60).status == "SUCCESS"


def test_the_dev_setting_trusts_unauthenticated_writers(
    env: Env, start_consumer: Any, auth_off: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ceo = f"urn:li:corpuser:ceo-{uuid.uuid4().hex[:6]}"
    env.gms.add_token(f"token-{ceo}", ceo, "ceo", manage_ingestion=True)
    emit(env, ceo, RoleMembershipClass(roles=["urn:li:dataHubRole:Admin"]))
    monkeypatch.setenv("LAMBDA_TRIGGER_DEV_TRUST_UNAUTHENTICATED_WRITERS", "true")
    start_consumer()
    request = _write_as_header_actor(env, ceo)
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE"}, timeout=60)
    assert result.status == "SUCCESS", result.report


def test_a_kill_before_the_start_by_a_writer_who_may_not_cancel_is_ignored(
    env: Env, start_consumer: Any
) -> None:
    """The KILL is in Kafka before the consumer has even seen the run: still ignored."""
    # The function takes 2 s: the KILL (one GMS read and a ledger record) reaches the run while
    # it is running, and is judged when the run's outcome is written (driver._finish).
    env.moto.queue_result(env.functions["sip"], payload={"ok": True}, delay_seconds=2.0)
    request = env.request(SIP)
    mallory, token = _user(env, "mallory")
    client = DataHubClient(env.datahub_settings(token=token))
    try:
        client.write_signal(request.run_id, env.executor_id, mallory)
    finally:
        client.close()
    consumer = start_consumer()
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE", "CANCELLED"}, timeout=60)
    assert result.status == "SUCCESS", result.report
    assert len(env.moto.invocations(env.functions["sip"])) == 1
    assert consumer.metric("lambda_trigger_consumer_cancels_ignored_total") == 1


def test_the_requester_may_cancel_their_own_run(env: Env, start_consumer: Any) -> None:
    """Alice asked through the api (the service principal wrote `actorUrn: alice`); she holds
    no allowed role, yet her own KILL (DataHub's UI writes it with her identity) counts."""
    alice, token = _user(env, "alice")
    request = RunRequest(
        run_id=new_run_id(),
        dataset_urn=SIP,
        executor_id=env.executor_id,
        source_type=SourceType.SDK.value,
        requested_at_ms=now_ms(),
        actor_urn=alice,
    )
    service = env.datahub()
    try:
        service.write_request(request)
    finally:
        service.close()
    client = DataHubClient(env.datahub_settings(token=token))
    try:
        client.write_signal(request.run_id, env.executor_id, alice)
    finally:
        client.close()
    consumer = start_consumer()
    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE", "CANCELLED"}, timeout=60)
    assert result.status == "CANCELLED", result.report
    assert env.moto.invocations(env.functions["sip"]) == []
    assert consumer.metric("lambda_trigger_consumer_cancels_ignored_total") == 0
