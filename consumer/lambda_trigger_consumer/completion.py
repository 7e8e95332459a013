"""How an asynchronous (Event) Lambda ended: Lambda destinations delivered to an SQS queue.

Lambda writes an invocation record to the function's OnSuccess / OnFailure destination when an
asynchronous invocation ends ("Capturing records of Lambda asynchronous invocations",
docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html):

    {"version": "1.0", "timestamp": "...",
     "requestContext": {"requestId": "...", "functionArn": "...",
                        "condition": "Success" | "RetriesExhausted" | "EventAgeExceeded",
                        "approximateInvokeCount": 1},
     "requestPayload": <the event we sent: it carries our runId and datasetUrn>,
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                         "functionError": "Unhandled"  (only when the function raised)},
     "responsePayload": <what the function returned, or its error>}

Any consumer of the group may read the queue (SQS hands each message to one reader at a time).
A record whose `requestContext` does not have AWS's documented shape is malformed (dead-lettered).
The record is matched to its run by `requestPayload.runId`, turned into a `completion` fact in
the run ledger (whose owner writes the status), and deleted from the queue only once the ledger
has it: a crash in between leaves the message to come back after its visibility timeout. That
timeout is set per receive (VISIBILITY_SECONDS), not left to the queue's (SQS: 30 s by default),
because handling a record takes milliseconds and a record held by a killed consumer must come
back before its run's deadline. On shutdown, records received but not handled are released at
once.

A runId proves nothing: anyone who may send to the queue can write one, and a Lambda owner
gets a genuine record by async-invoking their own function with a crafted event (issue 19). So
the run's owner counts a record only when its `requestContext.requestId` is the request id AWS
gave the run's own invoke (recorded in the ledger) and its `functionArn` is the run's function
(`unbound_reason`); others are ignored and counted (`completion_records{result="unbound"}`).

The same queue may carry Step Functions "Execution Status Change" events from an EventBridge
rule (issue 24): `sfn_events.py` parses and binds those; they become the same kind of fact.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaException

from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.ledger import LedgerWriter, Target, completion_record
from lambda_trigger_consumer.metrics import ConsumerMetrics
from lambda_trigger_consumer.sfn_events import is_event, parse_status_event

log = logging.getLogger(__name__)

# How long a received record stays hidden from the other consumers: a ledger write and a delete
# take milliseconds; if Kafka is away longer, another consumer handles the record again, which
# the ledger's completion fact allows (it is idempotent).
VISIBILITY_SECONDS = 10
_RESPONSE_CHARS = 4000
# "Capturing records of Lambda asynchronous invocations": the conditions Lambda writes.
CONDITIONS = frozenset({"Success", "RetriesExhausted", "EventAgeExceeded"})
_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>[A-Za-z0-9$_-]{1,128}))?$"
)


def check_request_context(context: Any) -> None:
    """Raises ValueError unless `requestContext` has the documented shape: requestId,
    functionArn (a Lambda function ARN), condition, approximateInvokeCount (>= 1)."""
    if not isinstance(context, dict):
        raise ValueError("requestContext is not an object")
    request_id = context.get("requestId")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 128:
        raise ValueError("requestContext.requestId is missing")
    arn = context.get("functionArn")
    if not isinstance(arn, str) or _FUNCTION_ARN.match(arn) is None:
        raise ValueError("requestContext.functionArn is not a Lambda function ARN")
    if context.get("condition") not in CONDITIONS:
        raise ValueError("requestContext.condition is not one Lambda writes")
    count = context.get("approximateInvokeCount")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("requestContext.approximateInvokeCount is not a positive integer")


def _function_parts(function: str) -> tuple[str, str | None, str | None]:
    """A mapping's `function` (name, `account:function:name`, or ARN; perhaps `:qualifier`)
    -> (name, region or None, account or None)."""
    match = _FUNCTION_ARN.match(function)
    if match is not None:
        return match["name"], match["region"], match["account"]
    parts = function.split(":")
    if len(parts) >= 3 and parts[1] == "function":  # 123456789012:function:name[:qualifier]
        return parts[2], None, parts[0]
    return parts[0], None, None


def unbound_reason(
    completion: dict[str, Any], request_id: str | None, target: Target | None
) -> str | None:
    """None when this completion is the record of the run's own invoke; else why not."""
    if not request_id:
        return "the run's invoke has no recorded request id"
    if completion.get("requestId") != request_id:
        return "its request id is not the one of the run's invoke"
    if target is None:
        return None  # no target known (a run already ended): the request id is the binding
    match = _FUNCTION_ARN.match(str(completion.get("functionArn") or ""))
    if match is None or target.function is None:
        return "it names no function"
    name, region, account = _function_parts(target.function)
    region = region or target.region
    if (
        match["name"] != name
        or (region is not None and match["region"] != region)
        or (account is not None and match["account"] != account)
    ):
        return "it names another function"
    # Qualified or not: Lambda writes the version it ran ($LATEST, 7) even for an alias.
    return None


