from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambda_trigger.mapping import (
    DEFAULT_LABEL,
    LambdaTarget,
    MappingError,
    StepFunctionsTarget,
    load_mapping,
    parse_mapping,
)

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLY = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
OTHER = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.marketing.visits,PROD)"
HIVE = "urn:li:dataset:(urn:li:dataPlatform:hive,AwsDataCatalog.financial_data.x,PROD)"


def _doc() -> dict[str, object]:
    return {
        "targets": {
            "earnings": {"type": "lambda", "function": "earnings-lambda", "label": "Earnings"},
            "finance": {"type": "lambda", "function": "finance-lambda", "label": "Finance"},
            "broad": {"type": "lambda", "function": "broad-lambda", "label": "Broad"},
            "narrow": {"type": "lambda", "function": "narrow-lambda", "label": "Narrow"},
            "fallback": {"type": "lambda", "function": "fallback-lambda"},
        },
        "rules": [
            {"platform": "athena", "name": "AwsDataCatalog.*", "target": "broad"},
            {"tag": "urn:li:tag:finance", "target": "finance"},
            {"platform": "athena", "name": "AwsDataCatalog.financial_data.*", "target": "narrow"},
            {"dataset": SIP, "target": "earnings"},
        ],
        "default": "fallback",
    }


def test_exact_rule_beats_tag_and_patterns() -> None:
    mapping = parse_mapping(_doc(), "test")
    resolution = mapping.resolve(SIP, ["urn:li:tag:finance"])
    assert resolution is not None
    assert resolution.target_key == "earnings"
    assert resolution.matched_by == f"dataset {SIP}"


def test_tag_rule_beats_patterns() -> None:
    resolution = parse_mapping(_doc(), "test").resolve(POLY, ["urn:li:tag:finance"])
    assert resolution is not None and resolution.target_key == "finance"


def test_most_specific_pattern_wins_regardless_of_file_order() -> None:
    mapping = parse_mapping(_doc(), "test")
    narrow = mapping.resolve(POLY, [])
    broad = mapping.resolve(OTHER, [])
    assert narrow is not None and narrow.target_key == "narrow"
    assert broad is not None and broad.target_key == "broad"


def test_equal_specificity_first_rule_in_file_wins() -> None:
    doc = {
        "targets": {"a": {"function": "a"}, "b": {"function": "b"}},
        "rules": [
            {"name": "AwsDataCatalog.financial_data.*", "target": "a"},
            {"name": "AwsDataCatalog.financial_data.*", "target": "b"},
        ],
    }
    resolution = parse_mapping(doc, "t").resolve(POLY)
    assert resolution is not None and resolution.target_key == "a"


def test_platform_restricts_pattern_and_default_applies() -> None:
    resolution = parse_mapping(_doc(), "test").resolve(HIVE, [])
    assert (
        resolution is not None
        and resolution.target_key == "fallback"
        and resolution.matched_by == "default"
    )


def test_no_match_without_default() -> None:
    doc = _doc()
    doc["default"] = None
    assert parse_mapping(doc, "test").resolve(HIVE, []) is None


def test_label_defaults_to_generic_text_never_the_function() -> None:
    resolution = parse_mapping(_doc(), "test").resolve(HIVE)
    assert resolution is not None
    assert resolution.label == DEFAULT_LABEL
    assert "fallback-lambda" not in resolution.label


def test_inline_targets_and_step_functions_target() -> None:
    doc = {
        "rules": [
            {
                "dataset": SIP,
                "target": {
                    "type": "stepfunctions",
                    "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:ingest",
                    "label": "SFN",
                },
            },
            {
                "tag": "urn:li:tag:daily",
                "target": {"function": "daily", "invocationType": "Event", "qualifier": "live"},
            },
        ]
    }
    mapping = parse_mapping(doc, "t")
    sfn = mapping.resolve(SIP)
    assert sfn is not None and isinstance(sfn.target, StepFunctionsTarget)
    daily = mapping.resolve(POLY, ["urn:li:tag:daily"])
    assert daily is not None and isinstance(daily.target, LambdaTarget)
    assert daily.target.invocation_type == "Event" and daily.target.qualifier == "live"


