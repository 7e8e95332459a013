"""`datahub-lambda-trigger mapping check|explain`, run as the installed command on real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lambda_trigger.mapping import load_mapping
from lambda_trigger.mapping_source import mapping_hash

REPO = Path(__file__).resolve().parents[2]
SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
POLY = (
    "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.polygon_prices,PROD)"
)
MAPPING = f"""\
version: 1
targets:
  earnings: {{function: earnings-lambda, label: Earnings loader}}
  fin:
    type: stepfunctions
    stateMachineArn: arn:aws:states:us-east-1:123456789012:stateMachine:fin-secret
    label: Finance pipeline
  catch: {{function: catchall-secret, label: Catch-all}}
rules:
  - dataset: "{SIP}"
    target: earnings
  - tag: "urn:li:tag:finance"
    target: fin
  - platform: athena
    name: "AwsDataCatalog.financial_data.*"
    target: catch
  - platform: athena
    name: "AwsDataCatalog.*"
    target: {{function: broad-secret, label: Broad}}
  - platform: hive
    target: catch
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambda_trigger.cli", "mapping", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},  # no mapping variables from the caller's shell
    )


def test_check_accepts_a_good_file_and_prints_the_services_hash(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MAPPING)
    done = cli("check", str(good), str(REPO / "mappings" / "example.yaml"))
    assert done.returncode == 0, done.stderr
    expected = mapping_hash(load_mapping(str(good), None, None))
    assert f"good.yaml: ok, hash {expected}: 5 rules, 3 named targets" in done.stdout
    assert "example.yaml: ok, hash" in done.stdout
    assert done.stderr == ""


def test_check_lists_every_error_not_only_the_first(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"""\
targets:
  earnings: {{function: "bad name", label: Earnings}}
rules:
  - dataset: "{SIP}"
    target: {{function: ok-fn, invocation_typ: Event}}
  - tag: finance
    target: earnings
  - platform: athena
    target: nowhere
  - dataset: "{POLY}"
    tag: "urn:li:tag:x"
    target: earnings
default: missing
"""
    )
    good = tmp_path / "good.yaml"
    good.write_text(MAPPING)
    done = cli("check", str(bad), str(good))
    assert done.returncode == 1
    errors = [line.strip() for line in done.stderr.splitlines()[1:]]
    assert done.stderr.splitlines()[0] == f"{bad}: INVALID, {len(errors)} error(s)"
    expected_fragments = [
        "target 'earnings', field 'function': Value error, not a Lambda function name or ARN",
        "rule #1 (dataset " + SIP + "), field 'target.invocation_typ': Extra inputs",
        "rule #2 (tag finance): Value error, tag must be a tag URN",
        "rule #4 (dataset " + POLY + "): Value error, a rule needs exactly one selector",
        "rule #3 (platform athena), field 'target': unknown target 'nowhere'",
        "field 'default': unknown target 'missing'",
    ]
    for fragment in expected_fragments:
        assert sum(fragment in e for e in errors) == 1, (fragment, errors)
    assert len(errors) == len(expected_fragments)
    assert all(e.startswith(f"{bad}: ") for e in errors)
    assert "good.yaml: ok" in done.stdout  # the other file is still checked


