"""`datahub-lambda-trigger-consumer` / `python -m lambda_trigger_consumer`."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from confluent_kafka import KafkaException

from lambda_trigger.kafka_security import KafkaSecurityError
from lambda_trigger.logsafe import configure_logging
from lambda_trigger.mapping import MappingError
from lambda_trigger.registry_auth import RegistryAuthError
from lambda_trigger_consumer.app import ConsumerApp
from lambda_trigger_consumer.kafka_failures import classify
from lambda_trigger_consumer.topics import TopicSetupError


def main() -> int:
    # Every line escaped (writer-supplied text cannot start a new line): lambda_trigger.logsafe.
    configure_logging("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    try:
        app = ConsumerApp()
    except MappingError as exc:
        logging.getLogger("lambda_trigger_consumer").error("bad mapping, not starting: %s", exc)
        return 2
    except RegistryAuthError as exc:  # the message names the setting, never the secret
        logging.getLogger("lambda_trigger_consumer").error(
            "schema registry credentials unusable, not starting: %s (docs/schema-registries.md)",
            exc,
        )
        return 2
    except KafkaSecurityError as exc:
        logging.getLogger("lambda_trigger_consumer").error("Kafka settings, not starting: %s", exc)
        return 2
    except KafkaException as exc:
        # A client could not be created: with OAUTHBEARER, no token within 10 s.
        error = exc.args[0] if exc.args else None
        failure = classify(error.code(), error.str()) if error is not None else None
        logging.getLogger("lambda_trigger_consumer").error(
            "Kafka client not created, not starting: %s",
            f"{failure.reason}; {failure.hint}" if failure else exc,
        )
        return 2

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("lambda_trigger_consumer").info("signal %d: stopping", signum)
        app.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        app.run()
    except TopicSetupError as exc:  # no MCL topic, or no right to create ours: one line
        logging.getLogger("lambda_trigger_consumer").error("not starting: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
