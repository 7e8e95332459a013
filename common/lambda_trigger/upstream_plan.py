# "Run with upstream": the plan of a dataset's mapped upstream closure, in waves (docs/triggers.md).
"""Builds, encodes and reads the plan of a "run with upstream" (issue 21 item 5).

Pure: no DataHub, no Kafka. The api builds the plan to show it and writes it into the parent
execution request; the consumer builds it again from the current lineage and mapping and
refuses a parent whose plan differs (the parent can be written by anyone who may write to
DataHub, so what it carries is only a claim).

- Upstreams are DataHub's `upstreamLineage` (the caller passes a reader), followed up to
  `max_depth` hops from the requested dataset (1 = direct upstreams only).
- A dataset of the closure that no mapping rule names (`unmapped`), that the caller may not
  run (`not_allowed`), or that sits in a lineage cycle (`cycle`) is skipped, not run; the
  order passes *through* it (A -> skipped B -> C still runs A before C). The first datasets
  beyond the depth are listed as `too_deep`.
- Waves: a dataset runs in the wave after the last wave holding one of its upstreams; the
  requested dataset is always alone in the last wave.
- Child run ids are derived from the parent run id and the dataset, so a consumer that takes a
  plan over after a restart finds the children it already wrote instead of writing new ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambda_trigger.urns import InvalidUrnError, parse_dataset_urn

PLAN_SOURCE_TYPE = "UPSTREAM_PLAN"  # the parent execution request's source.type
CHILD_SOURCE_TYPE = "UPSTREAM_PLAN_STEP"  # each child run's source.type
ARG_PLAN = "upstreamPlan"  # the parent's args: JSON {"maxDepth": n, "waves": [[urn, ...], ...]}
ARG_PARENT = "parentRunId"  # a child's args: the parent run id
ARG_WAVE = "planWave"  # a child's args: its wave number (0 = first)
MIN_DEPTH = 1
MAX_DEPTH = 5
# Bounds on what one plan may hold: the datasets it looks at while walking the lineage, and
# the runs it starts. A larger closure is refused, not cut (a cut plan would run a downstream
# before upstreams it left out).
MAX_VISITED = 200
MAX_RUNS = 50
# The encoded plan must stay far below GMS's aspect size limits (an arg value is a string).
MAX_PLAN_ARG_BYTES = 64_000

UNMAPPED = "unmapped"
TOO_DEEP = "too_deep"
CYCLE = "cycle"
NOT_ALLOWED = "not_allowed"


class PlanError(ValueError):
    """No plan: the closure is too large, or an encoded plan is malformed."""


@dataclass(frozen=True)
class Plan:
    dataset_urn: str
    max_depth: int
    waves: list[list[str]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (dataset, reason)

    @property
    def runs(self) -> int:
        return sum(len(w) for w in self.waves)

    def to_public(self) -> dict[str, Any]:
        """The api's answer (docs/contract.md): names, no targets or ARNs."""
        return {
            "datasetUrn": self.dataset_urn,
            "maxDepth": self.max_depth,
            "waves": [[{"datasetUrn": d, "name": dataset_name(d)} for d in w] for w in self.waves],
            "skipped": [{"datasetUrn": d, "reason": r} for d, r in self.skipped],
            "runs": self.runs,
        }

    def encode(self) -> str:
        """The parent request's `upstreamPlan` arg (skips are not run, so not carried)."""
        return json.dumps({"maxDepth": self.max_depth, "waves": self.waves}, separators=(",", ":"))


def dataset_name(urn: str) -> str:
    try:
        return parse_dataset_urn(urn).name
    except InvalidUrnError:
        return urn


def child_run_id(parent_run_id: str, dataset_urn: str) -> str:
    """Deterministic: the same parent and dataset always give the same child id."""
    digest = hashlib.sha256(f"{parent_run_id}|{dataset_urn}".encode()).hexdigest()[:12]
    return f"{parent_run_id}-up-{digest}"


