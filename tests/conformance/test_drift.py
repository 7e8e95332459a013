"""Drift guard: every HTTP path the installed acryl-datahub calls for the operations this
project and its users rely on is routed by the GMS double, or listed below as deliberately
unsupported with the reason.

The paths are read from the wheel's source (the functions in OPERATIONS, parsed with `ast`), not
typed in here, so when requirements-dev.lock moves to another acryl-datahub this test names any
path that appeared, changed or went away.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass

from devstack.gms_double import routes

# (module, qualified function) -> why the project or its users depend on it.
OPERATIONS: dict[tuple[str, str], str] = {
    ("datahub.emitter.rest_emitter", "DatahubRestEmitter.fetch_server_config"): (
        "test_connection / client mode detection: GET /config"
    ),
    ("datahub.emitter.rest_emitter", "DatahubRestEmitter.emit_mcp"): (
        "writing a request or a status (README 'Trigger from code', the api, the consumer)"
    ),
    ("datahub.emitter.rest_emitter", "DatahubRestEmitter._emit_restli_mcps"): "emit_mcps, Rest.li",
    ("datahub.emitter.request_helper", "OpenApiRequest.from_mcp"): "emit_mcp(s), OpenAPI mode",
    ("datahub.emitter.rest_emitter", "DatahubRestEmitter._await_status"): "EmitMode.ASYNC_WAIT",
    ("datahub.ingestion.graph.client", "DataHubGraph.get_aspect"): "reading a run's aspects",
    ("datahub.ingestion.graph.client", "DataHubGraph.get_entity_raw"): "get_entity_semityped",
    ("datahub.ingestion.graph.client", "DataHubGraph.execute_graphql"): (
        "`me` (the api) and scrollAcrossEntities (get_urns_by_filter, run tracking)"
    ),
    ("datahub.ingestion.graph.client", "DataHubGraph.hard_delete_entity"): "datahub delete --hard",
    ("datahub.ingestion.graph.client", "DataHubGraph.hard_delete_timeseries_aspect"): (
        "datahub delete --hard --aspect <timeseries>"
    ),
    ("datahub.ingestion.graph.client", "DataHubGraph.delete_references_to_urn"): (
        "datahub delete --hard of tags, terms, ... (not execution requests)"
    ),
    ("datahub.ingestion.graph.client", "DataHubGraph.get_timeseries_values"): ("timeseries reads"),
    ("datahub.cli.cli_utils", "post_entity"): "datahub put",
    ("datahub.cli.cli_utils", "get_entity"): "datahub get",
    ("datahub.cli.cli_utils", "get_latest_timeseries_aspect_values"): (
        "datahub get --aspect <timeseries>"
    ),
    ("datahub.cli.timeline_cli", "get_timeline"): "datahub timeline",
    ("datahub.cli.migrate", "_batch_get_ids"): "the batch-get form of /entitiesV2",
}

# Rendered path (see _render) -> why the double does not serve it.
UNSUPPORTED: dict[str, str] = {
    "/openapi/v1/trace/write/{}": (
        "write tracing (EmitMode.ASYNC_WAIT): the double writes synchronously, nothing to trace"
    ),
    "/openapi/v3/entity/{}/{}": (
        "OpenAPI DELETE of an entity: the CLI and the project delete through Rest.li "
        "/entities?action=delete, which the double serves"
    ),
    "/entities?action=deleteReferences": (
        "reference clean-up after deleting tags/terms/...; execution requests are never "
        "referenced and the double keeps no graph index"
    ),
    "/aspects?action=getTimeseriesAspectValues": (
        "timeseries reads from the index: execution requests have no timeseries aspects and the "
        "project reads none; the CLI ignores a failure of this call"
    ),
}

_VERB_CALLS = {
    "get": "GET",
    "_get_generic": "GET",
    "post": "POST",
    "_post_generic": "POST",
    "_emit_generic": "POST",
    "delete": "DELETE",
    "patch": "PATCH",
    "put": "PUT",
}
_BASE_URL = re.compile(r"server|host|base_url|gms", re.IGNORECASE)


@dataclass(frozen=True)
class CalledPath:
    operation: str
    verbs: frozenset[str]
    path: str  # rendered: base URL dropped, every other placeholder "{}"


def _function(module: str, qualname: str) -> ast.FunctionDef:
    obj: object = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))  # type: ignore[arg-type]
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef), qualname
    return node


def _render(node: ast.expr, names: dict[str, str]) -> str | None:
    """A string expression as a path: the GMS base URL dropped, a local variable holding a
    string inlined, any other placeholder `{}`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Attribute | ast.Name) and _BASE_URL.search(ast.unparse(node)):
        return ""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _render(node.left, names), _render(node.right, names)
        return left + right if left is not None and right is not None else None
    if not isinstance(node, ast.JoinedStr):
        return None
    out = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            out.append(str(value.value))
        elif isinstance(value, ast.FormattedValue):
            inner = value.value
            if isinstance(inner, ast.Name) and inner.id in names:
                out.append(names[inner.id])
            elif _BASE_URL.search(ast.unparse(inner)) and not out:
                out.append("")
            else:
                out.append("{}")
    return "".join(out)


