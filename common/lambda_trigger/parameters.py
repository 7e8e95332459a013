"""Run parameters: the JSON Schema subset a mapping declares, and the check of a run's values.

A target (or a rule) may declare `parameters`, an object schema whose properties are strings
(`format` date / date-time, `pattern`, `minLength`/`maxLength`), integers and numbers (bounds),
booleans, and `enum`s, with `required`, `default`, `title`, `description` (docs:
mappings/README.md). Everything else is refused by `schema_problems`, so what the browser
renders as a form, what the api checks and what the consumer checks again are the same thing.

Values travel in the execution request's `args.parameters` as a JSON string (docs/contract.md)
and reach the job as the payload's `parameters` object, defaults applied. They are passed,
never interpreted: nothing here builds a name, an ARN or a URL from them.

The checks use `jsonschema` (Draft 2020-12) with a format checker of our own for `date` and
`date-time`: jsonschema's own `date-time` check silently passes everything unless an optional
package is installed, and a check that may be off is no check.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as JsonSchemaError

from lambda_trigger.sanitize import describe_char, hostile_char, printable

ARG_PARAMETERS = "parameters"
ERROR_CODE = "invalid_parameters"  # the api's stable error code for a rejected value
# The parameter object as JSON, and every string in it (names and values): a run request is an
# aspect in DataHub and a payload in AWS, neither of them a place for documents.
MAX_PARAMETERS_BYTES = 8192
MAX_STRING_LENGTH = 1000
MAX_PROPERTIES = 50
MAX_ENUM_VALUES = 100
MAX_PATTERN_LENGTH = 500

_TYPES = ("string", "integer", "number", "boolean")
_FORMATS = ("date", "date-time")
_TOP_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "title", "description"}
)
_COMMON = frozenset({"type", "title", "description", "default", "enum"})
_BY_TYPE: dict[str, frozenset[str]] = {
    "string": _COMMON | {"format", "pattern", "minLength", "maxLength"},
    "integer": _COMMON | {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "number": _COMMON | {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "boolean": frozenset({"type", "title", "description", "default"}),
}
_ALL_PROPERTY_KEYWORDS = frozenset().union(*_BY_TYPE.values())
# Names end up as form field ids, CLI `name=value` and JSON keys: keep them plain.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_DATE_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _is_date(value: object) -> bool:
    """RFC 3339 full-date (YYYY-MM-DD, a real day); other types pass (`type` judges them)."""
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    dt.date.fromisoformat(value)
    return True


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time with a zone (Z or +hh:mm): a moment, not a wall-clock reading."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME_RE.fullmatch(value):
        return False
    dt.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    return True


# A checker of our own with exactly these two formats (see the module's docstring).
FORMAT_CHECKER = FormatChecker(formats=())
FORMAT_CHECKER.checks("date", raises=ValueError)(_is_date)
FORMAT_CHECKER.checks("date-time", raises=ValueError)(_is_date_time)


class ParameterError(ValueError):
    """A value that does not fit: `field` is its path (`parameters.start`), `problem` says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# --- the schema -------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), type(value).__name__
    )


def _property_problems(name: str, prop: Any) -> list[str]:
    where = f"properties.{name}"
    if not isinstance(prop, dict):
        return [f"{where}: must be an object"]
    problems: list[str] = []
    kind = prop.get("type")
    if kind not in _TYPES:
        return [f"{where}: 'type' must be one of {', '.join(_TYPES)} (got {kind!r})"]
    allowed = _BY_TYPE[kind]
    for keyword in sorted(set(prop) - allowed):
        if keyword in _ALL_PROPERTY_KEYWORDS:
            problems.append(f"{where}: keyword {keyword!r} does not apply to type {kind!r}")
        else:
            problems.append(f"{where}: unsupported keyword {keyword!r}")
    for text_key in ("title", "description"):
        if text_key in prop and not isinstance(prop[text_key], str):
            problems.append(f"{where}: {text_key!r} must be a string")
    fmt = prop.get("format")
    if fmt is not None and fmt not in _FORMATS:
        problems.append(f"{where}: unsupported format {fmt!r} (supported: {', '.join(_FORMATS)})")
    pattern = prop.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
            problems.append(f"{where}: 'pattern' must be a string of at most {MAX_PATTERN_LENGTH}")
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"{where}: 'pattern' is not a valid regular expression: {exc}")
    enum = prop.get("enum")
    if enum is not None:
        if not isinstance(enum, list) or not enum or len(enum) > MAX_ENUM_VALUES:
            problems.append(f"{where}: 'enum' must be a list of 1 to {MAX_ENUM_VALUES} values")
        else:
            for value in enum:
                if _type_name(value) != kind and not (
                    kind == "number" and _type_name(value) == "integer"
                ):
                    problems.append(f"{where}: enum value {value!r} is not of type {kind!r}")
    return problems


