"""Which job runs for which dataset: the mapping file and its resolution.

Format (YAML or JSON), documented in mappings/README.md:

    version: 1
    targets:                      # named targets, referenced by rules
      earnings:
        type: lambda              # or stepfunctions
        function: earnings-lambda # name, partial ARN or ARN
        qualifier: live           # optional alias or version
        invocationType: RequestResponse   # or Event
        payload: {layer: bronze}  # static fields added to the payload
        label: Earnings loader    # the only thing the browser ever sees
    rules:
      - dataset: "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"
        target: earnings
      - tag: "urn:li:tag:finance"
        target: {type: lambda, function: finance-lambda}
      - platform: athena
        name: "AwsDataCatalog.financial_data.*"
        target: earnings
    default: earnings

Precedence: an exact dataset rule, then a tag rule (first in file order among the tags the
dataset carries), then the most specific pattern (most literal characters in `name`, then
platform given, then env given, then file order), then the default.

The seed plan's flat form `{"<datasetUrn>": "<lambdaName>"}` is accepted anywhere a mapping
is read, and the seed's environment variables are honoured (see `load_mapping`).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from lambda_trigger.parameters import schema_problems
from lambda_trigger.urns import DatasetUrn, InvalidUrnError, parse_dataset_urn

DEFAULT_LABEL = "Ingestion job"
_TAG_RE = re.compile(r"^urn:li:tag:.+$")
_LAMBDA_ARN_RE = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$"
)
_LAMBDA_NAME_RE = re.compile(r"^(\d{12}:)?(function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?$")
_SFN_ARN_RE = re.compile(
    r"^arn:aws[a-zA-Z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$"
)


class MappingError(ValueError):
    """A mapping that cannot be used; the message names the source, the rule and the field.

    `problems` lists every error found (not only the first), each prefixed with the source,
    so `datahub-lambda-trigger mapping check` can print them one per line."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


def _mapping_error(source: str, problems: list[str]) -> MappingError:
    return MappingError(f"{source}: {'; '.join(problems)}", [f"{source}: {p}" for p in problems])


def _json_payload(value: dict[str, Any]) -> dict[str, Any]:
    """Static payload fields must be plain JSON: YAML turns `2026-01-31` into a date and
    `.nan` into a float NaN, which json.dumps refuses or emits as invalid JSON, and that
    would only show when a run is already claimed."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"payload must be plain JSON (strings, numbers, true/false, null, lists, maps); "
            f"quote dates and times: {exc}"
        ) from exc
    if json.loads(text) != value:
        raise ValueError("payload must be plain JSON: some keys are not strings")
    return value


def _parameter_schema(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """`parameters`: the run's typed inputs (parameters.py); every unsupported keyword is
    reported, so `mapping check` lists them all."""
    if value is None:
        return None
    problems = schema_problems(value)
    if problems:
        raise ValueError("parameters: " + "; ".join(problems))
    return value


class _Model(BaseModel):
    # extra="forbid": a misspelt key (`invocation_typ`) must stop the service, not be ignored.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Trigger(_Model):
    """Data-aware runs (docs/triggers.md): run the dataset when what it reads has changed.

    `onUpstream` names the upstream events that count: `operation` (DataHub's timeseries
    `operation` aspect of an upstream dataset) and `run_success` (a run of ours on an upstream
    dataset ended SUCCESS). Upstreams are the dataset's `upstreamLineage` in DataHub."""

    on_upstream: list[Literal["operation", "run_success"]] = Field(alias="onUpstream", min_length=1)
    # Events inside this window after the first one give one run.
    debounce_seconds: int = Field(default=300, alias="debounceSeconds", ge=0, le=24 * 3600)
    # At most one triggered run per this many seconds.
    cooldown_seconds: int = Field(default=3600, alias="cooldownSeconds", ge=0, le=7 * 24 * 3600)
    # How many triggered runs may lead to this one (1: only a direct upstream event).
    max_depth: int = Field(default=1, alias="maxDepth", ge=1, le=20)

    @field_validator("on_upstream")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("onUpstream lists an event twice")
        return value


