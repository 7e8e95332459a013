"""`datahub-lambda-trigger-api` / `python -m lambda_trigger_api`."""

from __future__ import annotations

import logging
import sys

import uvicorn

from lambda_trigger.logsafe import configure_logging
from lambda_trigger.mapping import MappingError
from lambda_trigger.settings import ApiSettings
from lambda_trigger_api.app import create_app


def main() -> int:
    # Every line escaped (writer-supplied text cannot start a new line): lambda_trigger.logsafe.
    configure_logging("%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = ApiSettings()
    try:
        app = create_app(settings)
    except MappingError as exc:
        logging.getLogger("lambda_trigger_api").error("bad mapping, not starting: %s", exc)
        return 2
    # log_config=None: uvicorn's loggers (its access line quotes the decoded path) propagate
    # to the escaping root handler instead of handlers of their own.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