def schema_problems(schema: Any) -> list[str]:
    """Every reason `schema` is not a parameter schema this project supports ([] when it is)."""
    if not isinstance(schema, dict):
        return ["must be an object schema ({type: object, properties: {...}})"]
    problems = [f"unsupported keyword {k!r}" for k in sorted(set(schema) - _TOP_KEYWORDS)]
    if schema.get("type", "object") != "object":
        problems.append(f"'type' must be 'object' (got {schema.get('type')!r})")
    if schema.get("additionalProperties", False) is not False:
        problems.append("'additionalProperties' may only be false: unknown names are refused")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return [*problems, "'properties' must be an object"]
    if len(properties) > MAX_PROPERTIES:
        problems.append(f"at most {MAX_PROPERTIES} properties")
    for name, prop in properties.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            problems.append(
                f"property name {name!r}: letters, digits, '_', '.', '-' only, starting with "
                "a letter or '_', at most 64 characters"
            )
            continue
        problems.extend(_property_problems(name, prop))
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        problems.append("'required' must be a list of property names")
    else:
        problems.extend(
            f"'required' names {r!r}, which is not in 'properties'"
            for r in required
            if r not in properties
        )
    if problems:
        return problems
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = ".".join(str(p) for p in exc.absolute_path)
        return [f"{path or 'schema'}: {exc.message}"]
    for name, prop in properties.items():
        if "default" in prop:
            try:
                _check_value(prop, prop["default"], f"properties.{name}.default")
            except ParameterError as exc:
                problems.append(f"{exc.field}: the default {exc.problem}")
    return problems


def _check_value(prop: dict[str, Any], value: Any, field: str) -> None:
    errors = sorted(
        Draft202012Validator(prop, format_checker=FORMAT_CHECKER).iter_errors(value),
        # a wrong type first: "must be an integer" says more than a failed bound
        key=lambda e: (e.validator != "type", str(e.validator)),
    )
    if errors:
        raise ParameterError(field, _message(errors[0], prop))