def test_seed_flat_form() -> None:
    mapping = parse_mapping({SIP: "earnings-lambda", POLY: "polygon-lambda"}, "seed")
    resolution = mapping.resolve(POLY)
    assert resolution is not None and isinstance(resolution.target, LambdaTarget)
    assert resolution.target.function == "polygon-lambda"
    assert resolution.target.invocation_type == "RequestResponse"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"rules": [{"dataset": SIP, "target": "nope"}]},
            "rule #1 (dataset " + SIP + "), field 'target': unknown target 'nope'",
        ),
        (
            {"rules": [{"dataset": SIP, "target": {"function": "x", "invocation_typ": "Event"}}]},
            "rule #1 (dataset "
            + SIP
            + "), field 'target.invocation_typ': Extra inputs are not permitted",
        ),
        ({"rules": [{"tag": "finance", "target": {"function": "x"}}]}, "rule #1 (tag finance)"),
        ({"rules": [{"target": {"function": "x"}}]}, "exactly one selector"),
        (
            {"rules": [{"dataset": SIP, "tag": "urn:li:tag:a", "target": {"function": "x"}}]},
            "exactly one selector",
        ),
        (
            {"rules": [{"dataset": "urn:li:dataset:bad", "target": {"function": "x"}}]},
            "not a valid dataset URN",
        ),
        ({"targets": {"t": {"function": "has space"}}}, "target 't', field 'function'"),
        (
            {"targets": {"t": {"type": "stepfunctions", "stateMachineArn": "arn:nope"}}},
            "not a Step Functions state machine ARN",
        ),
        (
            {
                "rules": [
                    {"dataset": SIP, "target": {"function": "a"}},
                    {"dataset": SIP, "target": {"function": "b"}},
                ]
            },
            "more than one exact rule",
        ),
        ({"default": "missing"}, "field 'default': unknown target 'missing'"),
        ([1, 2], "must be an object"),
    ],
)
def test_validation_errors_name_source_rule_and_field(doc: object, expected: str) -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping(doc, "mappings/x.yaml")
    assert str(err.value).startswith("mappings/x.yaml: ")
    assert expected in str(err.value)


def test_file_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "m.yaml"
    yaml_file.write_text(f"rules:\n  - dataset: '{SIP}'\n    target: {{function: from-yaml}}\n")
    json_file = tmp_path / "m.json"
    json_file.write_text(json.dumps({SIP: "from-json"}))
    for path, fn in ((yaml_file, "from-yaml"), (json_file, "from-json")):
        resolution = load_mapping(str(path), None, None).resolve(SIP)
        assert resolution is not None and isinstance(resolution.target, LambdaTarget)
        assert resolution.target.function == fn


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(MappingError, match=r"bad\.yaml: not valid YAML"):
        load_mapping(str(bad), None, None)
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        load_mapping(str(tmp_path / "absent.yaml"), None, None)


def test_env_sources_combine(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        f"rules:\n  - dataset: '{SIP}'\n    target: {{function: file-fn}}\ndefault: {{function: file-default}}\n"
    )
    mapping = load_mapping(str(path), json.dumps({POLY: "inline-fn"}), "env-default")
    by_file = mapping.resolve(SIP)
    by_inline = mapping.resolve(POLY)
    by_default = mapping.resolve(HIVE)
    assert by_file is not None and by_inline is not None and by_default is not None
    assert isinstance(by_file.target, LambdaTarget) and by_file.target.function == "file-fn"
    assert isinstance(by_inline.target, LambdaTarget) and by_inline.target.function == "inline-fn"
    assert (
        isinstance(by_default.target, LambdaTarget) and by_default.target.function == "env-default"
    )
    assert "DATAHUB_INGESTION_LAMBDA_MAPPING" in mapping.source


def test_inline_clash_with_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(f"rules:\n  - dataset: '{SIP}'\n    target: {{function: file-fn}}\n")
    with pytest.raises(MappingError, match="more than one exact rule"):
        load_mapping(str(path), json.dumps({SIP: "inline-fn"}), None)
    with pytest.raises(MappingError, match="DATAHUB_INGESTION_LAMBDA_MAPPING: not valid JSON"):
        load_mapping(None, "{nope", None)


def test_needs_tags_only_with_tag_rules() -> None:
    assert parse_mapping(_doc(), "t").needs_tags
    assert not parse_mapping({SIP: "fn"}, "t").needs_tags


def test_shipped_example_mapping_is_valid() -> None:
    example = Path(__file__).parents[3] / "mappings" / "example.yaml"
    mapping = load_mapping(str(example), None, None)
    assert mapping.resolve(SIP) is not None
    assert mapping.resolve(POLY) is not None
