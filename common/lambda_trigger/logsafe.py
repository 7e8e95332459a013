"""Every log line of both services stays one line (issue 19, item 6).

Log lines carry text writers chose: a request's `actorUrn` on a refusal line, a URN, a path in
uvicorn's access line (decoded: `%0A` is a newline there). A forged "\\nrun lt-1: success"
must not print a second line that reads like the service's own. `EscapeControls` is a handler
filter: it formats the record's message, escapes control / line-separator / bidi characters
(lambda_trigger.redact.escape_controls) and strips credentials from URLs, before any formatter
sees it. Tracebacks are added by the formatter afterwards and keep their lines.

`configure_logging(format)` is what both services' `__main__` call instead of
`logging.basicConfig`: the root handler with the filter, which every module's logger and
uvicorn's (started with `log_config=None`) propagate to.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from lambda_trigger.redact import escape_controls, strip_url_credentials


class EscapeControls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself, later
            return True
        record.msg = strip_url_credentials(escape_controls(message))
        record.args = None
        return True


def install(handler: logging.Handler) -> logging.Handler:
    if not any(isinstance(f, EscapeControls) for f in handler.filters):
        handler.addFilter(EscapeControls())
    return handler


def configure_logging(
    log_format: str, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """A root handler on `stream` (stderr) whose every line is escaped; returns it."""
    handler = install(logging.StreamHandler(stream or sys.stderr))
    handler.setFormatter(logging.Formatter(log_format))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
