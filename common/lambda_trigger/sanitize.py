"""What may leave a service: plain text without AWS or DataHub internals.

Raw AWS and DataHub error text holds account ids, role / function / state-machine ARNs and
endpoint URLs. Both services log the raw text (keyed by runId) and give everything else -
api answers, DataHub run reports, which DataHub's UI shows to any user who can see Run
History - only what passes through here:

- `redact(text)`: the one redaction of lambda_trigger.redact (URLs, ARNs, keys, IPs,
  host:port pairs, account ids), re-exported here for the callers of this module;
- `aws_error(code)`: a stable sentence for an AWS error code ("AWS refused the call
  (AccessDeniedException)"); the code is an AWS-defined identifier, the message is dropped;
- `hostile_char(text)`: the first character a URN or a reason must not carry (control, line
  separator, bidi override, lone surrogate), or None.
"""

from __future__ import annotations

import re
import unicodedata

from lambda_trigger.redact import redact

__all__ = ["aws_error", "describe_char", "hostile_char", "printable", "redact"]

# AWS error codes grouped into what a user can act on. Anything else: "AWS error (<code>)".
_AWS_MESSAGES: dict[str, str] = {
    "AccessDeniedException": "AWS refused the call",
    "AccessDenied": "AWS refused the call",
    "UnrecognizedClientException": "AWS refused the call",
    "InvalidSignatureException": "AWS refused the call",
    "ExpiredTokenException": "AWS refused the call",
    "KMSAccessDeniedException": "AWS refused the call",
    "ResourceNotFoundException": "the job does not exist in AWS",
    "StateMachineDoesNotExist": "the job does not exist in AWS",
    "FunctionNotFound": "the job does not exist in AWS",
    "TooManyRequestsException": "AWS throttled the call",
    "ThrottlingException": "AWS throttled the call",
    "ExecutionLimitExceeded": "AWS throttled the call",
    "InvalidParameterValueException": "AWS rejected the call's parameters",
    "RequestTooLargeException": "the run's payload is too large for the job",
    "InvalidArn": "AWS rejected the call's parameters",
    "InvalidExecutionInput": "AWS rejected the call's parameters",
    "ExecutionAlreadyExists": "the job was already started for this run",
    "ServiceException": "AWS had an internal error",
    "ServiceUnavailableException": "AWS had an internal error",
    "ResourceConflictException": "the job is being updated in AWS",
    "ResourceNotReadyException": "the job is not ready in AWS",
}
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,80}$")

# Bidi embedding / override / isolate controls and marks: they reorder what a reader sees
# (Trojan Source, CVE-2021-42574). Every Cf character is refused; these are named for readers.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Cc: C0/C1 controls (NUL, ESC, CR, LF, DEL, ...); Cf: format (bidi, zero-width, BOM);
# Cs: lone surrogates (cannot be encoded as UTF-8); Zl / Zp: U+2028 / U+2029 line breaks.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def aws_error(code: str | None) -> str:
    """A plain sentence for an AWS error code: never the AWS message, which names ARNs."""
    if not code or not _CODE.match(code):
        return "AWS could not be reached"
    return f"{_AWS_MESSAGES.get(code, 'AWS error')} ({code})"


def hostile_char(text: str) -> str | None:
    for ch in text:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES or ch in BIDI_CONTROLS:
            return ch
    return None


def describe_char(ch: str) -> str:
    """`U+2028 LINE SEPARATOR`: a refused character named without echoing it."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'control character')}"


def printable(text: str, limit: int = 200) -> str:
    """Caller-supplied text safe to echo in a message or a log line: refused characters
    become U+FFFD and the text is cut to `limit` characters."""
    cleaned = "".join(
        "\ufffd" if unicodedata.category(ch) in _REFUSED_CATEGORIES else ch
        for ch in text[: limit + 1]
    )
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."