def public_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the browser may see: the supported keywords only (a checked schema has no others,
    this is the belt to those braces), with `additionalProperties: false` spelled out."""
    if schema is None:
        return None
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}
    for key in ("title", "description", "required"):
        if key in schema:
            out[key] = copy.deepcopy(schema[key])
    for name, prop in (schema.get("properties") or {}).items():
        allowed = _BY_TYPE.get(prop.get("type"), frozenset())
        out["properties"][name] = {k: copy.deepcopy(v) for k, v in prop.items() if k in allowed}
    return out


# --- the values -------------------------------------------------------------------------


def _describe_type(kind: str) -> str:
    return {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "object": "an object",
    }.get(kind, kind)


def _message(error: JsonSchemaError, prop: AbcMapping[str, Any]) -> str:
    """A stable sentence per failed keyword (jsonschema's own messages echo the value)."""
    keyword = str(error.validator)
    limit = error.validator_value
    if keyword == "type":
        return f"must be {_describe_type(str(limit))}"
    if keyword == "enum":
        return "must be one of: " + ", ".join(json.dumps(v) for v in limit)
    if keyword == "format":
        return (
            "must be a date (YYYY-MM-DD)"
            if limit == "date"
            else "must be a date and time with a zone (RFC 3339, e.g. 2026-01-31T00:00:00Z)"
        )
    if keyword == "pattern":
        return f"must match the pattern {limit}"
    if keyword == "maxLength":
        return f"must be at most {limit} characters"
    if keyword == "minLength":
        return f"must be at least {limit} characters"
    words = {
        "minimum": ">=",
        "maximum": "<=",
        "exclusiveMinimum": ">",
        "exclusiveMaximum": "<",
    }
    if keyword in words:
        return f"must be {words[keyword]} {limit}"
    return f"is not valid ({keyword})"


def _check_sizes(values: dict[str, Any]) -> None:
    try:
        encoded = json.dumps(values, allow_nan=False)
    except ValueError:
        raise ParameterError(ARG_PARAMETERS, "numbers must be finite") from None
    if len(encoded.encode()) > MAX_PARAMETERS_BYTES:
        raise ParameterError(
            ARG_PARAMETERS, f"must be at most {MAX_PARAMETERS_BYTES} bytes as JSON"
        )
    for name, value in values.items():
        for text, field in ((name, f"{ARG_PARAMETERS}"), (value, f"{ARG_PARAMETERS}.{name}")):
            if not isinstance(text, str):
                continue
            if len(text) > MAX_STRING_LENGTH:
                raise ParameterError(field, f"must be at most {MAX_STRING_LENGTH} characters")
            bad = hostile_char(text)
            if bad is not None:
                raise ParameterError(field, f"must not contain {describe_char(bad)}")


def validate_parameters(schema: dict[str, Any] | None, values: Any) -> dict[str, Any]:
    """The values to pass to the job (defaults applied, in the schema's order), or
    ParameterError naming the first field that does not fit. A target without a schema takes
    no parameters: an empty object is fine, anything in it is refused."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ParameterError(ARG_PARAMETERS, "must be an object")
    _check_sizes(values)
    if schema is None:
        if values:
            name = sorted(values)[0]
            raise ParameterError(
                f"{ARG_PARAMETERS}.{printable(name, 64)}", "this job takes no parameters"
            )
        return {}
    properties: dict[str, Any] = schema.get("properties") or {}
    for name in values:
        if name not in properties:
            # the name is the caller's: echoed cut short (its characters were checked above)
            raise ParameterError(
                f"{ARG_PARAMETERS}.{printable(name, 64)}", "is not a parameter of this job"
            )
    filled = {
        name: values[name] if name in values else copy.deepcopy(prop["default"])
        for name, prop in properties.items()
        if name in values or "default" in prop
    }
    for name in schema.get("required") or []:
        if name not in filled:
            raise ParameterError(f"{ARG_PARAMETERS}.{name}", "is required")
    for name, value in filled.items():
        _check_value(properties[name], value, f"{ARG_PARAMETERS}.{name}")
    return filled


def parse_parameters_arg(text: str | None) -> Any:
    """The request's `args.parameters` (a JSON string) as a value, or ParameterError."""
    if text is None or text == "":
        return None
    if len(text.encode()) > MAX_PARAMETERS_BYTES:
        raise ParameterError(
            ARG_PARAMETERS, f"must be at most {MAX_PARAMETERS_BYTES} bytes as JSON"
        )
    try:
        return json.loads(text)
    except ValueError:
        raise ParameterError(ARG_PARAMETERS, "args.parameters is not valid JSON") from None


def encode_parameters(values: dict[str, Any]) -> str:
    """`args.parameters` as written by the api and the CLI: compact JSON."""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class CliValue:
    name: str
    value: Any


def cli_value(schema: dict[str, Any] | None, assignment: str) -> CliValue:
    """`name=value` from the command line, typed by the schema's property (without a schema:
    a JSON literal when it parses as one, else the text). Raises ParameterError."""
    name, sep, text = assignment.partition("=")
    if not sep or not name:
        raise ParameterError(ARG_PARAMETERS, f"expected name=value, got {assignment!r}")
    field = f"{ARG_PARAMETERS}.{name}"
    if schema is None:
        try:
            return CliValue(name, json.loads(text))
        except ValueError:
            return CliValue(name, text)
    prop = (schema.get("properties") or {}).get(name)
    if prop is None:
        raise ParameterError(field, "is not a parameter of this job")
    kind = prop.get("type")
    try:
        if kind == "integer":
            return CliValue(name, int(text))
        if kind == "number":
            number = float(text)
            return CliValue(name, int(number) if re.fullmatch(r"-?\d+", text) else number)
    except ValueError:
        raise ParameterError(field, f"must be {_describe_type(str(kind))}") from None
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return CliValue(name, True)
        if lowered in ("false", "no", "0", "off"):
            return CliValue(name, False)
        raise ParameterError(field, "must be true or false")
    return CliValue(name, text)


def checked_parameters(
    schema: dict[str, Any] | None, args_text: str | None
) -> dict[str, Any] | None:
    """A request's `args.parameters` checked against its target's schema: the values for the
    payload (defaults applied), None when the target declares no parameters and the request
    carries none. Raises ParameterError (the consumer ends the run "invalid parameters: ...")."""
    values = validate_parameters(schema, parse_parameters_arg(args_text))
    return values if schema is not None else None
