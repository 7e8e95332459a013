"""`datahub-lambda-trigger-api` / `python -m lambda_trigger_api`."""

from __future__ import annotations

import logging
import sys

import uvicorn

from lambda_trigger.mapping import MappingError
from lambda_trigger.settings import ApiSettings
from lambda_trigger_api.app import create_app


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = ApiSettings()
    try:
        app = create_app(settings)
    except MappingError as exc:
        logging.getLogger("lambda_trigger_api").error("bad mapping, not starting: %s", exc)
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
