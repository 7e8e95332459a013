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
The record is matched to its run by `requestPayload.runId`, turned into a `completion` fact in
the run ledger (whose owner writes the status), and deleted from the queue only once the ledger
has it: a crash in between leaves the message to come back after its visibility timeout. That
timeout is set per receive (VISIBILITY_SECONDS), not left to the queue's (SQS: 30 s by default),
because handling a record takes milliseconds and a record held by a killed consumer must come
back before its run's deadline. On shutdown, records received but not handled are released at
once.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaException

from lambda_trigger_consumer.deadletter import DeadLetters
from lambda_trigger_consumer.ledger import LedgerWriter, completion_record
from lambda_trigger_consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

# How long a received record stays hidden from the other consumers: a ledger write and a delete
# take milliseconds; if Kafka is away longer, another consumer handles the record again, which
# the ledger's completion fact allows (it is idempotent).
VISIBILITY_SECONDS = 10
_RESPONSE_CHARS = 4000


def parse_destination_record(
    body: str, executor_urn_prefix: str
) -> tuple[str, str | None, dict[str, Any]] | None:
    """(runId, datasetUrn, completion) for a record of one of our runs; None for another
    function's record. Raises ValueError for a message that is not a destination record."""
    record = json.loads(body)
    if not isinstance(record, dict) or "requestContext" not in record:
        raise ValueError("not a Lambda destination record (no requestContext)")
    context = record.get("requestContext") or {}
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
            parsed = parse_destination_record(body, "urn:li:dataHubExecutionRequest:")
        except ValueError as exc:
            self._metrics.completion_records.labels(result="malformed").inc()
            log.error("completion queue: not a destination record: %s", exc)
            self._dead_letters.send("completion_malformed", str(exc), key=None, value=body.encode())
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
        log.info("run %s: completion %s", run_id, completion.get("condition"))
        self._delete(message)

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self._sqs.delete_message(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (ClientError, BotoCoreError) as exc:
            # Delivered again later: the ledger fact is idempotent.
            log.warning("completion message not deleted (%s)", exc)