def test_check_reports_reference_and_duplicate_errors_of_a_well_formed_file(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "refs.yaml"
    bad.write_text(
        f"""\
targets:
  earnings: {{function: earnings-lambda}}
rules:
  - {{dataset: "{SIP}", target: earnigns}}
  - {{dataset: "{SIP}", target: earnings}}
  - {{platform: hive, target: polygon}}
"""
    )
    done = cli("check", str(bad))
    assert done.returncode == 1
    assert "INVALID, 3 error(s)" in done.stderr
    assert "rule #1 (dataset " + SIP + "), field 'target': unknown target 'earnigns'" in done.stderr
    assert (
        "rule #3 (pattern platform=hive), field 'target': unknown target 'polygon'" in done.stderr
    )
    assert f"dataset {SIP} has more than one exact rule" in done.stderr


def test_check_a_truncated_file(tmp_path: Path) -> None:
    cut = tmp_path / "cut.yaml"
    cut.write_text(MAPPING[: MAPPING.index("stateMachineArn") + 20])
    done = cli("check", str(cut), str(tmp_path / "absent.yaml"))
    assert done.returncode == 1
    assert f"{cut}: INVALID" in done.stderr
    assert f"{tmp_path / 'absent.yaml'}: cannot read the mapping file" in done.stderr


def test_explain_names_the_winner_and_why_each_other_rule_lost(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    done = cli("explain", POLY, "--mapping", str(path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "result:   rule #3 (pattern platform=athena,name=AwsDataCatalog.financial_data.*)" in out
    assert "-> label 'Catch-all'" in out
    assert "#1 dataset " + SIP + " [Earnings loader]: no: names another dataset" in out
    assert "#2 tag urn:li:tag:finance [Finance pipeline]: no: the dataset does not carry" in out
    assert (
        "#3 pattern platform=athena,name=AwsDataCatalog.financial_data.* [Catch-all]: MATCH" in out
    )
    assert (
        "#4 pattern platform=athena,name=AwsDataCatalog.* [Broad]: matches, but rule #3 is more specific"
        in out
    )
    assert (
        "#5 pattern platform=hive [Catch-all]: no: platform is 'athena', the rule wants 'hive'"
        in out
    )
    assert "default:  none" in out
    assert "secret" not in out  # labels only


def test_explain_tags_and_show_targets(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    done = cli("explain", POLY, "--mapping", str(path), "--tags", "pii, finance")
    assert "result:   rule #2 (tag urn:li:tag:finance) -> label 'Finance pipeline'" in done.stdout
    assert "tags:     urn:li:tag:finance, urn:li:tag:pii" in done.stdout
    assert (
        "#3 pattern platform=athena,name=AwsDataCatalog.financial_data.* [Catch-all]: matches, but rule #2 wins: tag rules come before pattern rules"
        in done.stdout
    )
    assert "secret" not in done.stdout
    shown = cli("explain", POLY, "--mapping", str(path), "--tags", "finance", "--show-targets")
    assert (
        "target 'fin': Step Functions arn:aws:states:us-east-1:123456789012:stateMachine:fin-secret"
        in shown.stdout
    )
    exact = cli("explain", SIP, "--mapping", str(path), "--tags", "finance")
    assert (
        "#2 tag urn:li:tag:finance [Finance pipeline]: matches, but rule #1 wins: exact rules come before tag rules"
        in exact.stdout
    )


def test_explain_without_a_match_and_with_the_default(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    other = "urn:li:dataset:(urn:li:dataPlatform:mysql,db.t,DEV)"
    done = cli("explain", other, "--mapping", str(path))
    assert done.returncode == 0
    assert "NO MATCH: no rule matches and there is no default" in done.stdout
    with_default = tmp_path / "d.yaml"
    with_default.write_text(MAPPING + "default: catch\n")
    done = cli("explain", other, "--mapping", str(with_default))
    assert "result:   the default -> label 'Catch-all'" in done.stdout
    assert "default:  [Catch-all]: used, no rule matches" in done.stdout


def test_explain_errors(tmp_path: Path) -> None:
    done = cli("explain", POLY)
    assert done.returncode == 2 and "no mapping" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{platform: x, target: nowhere}]\n")
    done = cli("explain", POLY, "--mapping", str(bad))
    assert done.returncode == 2 and "unknown target 'nowhere'" in done.stderr
    good = tmp_path / "m.yaml"
    good.write_text(MAPPING)
    done = cli("explain", "urn:li:dataset:nope", "--mapping", str(good))
    assert done.returncode == 2 and done.stderr.startswith("error: ")