class LambdaTarget(_Model):
    type: Literal["lambda"] = "lambda"
    function: str
    qualifier: str | None = None
    invocation_type: Literal["RequestResponse", "Event"] = Field(
        default="RequestResponse", alias="invocationType"
    )
    payload: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    region: str | None = None
    # How long a run may take before it ends TIMEOUT. Synchronous invokes default to the
    # function's own timeout plus a margin; Event invokes and Step Functions to the consumer's
    # LAMBDA_TRIGGER_ASYNC_MAX_SECONDS / LAMBDA_TRIGGER_SFN_MAX_SECONDS.
    max_duration_seconds: int | None = Field(
        default=None, alias="maxDurationSeconds", ge=1, le=366 * 24 * 3600
    )
    trigger: Trigger | None = None  # for the exact-dataset rules that use this target

    # The run's typed inputs, a JSON Schema subset (parameters.py, mappings/README.md).
    parameters: dict[str, Any] | None = None

    @field_validator("payload")
    @classmethod
    def _payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_payload(value)

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _parameter_schema(value)

    @field_validator("function")
    @classmethod
    def _function(cls, value: str) -> str:
        if not (_LAMBDA_ARN_RE.match(value) or _LAMBDA_NAME_RE.match(value)):
            raise ValueError(f"not a Lambda function name or ARN: {value!r}")
        return value


