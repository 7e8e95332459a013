"""`datahub-lambda-trigger mapping check|explain`: a mapping checked before it ships.

    datahub-lambda-trigger mapping check FILE [FILE ...]
    datahub-lambda-trigger mapping explain DATASET_URN [--tags t1,t2] [--show-targets] [--mapping FILE]

`check` validates with the code the services run at start and at every reload
(`lambda_trigger.mapping.load_mapping`), and lists every problem, one per line, not only the
first; exit 0 when every file is valid, 1 otherwise. It prints the hash the services report as
`*_mapping_info{hash}` and in `/readyz`, so a deployed mapping can be told from the file.

`explain` answers "which job would run for this dataset, and why": the rule that wins, and for
every other rule why it did not match or why it lost (precedence: exact dataset > tag >
most specific pattern > default). It prints target labels only (what the browser may see);
`--show-targets` adds the function names / ARNs, for a machine that holds the mapping anyway.
Without `--mapping`, the mapping comes from the services' variables
(DATAHUB_INGESTION_LAMBDA_MAPPING_FILE, _MAPPING, _DEFAULT).
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from dataclasses import dataclass
from typing import TextIO

from lambda_trigger.mapping import (
    DEFAULT_LABEL,
    LambdaTarget,
    Mapping,
    MappingError,
    Resolution,
    Rule,
    StepFunctionsTarget,
    load_mapping,
)
from lambda_trigger.mapping_source import mapping_hash
from lambda_trigger.settings import MappingSettings
from lambda_trigger.urns import DatasetUrn, InvalidUrnError, parse_dataset_urn

_EXACT, _TAG, _PATTERN = "exact", "tag", "pattern"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers `mapping` under the main CLI."""
    mapping = sub.add_parser("mapping", help="check a mapping file, or explain a dataset's match")
    cmds = mapping.add_subparsers(dest="mapping_command", required=True)
    check = cmds.add_parser("check", help="validate mapping files; list every error")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument(
        "--datahub",
        action="store_true",
        help="also check DataHub's ingestion sources of type lambda-trigger (DATAHUB_GMS_URL, "
        "DATAHUB_GMS_TOKEN): report any whose executorId is not ours",
    )
    explain = cmds.add_parser(
        "explain", help="which rule and target a dataset resolves to, and why"
    )
    explain.add_argument("dataset_urn")
    explain.add_argument(
        "--tags", default="", help="comma-separated tags the dataset carries (name or tag URN)"
    )
    explain.add_argument(
        "--show-targets",
        action="store_true",
        help="also print function names / ARNs (labels only without it)",
    )
    explain.add_argument(
        "--mapping", metavar="FILE", help="a mapping file (default: the services' variables)"
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if args.mapping_command == "check":
        failed = check(args.files, out, err)
        if getattr(args, "datahub", False):
            failed = max(failed, check_sources(out, err))
        return failed
    return explain(args.dataset_urn, args.tags, args.show_targets, args.mapping, out, err)


# --- check ----------------------------------------------------------------------------


def check(files: list[str], out: TextIO, err: TextIO) -> int:
    failed = 0
    for path in files:
        try:
            mapping = load_mapping(path, None, None)
        except MappingError as exc:
            failed += 1
            print(f"{path}: INVALID, {len(exc.problems)} error(s)", file=err)
            for problem in exc.problems:
                print(f"  {problem}", file=err)
            continue
        doc = mapping.document
        print(
            f"{path}: ok, hash {mapping_hash(mapping)}: {len(doc.rules)} rules, "
            f"{len(doc.targets)} named targets, default {'set' if doc.default else 'none'}; "
            f"labels: {', '.join(sorted(mapping.labels())) or 'none'}",
            file=out,
        )
    return 1 if failed else 0


def check_sources(out: TextIO, err: TextIO) -> int:
    """Sources of type lambda-trigger whose executorId was changed (the Ingestion page's
    Advanced > Executor ID): DataHub's executor would pick up their runs and fail."""
    # Imported here: only this option talks to DataHub.
    from lambda_trigger.datahub import DataHubClient, DataHubUnavailable
    from lambda_trigger.settings import DataHubSettings
    from lambda_trigger.sources import foreign_executor_sources

    settings = DataHubSettings()
    client = DataHubClient(settings)
    try:
        foreign = foreign_executor_sources(client, settings.executor_id)
    except DataHubUnavailable as exc:
        print(f"error: DataHub: {exc}", file=err)
        return 4
    finally:
        client.close()
    for urn, executor in foreign:
        print(
            f"{urn}: executorId {executor!r} is not {settings.executor_id!r}: DataHub's own "
            "executor would run it (and fail on source type lambda-trigger); set it back on "
            "the Ingestion page (Advanced > Executor ID) or run `sources sync --force`",
            file=err,
        )
    if not foreign:
        print(
            f"DataHub: every lambda-trigger source has executorId {settings.executor_id!r}",
            file=out,
        )
    return 1 if foreign else 0


# --- explain --------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleVerdict:
    index: int  # 0-based position in the file
    rule: Rule
    matches: bool
    reason: str


def _kind(rule: Rule) -> str:
    if rule.dataset is not None:
        return _EXACT
    return _TAG if rule.tag is not None else _PATTERN


def _tag_urn(tag: str) -> str:
    tag = tag.strip()
    return tag if tag.startswith("urn:li:tag:") else f"urn:li:tag:{tag}"


def _why_not(rule: Rule, dataset: DatasetUrn, tags: set[str]) -> str | None:
    """None when the rule's selector matches the dataset, else why not."""
    kind = _kind(rule)
    if kind == _EXACT:
        return None if rule.dataset == dataset.urn else "names another dataset"
    if kind == _TAG:
        if rule.tag in tags:
            return None
        return "the dataset does not carry this tag" + ("" if tags else " (no --tags given)")
    reasons = []
    if rule.platform is not None and rule.platform != dataset.platform:
        reasons.append(f"platform is {dataset.platform!r}, the rule wants {rule.platform!r}")
    if rule.env is not None and rule.env.upper() != dataset.env.upper():
        reasons.append(f"env is {dataset.env!r}, the rule wants {rule.env!r}")
    if rule.name is not None and not fnmatch.fnmatchcase(dataset.name, rule.name):
        reasons.append(f"name {dataset.name!r} does not match the glob {rule.name!r}")
    # The services decide with Rule.pattern_matches; the reasons above only spell it out.
    assert bool(reasons) != rule.pattern_matches(dataset)
    return "; ".join(reasons) or None


def _winner(verdicts: list[RuleVerdict]) -> RuleVerdict | None:
    """The documented precedence, to know which rule index `Mapping.resolve` chose."""
    matching = [v for v in verdicts if v.matches]
    for kind in (_EXACT, _TAG):
        first = next((v for v in matching if _kind(v.rule) == kind), None)
        if first is not None:
            return first
    patterns = [v for v in matching if _kind(v.rule) == _PATTERN]
    if not patterns:
        return None
    return max(patterns, key=lambda v: (v.rule.specificity(), -v.index))


def _lost_to(verdict: RuleVerdict, winner: RuleVerdict | None, winner_default: bool) -> str:
    if winner is None:
        return "matches, but was not chosen" + (" (default used)" if winner_default else "")
    w, kind, wkind = f"rule #{winner.index + 1}", _kind(verdict.rule), _kind(winner.rule)
    if wkind != kind:
        return f"matches, but {w} wins: {wkind} rules come before {kind} rules"
    if kind == _TAG:
        return f"matches, but {w} wins: tag rules are taken in file order"
    mine, theirs = verdict.rule.specificity(), winner.rule.specificity()
    if mine == theirs:
        return f"matches, but {w} wins: equally specific, and earlier in the file"
    return (
        f"matches, but {w} is more specific (literal characters in name, platform given, "
        f"env given: {theirs} against {mine})"
    )


def _describe_target(resolution: Resolution, show_targets: bool) -> str:
    text = f"label {resolution.label!r}"
    if not show_targets:
        return text
    target = resolution.target
    if isinstance(target, LambdaTarget):
        where = f"Lambda {target.function}"
        if target.qualifier:
            where += f" (qualifier {target.qualifier})"
        where += f", {target.invocation_type}"
    else:
        assert isinstance(target, StepFunctionsTarget)
        where = f"Step Functions {target.state_machine_arn}"
    if target.region:
        where += f", region {target.region}"
    return f"{text}, target {resolution.target_key!r}: {where}"


def explain_lines(
    mapping: Mapping, dataset_urn: str, tags: list[str], show_targets: bool
) -> list[str]:
    dataset = parse_dataset_urn(dataset_urn)
    tag_set = {_tag_urn(t) for t in tags if t.strip()}
    resolution = mapping.resolve(dataset, tag_set)  # the services' own resolution decides
    verdicts = []
    for index, rule in enumerate(mapping.document.rules):
        why_not = _why_not(rule, dataset, tag_set)
        verdicts.append(RuleVerdict(index, rule, why_not is None, why_not or ""))
    winner = _winner(verdicts)
    # The explanation must name the rule the services chose, never a look-alike.
    chosen = resolution.matched_by if resolution is not None else None
    assert (winner.rule.describe() if winner else (chosen and "default")) == chosen
    winner_index = winner.index if winner else None
    lines = [
        f"dataset:  {dataset.urn}",
        f"          platform {dataset.platform!r}, name {dataset.name!r}, env {dataset.env!r}",
        f"tags:     {', '.join(sorted(tag_set)) or 'none given'}",
        f"mapping:  {mapping.source} (hash {mapping_hash(mapping)})",
        "",
    ]
    if resolution is None:
        lines.append("result:   NO MATCH: no rule matches and there is no default (no button)")
    else:
        by = (
            f"rule #{winner_index + 1} ({resolution.matched_by})"
            if winner_index is not None
            else "the default"
        )
        lines.append(f"result:   {by} -> {_describe_target(resolution, show_targets)}")
    lines.append("")
    lines.append("rules (precedence: exact dataset > tag, in file order > most specific pattern):")
    if not verdicts:
        lines.append("  (none)")
    for v in verdicts:
        label = _target_label(mapping, v.rule.target)
        if winner is not None and v.index == winner.index:
            verdict = "MATCH, chosen"
        elif v.matches:
            verdict = _lost_to(v, winner, resolution is not None and winner is None)
        else:
            verdict = f"no: {v.reason}"
        lines.append(f"  #{v.index + 1} {v.rule.describe()} [{label}]: {verdict}")
    if mapping.document.default is None:
        lines.append("default:  none")
    else:
        default_label = _target_label(mapping, mapping.document.default)
        used = winner is None  # a default always resolves: no winning rule means the default
        lines.append(
            f"default:  [{default_label}]: "
            + ("used, no rule matches" if used else "not used, a rule matches")
        )
    return lines


def _target_label(mapping: Mapping, target: str | LambdaTarget | StepFunctionsTarget) -> str:
    if isinstance(target, str):
        named = mapping.document.targets.get(target)
        return (named.label if named else None) or DEFAULT_LABEL
    return target.label or DEFAULT_LABEL


def explain(
    dataset_urn: str,
    tags: str,
    show_targets: bool,
    mapping_file: str | None,
    out: TextIO,
    err: TextIO,
) -> int:
    try:
        if mapping_file:
            mapping = load_mapping(mapping_file, None, None)
        else:
            settings = MappingSettings()
            if not (settings.mapping_file or settings.mapping_inline or settings.default_lambda):
                print(
                    "error: no mapping: pass --mapping FILE or set "
                    "DATAHUB_INGESTION_LAMBDA_MAPPING_FILE",
                    file=err,
                )
                return 2
            mapping = settings.load()
    except MappingError as exc:
        print("error: the mapping is invalid:", file=err)
        for problem in exc.problems:
            print(f"  {problem}", file=err)
        return 2
    try:
        lines = explain_lines(mapping, dataset_urn, tags.split(","), show_targets)
    except InvalidUrnError as exc:
        print(f"error: {exc}", file=err)
        return 2
    print("\n".join(lines), file=out)
    return 0
