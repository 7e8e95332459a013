"""Run parameters: the schema subset a mapping may declare, and the messages a bad value gets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_trigger.contract import RunRequest, lambda_payload
from lambda_trigger.mapping import MappingError, parse_mapping
from lambda_trigger.parameters import (
    MAX_PARAMETERS_BYTES,
    MAX_STRING_LENGTH,
    ParameterError,
    checked_parameters,
    cli_value,
    public_schema,
    schema_problems,
    validate_parameters,
)

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Backfill",
    "properties": {
        "start": {"type": "string", "format": "date", "title": "First day"},
        "at": {"type": "string", "format": "date-time"},
        "mode": {"type": "string", "enum": ["incremental", "full"], "default": "incremental"},
        "partition": {"type": "string", "pattern": "^p[0-9]{2}$", "maxLength": 3},
        "batch": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "dryRun": {"type": "boolean", "default": False, "description": "Plan only"},
    },
    "required": ["start"],
}


def test_the_example_schema_is_supported() -> None:
    assert schema_problems(SCHEMA) == []


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object", "oneOf": []}, "unsupported keyword 'oneOf'"),
        ({"type": "array"}, "'type' must be 'object'"),
        ({"properties": {"a": {"type": "array"}}}, "properties.a: 'type' must be one of"),
        ({"properties": {"a": {"type": "string", "$ref": "#"}}}, "unsupported keyword '$ref'"),
        (
            {"properties": {"a": {"type": "boolean", "enum": [True]}}},
            "keyword 'enum' does not apply to type 'boolean'",
        ),
        (
            {"properties": {"a": {"type": "integer", "maxLength": 3}}},
            "keyword 'maxLength' does not apply to type 'integer'",
        ),
        ({"properties": {"a": {"type": "string", "format": "email"}}}, "unsupported format"),
        ({"properties": {"a": {"type": "string", "pattern": "("}}}, "not a valid regular"),
        ({"properties": {"a": {"type": "string", "enum": [1]}}}, "enum value 1 is not of type"),
        ({"properties": {"a": {"type": "string", "enum": []}}}, "'enum' must be a list"),
        ({"properties": {"a b": {"type": "string"}}}, "property name 'a b'"),
        ({"properties": {}, "required": ["x"]}, "'required' names 'x'"),
        ({"additionalProperties": True}, "'additionalProperties' may only be false"),
        (
            {"properties": {"n": {"type": "integer", "maximum": 3, "default": 9}}},
            "properties.n.default: the default must be <= 3",
        ),
        (
            {"properties": {"d": {"type": "string", "format": "date", "default": "x"}}},
            "the default must be a date",
        ),
        ({"properties": {"s": {"type": "string", "maxLength": -1}}}, "maxLength"),
    ],
)
def test_unsupported_schemas_are_named(schema: dict[str, Any], expected: str) -> None:
    problems = schema_problems(schema)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_listed_not_only_the_first() -> None:
    problems = schema_problems(
        {"properties": {"a": {"type": "string", "allOf": []}, "b": {"type": "x"}}, "if": {}}
    )
    assert len(problems) == 3, problems


def test_valid_values_get_defaults_in_schema_order() -> None:
    values = validate_parameters(
        SCHEMA, {"ratio": 0.5, "start": "2026-01-31", "at": "2026-01-31T10:00:00Z"}
    )
    assert values == {
        "start": "2026-01-31",
        "at": "2026-01-31T10:00:00Z",
        "mode": "incremental",
        "batch": 5,
        "ratio": 0.5,
        "dryRun": False,
    }
    assert list(values) == ["start", "at", "mode", "batch", "ratio", "dryRun"]


@pytest.mark.parametrize(
    ("values", "field", "problem"),
    [
        ({}, "parameters.start", "is required"),
        ({"start": "2026-02-30"}, "parameters.start", "must be a date (YYYY-MM-DD)"),
        ({"start": "31/01/2026"}, "parameters.start", "must be a date (YYYY-MM-DD)"),
        ({"start": 20260131}, "parameters.start", "must be a string"),
        ({"start": "2026-01-31", "at": "2026-01-31T10:00:00"}, "parameters.at", "with a zone"),
        ({"start": "2026-01-31", "mode": "fast"}, "parameters.mode", 'one of: "incremental"'),
        ({"start": "2026-01-31", "partition": "q01"}, "parameters.partition", "pattern"),
        ({"start": "2026-01-31", "partition": "p001"}, "parameters.partition", "at most 3"),
        ({"start": "2026-01-31", "batch": 11}, "parameters.batch", "must be <= 10"),
        ({"start": "2026-01-31", "batch": 0}, "parameters.batch", "must be >= 1"),
        ({"start": "2026-01-31", "batch": 2.5}, "parameters.batch", "must be an integer"),
        ({"start": "2026-01-31", "batch": "3"}, "parameters.batch", "must be an integer"),
        ({"start": "2026-01-31", "batch": True}, "parameters.batch", "must be an integer"),
        ({"start": "2026-01-31", "ratio": 0}, "parameters.ratio", "must be > 0"),
        ({"start": "2026-01-31", "dryRun": "yes"}, "parameters.dryRun", "true or false"),
        ({"start": "2026-01-31", "extra": 1}, "parameters.extra", "not a parameter"),
        ({"start": "2026-01-31\u202e"}, "parameters.start", "must not contain"),
        ({"start": "x" * (MAX_STRING_LENGTH + 1)}, "parameters.start", "at most 1000"),
        ({"start": float("nan")}, "parameters", "finite"),
        ({f"k{i}": "x" * 900 for i in range(10)}, "parameters", f"{MAX_PARAMETERS_BYTES} bytes"),
        ([1], "parameters", "must be an object"),
    ],
)
def test_rejections_name_the_field_and_say_why(values: Any, field: str, problem: str) -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(SCHEMA, values)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{field}: ")


def test_a_target_without_a_schema_takes_no_parameters() -> None:
    assert validate_parameters(None, None) == {}
    assert validate_parameters(None, {}) == {}
    with pytest.raises(ParameterError, match=r"parameters\.x: this job takes no parameters"):
        validate_parameters(None, {"x": 1})
    assert checked_parameters(None, None) is None
    assert checked_parameters(None, "{}") is None
    assert checked_parameters(SCHEMA, '{"start":"2026-01-01"}') == {
        "start": "2026-01-01",
        "mode": "incremental",
        "batch": 5,
        "dryRun": False,
    }
    with pytest.raises(ParameterError, match="not valid JSON"):
        checked_parameters(SCHEMA, "{start")


def test_public_schema_keeps_only_the_supported_keywords() -> None:
    schema = {**SCHEMA, "properties": {"a": {"type": "integer", "minimum": 1, "x-secret": "s"}}}
    public = public_schema(schema)
    assert public is not None
    assert public["properties"] == {"a": {"type": "integer", "minimum": 1}}
    assert public["additionalProperties"] is False
    assert public_schema(None) is None


def test_cli_values_are_typed_by_the_schema() -> None:
    assert cli_value(SCHEMA, "batch=3").value == 3
    assert cli_value(SCHEMA, "ratio=0.25").value == 0.25
    assert cli_value(SCHEMA, "dryRun=yes").value is True
    assert cli_value(SCHEMA, "dryRun=false").value is False
    assert cli_value(SCHEMA, "start=2026-01-31").value == "2026-01-31"
    assert cli_value(SCHEMA, "partition=007").value == "007"  # a string stays a string
    assert cli_value(None, "batch=3").value == 3
    assert cli_value(None, "name=hello").value == "hello"
    with pytest.raises(ParameterError, match=r"parameters\.batch: must be an integer"):
        cli_value(SCHEMA, "batch=three")
    with pytest.raises(ParameterError, match="not a parameter"):
        cli_value(SCHEMA, "nope=1")
    with pytest.raises(ParameterError, match="name=value"):
        cli_value(SCHEMA, "batch")


def test_the_mapping_takes_parameters_per_target_and_per_rule() -> None:
    rule_schema = {"properties": {"day": {"type": "string", "format": "date"}}}
    mapping = parse_mapping(
        {
            "targets": {"t": {"function": "loader", "parameters": SCHEMA}},
            "rules": [
                {"dataset": SIP, "target": "t", "parameters": rule_schema},
                {"platform": "athena", "target": "t"},
            ],
        },
        "test",
    )
    assert mapping.resolve(SIP) is not None
    assert mapping.resolve(SIP).parameters == rule_schema  # type: ignore[union-attr]
    other = SIP.replace("us_stocks_sip_v2", "other")
    assert mapping.resolve(other).parameters == SCHEMA  # type: ignore[union-attr]


def test_mapping_check_reports_every_unsupported_keyword() -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(
            {
                "targets": {
                    "t": {
                        "function": "loader",
                        "parameters": {
                            "properties": {"a": {"type": "string", "anyOf": []}},
                            "dependentRequired": {},
                        },
                    }
                }
            },
            "m.yaml",
        )
    text = "\n".join(caught.value.problems)
    assert "target 't', field 'parameters'" in text
    assert "unsupported keyword 'anyOf'" in text
    assert "unsupported keyword 'dependentRequired'" in text


def test_the_payload_carries_parameters_and_they_never_replace_run_fields() -> None:
    request = RunRequest(
        run_id="lt-20260101T120000001Z-abcdefghij",
        dataset_urn=SIP,
        executor_id="lambda-trigger",
        source_type="LAMBDA_TRIGGER_API",
        requested_at_ms=1,
    )
    payload = lambda_payload(request, {"layer": "b"}, {"runId": "evil", "start": "2026-01-01"})
    assert payload["runId"] == request.run_id
    assert payload["parameters"] == {"runId": "evil", "start": "2026-01-01"}
    # a static field of the same name is replaced by the run's values, never the other way
    assert lambda_payload(request, {"parameters": "x"}, {"a": 1})["parameters"] == {"a": 1}
    assert "parameters" not in lambda_payload(request, {})  # no schema: the payload as before
    json.dumps(payload)
