"""`datahub-lambda-trigger request --param name=value`: values typed by the target's schema.

The schema comes from the mapping the services read (or `--mapping FILE`) and the dataset's
tags in DataHub, resolved as the consumer resolves them; the values are checked here too, so a
typo fails at once instead of as a FAILURE run. Without a mapping, a value is a JSON literal
when it parses as one (`7`, `true`), else text, and only the consumer checks it.
"""

from __future__ import annotations

from typing import Any

from lambda_trigger.datahub import DataHubClient
from lambda_trigger.mapping import Mapping, load_mapping
from lambda_trigger.parameters import cli_value, encode_parameters, validate_parameters
from lambda_trigger.settings import MappingSettings
from lambda_trigger.urns import parse_dataset_urn


def _mapping(mapping_file: str | None) -> Mapping | None:
    if mapping_file:
        return load_mapping(mapping_file, None, None)
    settings = MappingSettings()
    if not (settings.mapping_file or settings.mapping_inline or settings.default_lambda):
        return None
    return settings.load()


def parameter_args(
    client: DataHubClient,
    dataset_urn: str,
    assignments: list[str],
    mapping_file: str | None = None,
) -> dict[str, str]:
    """The request's `args.parameters` for `--param` assignments ({} when there are none).
    Raises ParameterError (a value that does not fit) or MappingError (an unusable mapping)."""
    if not assignments:
        return {}
    mapping = _mapping(mapping_file)
    schema: dict[str, Any] | None = None
    typed = mapping is not None
    if mapping is not None:
        dataset = parse_dataset_urn(dataset_urn)
        tags = client.tags(dataset.urn) if mapping.needs_tags else []
        resolution = mapping.resolve(dataset, tags)
        schema = resolution.parameters if resolution is not None else None
    values = {}
    for assignment in assignments:
        parsed = cli_value(schema, assignment)
        values[parsed.name] = parsed.value
    if typed:
        values = validate_parameters(schema, values)
    return {"parameters": encode_parameters(values)}