def decode_plan(dataset_urn: str, raw: str | None) -> Plan:
    """A parent request's plan, checked for shape and bounds only (the consumer then compares
    it with a plan it builds itself). Raises PlanError."""
    if not raw:
        raise PlanError(f"args.{ARG_PLAN} is missing")
    if len(raw.encode()) > MAX_PLAN_ARG_BYTES:
        raise PlanError(f"args.{ARG_PLAN} is larger than {MAX_PLAN_ARG_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise PlanError(f"args.{ARG_PLAN} is not JSON") from exc
    if not isinstance(data, dict):
        raise PlanError(f"args.{ARG_PLAN} must be an object")
    depth = data.get("maxDepth")
    if not isinstance(depth, int) or isinstance(depth, bool) or not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise PlanError(f"maxDepth must be an integer from {MIN_DEPTH} to {MAX_DEPTH}")
    waves = data.get("waves")
    if not isinstance(waves, list) or not waves:
        raise PlanError("waves must be a non-empty list")
    seen: set[str] = set()
    checked: list[list[str]] = []
    for wave in waves:
        if not isinstance(wave, list) or not wave:
            raise PlanError("each wave must be a non-empty list of dataset URNs")
        out = []
        for urn in wave:
            try:
                parsed = parse_dataset_urn(urn, "a plan dataset").urn
            except InvalidUrnError as exc:
                raise PlanError(str(exc)) from exc
            if parsed in seen:
                raise PlanError(f"{parsed} is in the plan twice")
            seen.add(parsed)
            out.append(parsed)
        checked.append(out)
    if len(seen) > MAX_RUNS:
        raise PlanError(f"the plan holds more than {MAX_RUNS} runs")
    if checked[-1] != [dataset_urn]:
        raise PlanError("the last wave must be the requested dataset alone")
    return Plan(dataset_urn, depth, checked)


def build_plan(
    dataset_urn: str,
    max_depth: int,
    upstreams: Callable[[str], list[str] | None],
    mapped: Callable[[str], bool],
    allowed: Callable[[str], bool],
) -> Plan:
    """The plan for `dataset_urn` (itself mapped and allowed: the caller checks that first).

    `upstreams(urn)` is the dataset's `upstreamLineage` datasets (None: no aspect); `mapped`
    and `allowed` are asked once per dataset of the closure. Raises PlanError when the
    closure is larger than the bounds."""
    if not MIN_DEPTH <= max_depth <= MAX_DEPTH:
        raise PlanError(f"maxDepth must be from {MIN_DEPTH} to {MAX_DEPTH}")
    root = dataset_urn
    depth: dict[str, int] = {root: 0}
    ups: dict[str, list[str]] = {}
    too_deep: list[str] = []
    frontier = [root]
    # Breadth first: a dataset's depth is its shortest distance from the requested one.
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            found = sorted(set(upstreams(node) or ()))
            ups[node] = found
            for up in found:
                if up in depth:
                    continue
                if depth[node] + 1 > max_depth:
                    if up not in too_deep:
                        too_deep.append(up)
                    continue
                depth[up] = depth[node] + 1
                if len(depth) > MAX_VISITED:
                    raise PlanError(
                        f"the upstream closure within depth {max_depth} holds more than "
                        f"{MAX_VISITED} datasets; choose a smaller depth"
                    )
                nxt.append(up)
        frontier = nxt
    # Only datasets within the depth are nodes; edges to too-deep datasets are dropped.
    graph = {n: [u for u in ups.get(n, []) if u in depth] for n in depth}
    in_cycle = _cycle_members(graph)
    skipped: list[tuple[str, str]] = []
    runnable: set[str] = set()
    for node in sorted(depth, key=lambda n: (depth[n], n)):
        if node == root:
            continue
        if node in in_cycle:
            skipped.append((node, CYCLE))
        elif not mapped(node):
            skipped.append((node, UNMAPPED))
        elif not allowed(node):
            skipped.append((node, NOT_ALLOWED))
        else:
            runnable.add(node)
    skipped += [(d, TOO_DEEP) for d in sorted(too_deep) if d not in depth]

    def deps(node: str) -> set[str]:
        """Runnable upstreams, passing through skipped ones (never through the root)."""
        out: set[str] = set()
        stack = list(graph[node])
        seen = {node}
        while stack:
            up = stack.pop()
            if up in seen or up == root:
                continue
            seen.add(up)
            if up in runnable:
                out.add(up)
            else:
                stack.extend(graph[up])
        return out

    wave_of: dict[str, int] = {}

    def wave(node: str) -> int:
        # No cycle among runnable datasets (cycle members are skipped), so this terminates.
        if node not in wave_of:
            wave_of[node] = 1 + max((wave(d) for d in deps(node)), default=-1)
        return wave_of[node]

    for node in runnable:
        wave(node)
    if len(runnable) + 1 > MAX_RUNS:
        raise PlanError(f"the plan would start {len(runnable) + 1} runs; at most {MAX_RUNS}")
    count = 1 + max(wave_of.values(), default=-1)
    waves = [sorted(n for n, w in wave_of.items() if w == i) for i in range(count)]
    return Plan(root, max_depth, [w for w in waves if w] + [[root]], skipped)


def _cycle_members(graph: dict[str, list[str]]) -> set[str]:
    """Datasets in a strongly connected component of more than one, or with a self edge
    (Tarjan's algorithm, iterative: lineage can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    members: set[str] = set()
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if i < len(edges):
                work.append((node, i + 1))
                nxt = edges[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    members.update(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return members
