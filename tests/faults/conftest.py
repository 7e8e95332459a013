"""The fault suite uses the integration tests' per-test slice of the stack."""

from tests.integration.conftest import _aws_env, env, start_consumer

__all__ = ["_aws_env", "env", "start_consumer"]
