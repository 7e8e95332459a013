"""The one redaction for everything that leaves the services (issue 19, item 6).

Text the services did not write themselves - a function's response, an AWS or DataHub error, a
writer's reason or URN - reaches api answers, the DataHub reports the consumer writes (which
DataHub's UI shows to anyone who can see Run History) and the logs. Everything that leaves goes
through here, so all three redact the same things:

- `redact(text)`: URLs (`<url>`), ARNs (`<arn>`), AWS access key ids and secret-looking tokens
  (`<secret>`: 40-character AWS secret keys, JWTs such as DataHub access tokens, `Bearer ...`,
  `password=...`), IPv4 / IPv6 addresses, private or public, with or without a port (`<ip>`),
  `host:port` pairs (`<host>`), 12-digit account ids (`<account>`);
- `strip_credentials(url)`: a URL an operator needs to see (a dependency's address in the log
  and on /readyz) with its `user:password@` replaced by `***@`; `strip_url_credentials(text)`
  does the same for every URL inside a text (an error message that quotes the URL);
- `escape_controls(text)`: control, line-separator, bidi and other format characters written
  as visible escapes (`\\n`, `\\x1b`, `\\u2028`), so writer-supplied text cannot start a new
  log line ("\\nrun lt-1: success") or reorder what a reader sees;
- `for_log(text)`: what a log line may carry of writer-supplied text: redacted, escaped, cut.

Placeholders are fixed strings, never a hash of the secret (a 12-digit account id has too few
values for a hash to hide it).
"""

from __future__ import annotations

import re
import unicodedata

ARN_PLACEHOLDER = "<arn>"
ACCOUNT_PLACEHOLDER = "<account>"
URL_PLACEHOLDER = "<url>"
IP_PLACEHOLDER = "<ip>"
HOST_PLACEHOLDER = "<host>"
SECRET_PLACEHOLDER = "<secret>"

# scheme://anything-up-to-whitespace-or-quote (http, https, kafka, s3, jdbc:mysql, ...).
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
# arn:partition:service:region:account:resource (region and account may be empty).
_ARN = re.compile(r"\barn:aws[a-zA-Z-]*:[a-zA-Z0-9-]+:[a-z0-9-]*:\d{0,12}:[^\s\"'<>,;)}\]]*")
# A `key=value` / `key: value` whose key says it is a secret: the value goes, the key stays.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b((?:aws_)?(?:secret(?:_access)?_key|session_token|password|passwd|pwd|secret|token|"
    r"api[_-]?key|access[_-]?key|client[_-]?secret|authorization|x-amz-security-token)"
    r"[\"']?\s*[=:]\s*[\"']?)(?:bearer\s+)?[^\s\"',;&}]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# AWS access key ids (AKIA long-term, ASIA temporary; the other prefixes are IAM unique ids).
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b")
# JWTs (DataHub personal access tokens are JWTs): header.payload.signature, base64url.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# A 40-character base64 run: the shape of an AWS secret access key. (No rule for "any long
# token": request ids - 52 random characters from moto, UUIDs from AWS - must stay readable.)
_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\d.])")
# IPv6: eight groups, or a `::` compressed form with at least two groups around it, optionally
# in brackets with a port ([fd00::1]:9092).
_IPV6 = re.compile(
    r"\[?(?<![0-9A-Fa-f:])(?:"
    r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
    r"|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})"
    r")(?![0-9A-Fa-f:])(?:\](?::\d{1,5})?)?"
)
# host:port without a scheme (urllib3 and Kafka errors name `broker:29092` alone).
_HOST_PORT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9.-]*:\d{2,5}\b")
_ACCOUNT = re.compile(r"(?<!\d)\d{12}(?!\d)")
# user:password@ (or a lone user@) in a URL's authority.
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@\"'<>]+@")

# Cc: C0/C1 controls; Cf: format (bidi, zero-width, BOM); Cs: lone surrogates; Zl / Zp: U+2028
# and U+2029, which some log viewers treat as line breaks.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
LOG_TEXT_LIMIT = 500


def redact(text: str | None, limit: int | None = None) -> str:
    """`text` without URLs, ARNs, keys, IP addresses, host:port pairs or account ids; cut to
    `limit` characters (with an ellipsis) when given."""
    if not text:
        return ""
    out = _URL.sub(URL_PLACEHOLDER, text)
    out = _ARN.sub(ARN_PLACEHOLDER, out)
    out = _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + SECRET_PLACEHOLDER, out)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {SECRET_PLACEHOLDER}", out)
    out = _JWT.sub(SECRET_PLACEHOLDER, out)
    out = _ACCESS_KEY.sub(SECRET_PLACEHOLDER, out)
    out = _SECRET_KEY.sub(SECRET_PLACEHOLDER, out)
    out = _IPV4.sub(IP_PLACEHOLDER, out)
    out = _IPV6.sub(IP_PLACEHOLDER, out)
    out = _HOST_PORT.sub(HOST_PLACEHOLDER, out)
    out = _ACCOUNT.sub(ACCOUNT_PLACEHOLDER, out)
    if limit is not None and len(out) > limit:
        return out[:limit] + "…"
    return out


def strip_credentials(url: str | None) -> str:
    """A URL with any `user:password@` replaced by `***@` (the host stays: operators need it)."""
    if not url:
        return ""
    return _URL_CREDENTIALS.sub(r"\1***@", url)


def strip_url_credentials(text: str | None) -> str:
    """Every URL inside `text` without its credentials (an error message quoting the URL)."""
    return strip_credentials(text)


def escape_controls(text: str | None) -> str:
    """Control and format characters as visible escapes: the text stays on one line and reads
    as it is stored."""
    if not text:
        return ""
    out: list[str] = []
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif unicodedata.category(ch) in _ESCAPED_CATEGORIES:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def for_log(text: object, limit: int = LOG_TEXT_LIMIT) -> str:
    """Writer-supplied text as a log line may carry it: redacted, escaped, at most `limit`
    characters (then `...`)."""
    if text is None:
        return "-"
    raw = str(text)
    cut = raw[: limit + 1]
    out = escape_controls(redact(cut))
    return out if len(raw) <= limit else out + "..."