class StepFunctionsTarget(_Model):
    type: Literal["stepfunctions"]
    state_machine_arn: str = Field(alias="stateMachineArn")
    payload: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    region: str | None = None
    max_duration_seconds: int | None = Field(
        default=None, alias="maxDurationSeconds", ge=1, le=366 * 24 * 3600
    )
    trigger: Trigger | None = None  # for the exact-dataset rules that use this target

    # The run's typed inputs, a JSON Schema subset (parameters.py, mappings/README.md).
    parameters: dict[str, Any] | None = None

    @field_validator("payload")
    @classmethod
    def _payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_payload(value)

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _parameter_schema(value)

    @field_validator("state_machine_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not _SFN_ARN_RE.match(value):
            raise ValueError(f"not a Step Functions state machine ARN: {value!r}")
        return value


def _target_type(value: Any) -> str | None:
    # `type` may be left out: a target is a Lambda unless it says otherwise.
    if isinstance(value, dict):
        return str(value.get("type", "lambda"))
    return getattr(value, "type", None)


Target = Annotated[
    Annotated[LambdaTarget, Tag("lambda")] | Annotated[StepFunctionsTarget, Tag("stepfunctions")],
    Discriminator(_target_type),
]


class Schedule(_Model):
    """When DataHub's own scheduler runs a dataset's source (`sources sync`, sources.py): a
    5-field cron in `timezone`, as DataHub's ingestion sources take it."""

    cron: str = Field(pattern=r"^\S+( \S+){4}$")
    timezone: str = "UTC"


class Rule(_Model):
    dataset: str | None = None
    tag: str | None = None
    platform: str | None = None
    name: str | None = None
    env: str | None = None
    target: str | Target
    schedule: Schedule | None = None  # exact `dataset` rules only
    trigger: Trigger | None = None  # exact `dataset` rules only (docs/triggers.md)
    # Replaces the target's `parameters` for the datasets this rule matches.
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _parameter_schema(value)

    @model_validator(mode="after")
    def _one_selector(self) -> Rule:
        kinds = [
            k
            for k, present in (
                ("dataset", self.dataset is not None),
                ("tag", self.tag is not None),
                ("pattern", any(v is not None for v in (self.platform, self.name, self.env))),
            )
            if present
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a rule needs exactly one selector: `dataset`, `tag`, or a pattern "
                f"(`platform`/`name`/`env`); got {kinds or 'none'}"
            )
        if self.dataset is not None:
            try:
                parse_dataset_urn(self.dataset, "dataset")
            except InvalidUrnError as exc:
                raise ValueError(str(exc)) from exc
        if self.schedule is not None and self.dataset is None:
            raise ValueError("`schedule` needs a `dataset` rule: a schedule runs one dataset")
        if self.trigger is not None and self.dataset is None:
            # Lineage is read per dataset: a pattern names no dataset whose upstreams to watch.
            raise ValueError("`trigger` needs a `dataset` rule: a trigger watches one dataset")
        if self.tag is not None and not _TAG_RE.match(self.tag):
            raise ValueError(f"tag must be a tag URN (urn:li:tag:<name>), got {self.tag!r}")
        return self

    def describe(self) -> str:
        if self.dataset is not None:
            return f"dataset {self.dataset}"
        if self.tag is not None:
            return f"tag {self.tag}"
        parts = [
            f"{k}={v}"
            for k, v in (("platform", self.platform), ("name", self.name), ("env", self.env))
            if v
        ]
        return "pattern " + ",".join(parts)

    def pattern_matches(self, dataset: DatasetUrn) -> bool:
        return (
            (self.platform is None or self.platform == dataset.platform)
            and (self.env is None or self.env.upper() == dataset.env.upper())
            and (self.name is None or fnmatch.fnmatchcase(dataset.name, self.name))
        )

    def specificity(self) -> tuple[int, int, int]:
        literal = len((self.name or "").replace("*", "").replace("?", ""))
        return (literal, int(self.platform is not None), int(self.env is not None))


# An allow-list pattern names one region and one account literally; only the function or
# state machine name may be a glob (`*`, `?`). "Any account" cannot be written.
_JOB_ARN_PATTERN_RE = re.compile(
    r"^arn:aws[a-zA-Z-]*:(lambda:[a-z0-9-]+:\d{12}:function|states:[a-z0-9-]+:\d{12}:stateMachine):"
    r"[A-Za-z0-9_*?$:-]+$"
)
JOB_TARGET_LABEL = "Job's own pipeline"


class JobTargetGroup(_Model):
    """ARNs a DataJob's structured property may name (DATAHUB_INGESTION_JOB_ARN_PROPERTY_URN).

    A metadata edit must not be able to invoke any function in any account: only ARNs matching
    one of `arns` are ever invoked, and nothing is when the mapping has no `jobTargets`."""

    arns: list[str] = Field(min_length=1)
    label: str | None = None
    invocation_type: Literal["RequestResponse", "Event"] = Field(
        default="RequestResponse", alias="invocationType"
    )

    @field_validator("arns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not _JOB_ARN_PATTERN_RE.match(pattern):
                raise ValueError(
                    f"not a Lambda function or Step Functions state machine ARN pattern with a "
                    f"literal region and account (a glob is allowed in the name only): {pattern!r}"
                )
        return value

    def allows(self, arn: str) -> bool:
        return any(job_arn_matches(pattern, arn) for pattern in self.arns)


# arn:partition:service:region:account:function|stateMachine:name - seven parts; an eighth is
# the qualifier (a Lambda version or alias, a state machine version or alias).
_UNQUALIFIED_PARTS = 7


def _split_qualifier(arn: str) -> tuple[str, str | None]:
    parts = arn.split(":", _UNQUALIFIED_PARTS)
    if len(parts) <= _UNQUALIFIED_PARTS:
        return arn, None
    return ":".join(parts[:_UNQUALIFIED_PARTS]), parts[_UNQUALIFIED_PARTS]


def job_arn_matches(pattern: str, arn: str) -> bool:
    """A `jobTargets` pattern matches unqualified ARNs only, unless it names a qualifier
    itself: `...:function:etl-*` allows `etl-loader` but not `etl-loader:1` nor
    `etl-loader:$LATEST` (fnmatch's `*` would cross the `:`); `...:function:etl-*:live` or
    `...:function:etl-*:*` allow those qualifiers. The name is matched within its part only."""
    pattern_base, pattern_qualifier = _split_qualifier(pattern)
    arn_base, arn_qualifier = _split_qualifier(arn)
    if (pattern_qualifier is None) != (arn_qualifier is None):
        return False
    if not fnmatch.fnmatchcase(arn_base, pattern_base):
        return False
    return pattern_qualifier is None or fnmatch.fnmatchcase(str(arn_qualifier), pattern_qualifier)


class MappingDocument(_Model):
    version: Literal[1] = 1
    targets: dict[str, Target] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    default: str | Target | None = None
    job_targets: dict[str, JobTargetGroup] = Field(default_factory=dict, alias="jobTargets")


@dataclass(frozen=True)
class Resolution:
    """The chosen target. `target_key` names it inside the service (logs, never the
    browser); `label` is what the browser and metrics may see."""

    target: LambdaTarget | StepFunctionsTarget
    target_key: str
    matched_by: str
    rule_parameters: dict[str, Any] | None = None  # the matching rule's own schema, if any

    @property
    def label(self) -> str:
        return self.target.label or DEFAULT_LABEL

    @property
    def parameters(self) -> dict[str, Any] | None:
        """The run's parameter schema: the rule's, else the target's (None: takes none)."""
        if self.rule_parameters is not None:
            return self.rule_parameters
        return self.target.parameters


class Mapping:
    """A validated mapping, ready to resolve datasets."""

    def __init__(self, document: MappingDocument, source: str) -> None:
        self.source = source
        self._doc = document
        self._named = dict(document.targets)
        # Every problem, not the first: `mapping check` lists them all.
        problems = [
            p
            for index, rule in enumerate(document.rules)
            if (
                p := self._reference_problem(
                    rule.target, f"rule #{index + 1} ({rule.describe()}), field 'target'"
                )
            )
        ]
        if document.default is not None and (
            p := self._reference_problem(document.default, "field 'default'")
        ):
            problems.append(p)
        self._exact = {r.dataset: (i, r) for i, r in enumerate(document.rules) if r.dataset}
        duplicates = [r.dataset for r in document.rules if r.dataset]
        seen: set[str] = set()
        for urn in duplicates:
            if urn in seen:
                problems.append(f"dataset {urn} has more than one exact rule")
            seen.add(urn)
        if problems:
            raise _mapping_error(source, problems)
        self._tags = [(i, r) for i, r in enumerate(document.rules) if r.tag]
        self._patterns = [
            (i, r) for i, r in enumerate(document.rules) if r.dataset is None and r.tag is None
        ]

    def _reference_problem(
        self, target: str | LambdaTarget | StepFunctionsTarget, where: str
    ) -> str | None:
        if isinstance(target, str) and target not in self._named:
            known = ", ".join(sorted(self._named)) or "none defined"
            return f"{where}: unknown target {target!r} (targets: {known})"
        return None

    def _resolved(
        self,
        target: str | LambdaTarget | StepFunctionsTarget,
        key: str,
        matched_by: str,
        rule: Rule | None = None,
    ) -> Resolution:
        parameters = rule.parameters if rule is not None else None
        if isinstance(target, str):
            return Resolution(self._named[target], target, matched_by, parameters)
        return Resolution(target, key, matched_by, parameters)

    @property
    def document(self) -> MappingDocument:
        return self._doc

    def labels(self) -> set[str]:
        """Every display label a resolution can return (metrics use them as label values)."""
        targets: list[LambdaTarget | StepFunctionsTarget] = list(self._named.values())
        targets += [r.target for r in self._doc.rules if not isinstance(r.target, str)]
        if self._doc.default is not None and not isinstance(self._doc.default, str):
            targets.append(self._doc.default)
        job_labels = {g.label or JOB_TARGET_LABEL for g in self._doc.job_targets.values()}
        return {t.label or DEFAULT_LABEL for t in targets} | job_labels

    def job_target(self, arn: str) -> Resolution | None:
        """The target for an ARN found on a DataJob, if the `jobTargets` allow-list has it
        (first group in file order); None means it must not be invoked."""
        region = arn.split(":")[3] if arn.count(":") >= 3 else None
        for name, group in self._doc.job_targets.items():
            if not group.allows(arn):
                continue
            target: LambdaTarget | StepFunctionsTarget
            label = group.label or JOB_TARGET_LABEL
            if _SFN_ARN_RE.match(arn):
                target = StepFunctionsTarget(
                    type="stepfunctions", state_machine_arn=arn, label=label, region=region
                )
            elif _LAMBDA_ARN_RE.match(arn):
                target = LambdaTarget(
                    function=arn,
                    label=label,
                    region=region,
                    invocation_type=group.invocation_type,
                )
            else:
                return None
            return Resolution(target, f"jobTargets.{name}", f"job ARN allow-list {name!r}")
        return None

    def triggers(self) -> dict[str, Trigger]:
        """The triggered datasets: an exact rule's own `trigger`, else its target's."""
        found: dict[str, Trigger] = {}
        for rule in self._doc.rules:
            if rule.dataset is None:
                continue
            target = self._named.get(rule.target) if isinstance(rule.target, str) else rule.target
            trigger = rule.trigger or (target.trigger if target is not None else None)
            if trigger is not None:
                found[rule.dataset] = trigger
        return found

    @property
    def needs_tags(self) -> bool:
        """Whether resolving may need the dataset's tags (saves a GMS read when not)."""
        return bool(self._tags)

    def resolve(self, dataset: DatasetUrn | str, tags: Iterable[str] = ()) -> Resolution | None:
        ds = parse_dataset_urn(dataset) if isinstance(dataset, str) else dataset
        exact = self._exact.get(ds.urn)
        if exact is not None:
            index, rule = exact
            return self._resolved(rule.target, f"rule-{index + 1}", rule.describe(), rule)
        tag_set = set(tags)
        for index, rule in self._tags:
            if rule.tag in tag_set:
                return self._resolved(rule.target, f"rule-{index + 1}", rule.describe(), rule)
        candidates = [
            (rule.specificity(), -index, index, rule)
            for index, rule in self._patterns
            if rule.pattern_matches(ds)
        ]
        if candidates:
            _, _, index, rule = max(candidates, key=lambda c: (c[0], c[1]))
            return self._resolved(rule.target, f"rule-{index + 1}", rule.describe(), rule)
        if self._doc.default is not None:
            return self._resolved(self._doc.default, "default", "default")
        return None


# --- loading --------------------------------------------------------------------------


def _is_flat(raw: AbcMapping[str, Any]) -> bool:
    """The seed plan's `{"<datasetUrn>": "<lambdaName>"}` form."""
    return (
        bool(raw)
        and all(isinstance(k, str) and k.startswith("urn:li:") for k in raw)
        and all(isinstance(v, str) for v in raw.values())
    )


def _flat_to_document(raw: AbcMapping[str, str]) -> dict[str, Any]:
    return {
        "rules": [
            {"dataset": urn, "target": {"type": "lambda", "function": fn}}
            for urn, fn in raw.items()
        ]
    }


def _format_loc(loc: tuple[int | str, ...], raw: Any) -> str:
    """('rules', 2, 'target', 'lambda', 'function') -> "rule #3 (<selector>), field 'target.function'"."""
    parts = list(loc)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "rules" and isinstance(parts[1], int):
        index = parts[1]
        selector = ""
        try:
            rule = raw["rules"][index]
            for key in ("dataset", "tag", "platform", "name"):
                if isinstance(rule, dict) and key in rule:
                    selector = f" ({key} {rule[key]})"
                    break
        except (KeyError, IndexError, TypeError):
            pass
        prefix = f"rule #{index + 1}{selector}"
        parts = parts[2:]
    elif len(parts) >= 2 and parts[0] == "targets":
        prefix = f"target {parts[1]!r}"
        parts = parts[2:]
    # Drop pydantic's union-branch names ('lambda', 'str', 'tagged-union[...]', 'function-after[...]').
    fields = [
        str(p) for p in parts if p not in ("lambda", "stepfunctions", "str") and "[" not in str(p)
    ]
    field_text = f"field '{'.'.join(fields)}'" if fields else ""
    return ", ".join(x for x in (prefix, field_text) if x) or "document"


def parse_mapping(raw: Any, source: str) -> Mapping:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise MappingError(
            f"{source}: a mapping must be an object (YAML mapping / JSON object), got {type(raw).__name__}"
        )
    if _is_flat(raw):
        raw = _flat_to_document(raw)
    try:
        document = MappingDocument.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # `target: str | {...}`: when an object was given, "should be a valid string" is noise.
        meaningful = [
            e for e in errors if e["type"] != "string_type" or not isinstance(e.get("input"), dict)
        ]
        problems = [
            f"{_format_loc(err['loc'], raw)}: {err['msg']}" for err in (meaningful or errors)
        ]
        raise _mapping_error(source, problems + _raw_reference_problems(raw)) from None
    return Mapping(document, source)


def _raw_reference_problems(raw: AbcMapping[str, Any]) -> list[str]:
    """Unknown target names, found even when the document failed validation elsewhere (the
    same wording as Mapping's check), so one `mapping check` run reports both kinds."""
    targets = raw.get("targets")
    named = set(targets) if isinstance(targets, dict) else set()
    known = ", ".join(sorted(named)) or "none defined"
    problems = []
    rules = raw.get("rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        target = rule.get("target") if isinstance(rule, dict) else None
        if isinstance(target, str) and target not in named:
            where = _format_loc(("rules", index, "target"), raw)
            problems.append(f"{where}: unknown target {target!r} (targets: {known})")
    default = raw.get("default")
    if isinstance(default, str) and default not in named:
        problems.append(f"field 'default': unknown target {default!r} (targets: {known})")
    return problems


def read_mapping_file(path: Path, text: str | None = None) -> Mapping:
    """`text`: the file's content already read (MappingSource hashes exactly what it parses)."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(
                f"{path}: cannot read the mapping file: {exc.strerror or exc}"
            ) from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise MappingError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from None
    return parse_mapping(raw, str(path))


def load_mapping(
    mapping_file: str | None,
    inline_json: str | None,
    default_lambda: str | None,
    *,
    file_text: str | None = None,
) -> Mapping:
    """Combine the seed's three sources into one mapping.

    - `DATAHUB_INGESTION_LAMBDA_MAPPING_FILE`: a mapping document (or the flat form);
    - `DATAHUB_INGESTION_LAMBDA_MAPPING`: inline JSON, flat `{urn: lambdaName}` or a document;
      its rules are added to the file's, and an exact rule for the same dataset in both is an error;
    - `DATAHUB_INGESTION_LAMBDA_DEFAULT`: a Lambda name/ARN used when nothing matches; it
      replaces the file's `default`.
    """
    sources: list[str] = []
    doc: dict[str, Any] = {"version": 1, "targets": {}, "rules": [], "default": None}
    if mapping_file:
        base = read_mapping_file(Path(mapping_file), file_text).document
        doc = base.model_dump(by_alias=True, exclude_none=True)
        doc.setdefault("default", None)
        sources.append(mapping_file)
    if inline_json:
        source = "DATAHUB_INGESTION_LAMBDA_MAPPING"
        try:
            raw = json.loads(inline_json)
        except json.JSONDecodeError as exc:
            raise MappingError(f"{source}: not valid JSON: {exc}") from None
        extra = parse_mapping(raw, source).document.model_dump(by_alias=True, exclude_none=True)
        clash = set(extra.get("targets", {})) & set(doc["targets"])
        if clash:
            raise MappingError(
                f"{source}: target names already defined in {mapping_file}: {sorted(clash)}"
            )
        doc["targets"].update(extra.get("targets", {}))
        job_groups = dict(doc.get("jobTargets") or {})
        clash = set(extra.get("jobTargets", {})) & set(job_groups)
        if clash:
            raise MappingError(
                f"{source}: jobTargets groups already defined in {mapping_file}: {sorted(clash)}"
            )
        job_groups.update(extra.get("jobTargets", {}))
        if job_groups:
            doc["jobTargets"] = job_groups
        doc["rules"] = list(extra.get("rules", [])) + list(doc["rules"])
        if extra.get("default") is not None:
            doc["default"] = extra["default"]
        sources.append(source)
    if default_lambda:
        doc["default"] = {"type": "lambda", "function": default_lambda}
        sources.append("DATAHUB_INGESTION_LAMBDA_DEFAULT")
    return parse_mapping(doc, " + ".join(sources) or "empty mapping")