def _is_event_body(body: str) -> bool:
    try:
        return is_event(json.loads(body))
    except (ValueError, RecursionError):
        return False


def parse_completion_message(
    body: str, executor_urn_prefix: str
) -> tuple[str, str | None, dict[str, Any]] | None:
    """A Lambda destination record or a Step Functions status event, as a run's completion
    fact (runId, datasetUrn, fact); None when not ours; ValueError when it is neither."""
    if _is_event_body(body):
        return parse_status_event(body, executor_urn_prefix)
    return parse_destination_record(body, executor_urn_prefix)


def parse_destination_record(
    body: str, executor_urn_prefix: str
) -> tuple[str, str | None, dict[str, Any]] | None:
    """(runId, datasetUrn, completion) for a record of one of our runs; None for another
    function's record. Raises ValueError for a message that is not a destination record."""
    try:
        record = json.loads(body)
    except RecursionError as exc:
        raise ValueError("not a Lambda destination record (nested too deeply)") from exc
    if not isinstance(record, dict) or "requestContext" not in record:
        raise ValueError("not a Lambda destination record (no requestContext)")
    context = record["requestContext"]
    check_request_context(context)
    payload = record.get("requestPayload")
    if not isinstance(payload, dict):
        return None
    run_id = payload.get("runId")
    urn = payload.get("executionRequestUrn")
    if not isinstance(run_id, str) or not (
        isinstance(urn, str) and urn.startswith(executor_urn_prefix)
    ):
        return None
    response_context = record.get("responseContext") or {}
    response = record.get("responsePayload")
    completion = {
        "condition": context.get("condition"),
        "requestId": context.get("requestId"),
        "functionArn": context.get("functionArn"),
        "approximateInvokeCount": context.get("approximateInvokeCount"),
        "functionError": response_context.get("functionError"),
        "statusCode": response_context.get("statusCode"),
        "response": json.dumps(response)[:_RESPONSE_CHARS] if response is not None else None,
        "timestamp": record.get("timestamp"),
    }
    dataset = payload.get("datasetUrn") if isinstance(payload.get("datasetUrn"), str) else None
    return run_id, dataset, completion


class CompletionReader:
    """Long-polls the completion queue on its own thread."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        ledger: LedgerWriter,
        dead_letters: DeadLetters,
        metrics: ConsumerMetrics,
        stopping: threading.Event,
        *,
        wait_seconds: int = 2,
        visibility_seconds: int = VISIBILITY_SECONDS,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._ledger = ledger
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._stopping = stopping
        self._wait = wait_seconds
        self._visibility = visibility_seconds
        self._thread = threading.Thread(target=self._loop, name="completion-queue", daemon=True)

    def queue_arn(self) -> str:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["QueueArn"]
        )
        return str(attrs["Attributes"]["QueueArn"])

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self._wait,
                    VisibilityTimeout=self._visibility,
                )
                delay = 1.0
            except (ClientError, BotoCoreError) as exc:
                log.warning("completion queue unreachable (%s); retrying in %.0f s", exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            messages = response.get("Messages", [])
            for n, message in enumerate(messages):
                if self._stopping.is_set():
                    self._release(messages[n:])
                    return
                self._handle(message)

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Shutting down: records received but not handled go back to the queue now, for the
        other consumers, instead of after their visibility timeout."""
        for message in messages:
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            except (ClientError, BotoCoreError, KeyError) as exc:
                log.warning("a completion record stays hidden until its timeout: %s", exc)

    def _handle(self, message: dict[str, Any]) -> None:
        body = str(message.get("Body", ""))
        try:
            parsed = parse_completion_message(body, "urn:li:dataHubExecutionRequest:")
        except Exception as exc:  # any: one message must not stop the reader
            why = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            self._metrics.completion_records.labels(result="malformed").inc()
            log.error("completion queue: neither a destination record nor a status event: %s", why)
            self._dead_letters.send("completion_malformed", why, key=None, value=body.encode())
            self._delete(message)
            return
        if parsed is None:
            # Another function (or another project) shares the queue: not ours to judge.
            self._metrics.completion_records.labels(result="unmatched").inc()
            self._delete(message)
            return
        run_id, dataset, completion = parsed
        try:
            self._ledger.write(run_id, dataset, completion_record(run_id, dataset, completion))
        except KafkaException as exc:
            log.warning("run %s: completion not recorded yet (%s); SQS will redeliver", run_id, exc)
            return
        self._metrics.completion_records.labels(result="matched").inc()
        log.info(
            "run %s: completion %s", run_id, completion.get("condition") or completion.get("status")
        )
        self._delete(message)

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self._sqs.delete_message(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (ClientError, BotoCoreError) as exc:
            # Delivered again later: the ledger fact is idempotent.
            log.warning("completion message not deleted (%s)", exc)