def _verbs(fn: ast.FunctionDef) -> frozenset[str]:
    verbs = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            # session.get(...), self._post_generic(...): not dict.get(...) on a response body.
            if node.func.attr in _VERB_CALLS and (
                "session" in receiver or receiver in ("self", "requests")
            ):
                verbs.add(_VERB_CALLS[node.func.attr])
        # OpenApiRequest.from_mcp: `method = "post"` / "delete" / "patch"
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "method" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            verbs.add(node.value.value.upper())
    return frozenset(verbs)


def called_paths() -> list[CalledPath]:
    found = []
    for (module, qualname), _why in OPERATIONS.items():
        fn = _function(module, qualname)
        verbs = _verbs(fn)
        # Parts of a larger string expression are not paths of their own.
        parts = {
            id(child)
            for node in ast.walk(fn)
            if isinstance(node, ast.JoinedStr | ast.BinOp)
            for child in ast.walk(node)
            if child is not node
        }
        names: dict[str, str] = {}
        # Second pass with the local string variables known (`url = server + "/x"` then
        # f"{url}?ids=..."): the full target is what the client sends.
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                rendered = _render(node.value, names)
                if isinstance(target, ast.Name) and rendered is not None:
                    names[target.id] = rendered
        mine: list[str] = []
        for node in ast.walk(fn):
            if id(node) in parts or not isinstance(node, ast.expr):
                continue
            rendered = _render(node, names)
            if rendered and rendered.startswith("/") and len(rendered) > 1:
                mine.append(rendered)
        for path in dict.fromkeys(mine):
            # A piece that only ever grows into a longer target (`url = server + "/entitiesV2"`,
            # then f"{url}?ids=...") is not sent alone; an entity path ending in its key is
            # (with or without a query).
            longer = [q for q in mine if q != path and q.startswith(path)]
            if longer and not path.endswith("{}"):
                continue
            found.append(CalledPath(f"{module}:{qualname}", verbs, path))
    return found


def _sample(path: str) -> str:
    # A concrete request target for the router: placeholders in the path become an encoded URN,
    # in the query a plain token.
    head, _, query = path.partition("?")
    head = head.replace("{}", "urn%3Ali%3AdataHubExecutionRequest%3Adrift")
    query = query.replace("{}", "x")
    return f"{head}?{query}" if query else head


def test_the_wheel_still_has_every_operation() -> None:
    for module, qualname in OPERATIONS:
        _function(module, qualname)  # raises when renamed or removed


def test_every_called_path_is_routed_or_deliberately_unsupported() -> None:
    paths = called_paths()
    assert len(paths) >= len(OPERATIONS) - 1, paths  # execute_graphql etc. each call one
    unclassified = []
    for called in paths:
        routed = any(routes.match(verb, _sample(called.path)) for verb in called.verbs)
        if (
            not routed
            and called.path.split("?")[0] not in UNSUPPORTED
            and called.path not in (UNSUPPORTED)
        ):
            unclassified.append(called)
    assert not unclassified, "\n".join(
        f"{c.operation}: {sorted(c.verbs)} {c.path}" for c in unclassified
    )


def test_unsupported_entries_are_still_called() -> None:
    seen = {c.path for c in called_paths()} | {c.path.split("?")[0] for c in called_paths()}
    stale = set(UNSUPPORTED) - seen
    assert not stale, f"no longer called by the wheel, drop them: {stale}"


def test_the_forms_the_issue_names_are_routed() -> None:
    targets = {c.path for c in called_paths()}
    # What `datahub put` and `datahub get` send (the issue's two 404s).
    assert "/aspects/?action=ingestProposal" in targets
    assert "/entitiesV2/{}" in targets
    assert routes.match("POST", "/aspects/?action=ingestProposal") is not None
    assert routes.match("GET", _sample("/entitiesV2/{}")) is not None
