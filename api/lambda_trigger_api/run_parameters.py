"""Run parameters at the api: checked before anything is written, read back for GET /runs/{id}.

The schema and the checks are shared with the consumer (lambda_trigger.parameters); the
consumer checks again, since a request may be written without the api.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lambda_trigger.contract import report_details
from lambda_trigger.datahub import DataHubClient, DataHubUnavailable
from lambda_trigger.mapping import Resolution
from lambda_trigger.parameters import (
    ARG_PARAMETERS,
    ERROR_CODE,
    ParameterError,
    encode_parameters,
    parse_parameters_arg,
    public_schema,
    validate_parameters,
)
from lambda_trigger_api.errors import ApiError

__all__ = ["last_run_parameters", "public_schema", "run_parameter_args", "run_parameters"]
log = logging.getLogger(__name__)


def run_parameter_args(resolution: Resolution | None, parameters: object) -> dict[str, str]:
    """The request's extra args for `parameters` (defaults applied), or a 400 naming the
    field: `{"error": "invalid_parameters", "field": "parameters.start", "message": ...}`."""
    schema = resolution.parameters if resolution is not None else None
    try:
        values = validate_parameters(schema, parameters)
    except ParameterError as exc:
        raise ApiError(400, ERROR_CODE, str(exc), field=exc.field) from exc
    if schema is None:
        return {}
    return {ARG_PARAMETERS: encode_parameters(values)}


def run_parameters(args: Mapping[str, str], details: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the job received (the consumer's report), else what was requested."""
    ran = details.get("parameters")
    if isinstance(ran, dict):
        return ran
    try:
        requested = parse_parameters_arg(args.get(ARG_PARAMETERS))
    except ParameterError:
        return None
    return requested if isinstance(requested, dict) else None


def last_run_parameters(datahub: DataHubClient, run_id: str) -> dict[str, Any] | None:
    """The parameters of the dataset's last run, for "run again with the same parameters".
    Best effort: None when DataHub does not answer (logged) or the run took none."""
    try:
        request = datahub.read_request(run_id)
        if request is None:
            return None
        return run_parameters(request.args, report_details(datahub.read_result(run_id)))
    except (DataHubUnavailable, ValueError) as exc:  # ValueError: a run id that is no URN
        log.warning("parameters of run %s unknown: %s", run_id, exc)
        return None
