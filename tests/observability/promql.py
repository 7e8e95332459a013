"""A small PromQL reader: which series selectors and grouping labels an expression uses.

Not a full parser: the syntax is checked by a real Prometheus (promstack / promtool). This
reader only has to find, reliably, every vector selector (`name{label="value"}`), the labels in
its matchers, and the labels named by `by`, `without`, `on`, `ignoring`, `group_left` and
`group_right`, so that tests can compare them with docs/contract.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

GROUPING_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OTHER_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})
AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![a-zA-Z0-9_:]))
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![a-zA-Z0-9_:]))
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<range>\[[^\]]*\])
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}@])
    """,
    re.VERBOSE,
)

# Grafana variables: $name, ${name}, ${name:format}, [[name]].
_GRAFANA_VAR_RE = re.compile(
    r"\$\{(?P<braced>[a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z0-9_]+)?\}"
    r"|\[\[(?P<old>[a-zA-Z_][a-zA-Z0-9_]*)\]\]"
    r"|\$(?P<plain>[a-zA-Z_][a-zA-Z0-9_]*)"
)
_LABEL_VALUES_RE = re.compile(
    r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$",
    re.DOTALL,
)


class PromQLSyntaxError(ValueError):
    """The reader could not make sense of an expression."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """A vector selector. `text` is its source text, without range, offset or `@`."""

    name: str | None
    matchers: tuple[Matcher, ...]
    text: str

    @property
    def metric(self) -> str | None:
        """The metric name, from the name or an equality `__name__` matcher."""
        if self.name is not None:
            return self.name
        for matcher in self.matchers:
            if matcher.label == "__name__" and matcher.op == "=":
                return matcher.value
        return None


@dataclass(frozen=True)
class ExprParts:
    selectors: tuple[Selector, ...]
    grouping_labels: frozenset[str]
    functions: frozenset[str]


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN_RE.match(expr, pos)
        if match is None:
            raise PromQLSyntaxError(f"unexpected character {expr[pos]!r} at {pos} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("ws", "comment"):
            tokens.append(Token(kind, match.group(), match.start(), match.end()))
        pos = match.end()
    return tokens


def _unquote(token: Token) -> str:
    body = token.text[1:-1]
    if token.text.startswith("`"):
        return body
    return re.sub(r"\\(.)", r"\1", body)


def _parse_matchers(expr: str, tokens: list[Token], i: int) -> tuple[tuple[Matcher, ...], int]:
    """Matchers from tokens[i] (just after `{`) to the closing `}`; returns (matchers, index of `}`)."""
    matchers: list[Matcher] = []
    while True:
        if i >= len(tokens):
            raise PromQLSyntaxError(f"unclosed '{{' in {expr!r}")
        if tokens[i].text == "}":
            return tuple(matchers), i
        if i + 2 >= len(tokens):
            raise PromQLSyntaxError(f"unclosed '{{' in {expr!r}")
        label, op, value = tokens[i], tokens[i + 1], tokens[i + 2]
        if label.kind == "string":
            # UTF-8 metric names in braces: {"metric"}; treat as a __name__ matcher.
            matchers.append(Matcher("__name__", "=", _unquote(label)))
            i += 1
        elif label.kind != "ident" or op.text not in MATCH_OPS or value.kind != "string":
            raise PromQLSyntaxError(
                f"bad label matcher at {label.start} ({expr[label.start : value.end]!r}) in {expr!r}"
            )
        else:
            matchers.append(Matcher(label.text, op.text, _unquote(value)))
            i += 3
        if i < len(tokens) and tokens[i].text == ",":
            i += 1
        elif i < len(tokens) and tokens[i].text != "}":
            raise PromQLSyntaxError(f"expected ',' or '}}' at {tokens[i].start} in {expr!r}")


def analyse(expr: str) -> ExprParts:
    """The selectors, grouping labels and function names of a PromQL expression."""
    tokens = tokenize(expr)
    depth = 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
            if depth < 0:
                raise PromQLSyntaxError(f"unbalanced ')' at {token.start} in {expr!r}")
    if depth:
        raise PromQLSyntaxError(f"unbalanced '(' in {expr!r}")

    selectors: list[Selector] = []
    grouping: set[str] = set()
    functions: set[str] = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.kind == "ident":
            low = token.text.lower()
            if low in GROUPING_KEYWORDS:
                if nxt is not None and nxt.text == "(":
                    j = i + 2
                    while j < len(tokens) and tokens[j].text != ")":
                        if tokens[j].kind == "ident":
                            grouping.add(tokens[j].text)
                        elif tokens[j].text != ",":
                            raise PromQLSyntaxError(
                                f"bad label list after {token.text} at {tokens[j].start} in {expr!r}"
                            )
                        j += 1
                    i = j + 1
                else:
                    i += 1
                continue
            if low in OTHER_KEYWORDS:
                i += 1
                continue
            if nxt is not None and (
                nxt.text == "("
                or (
                    low in AGGREGATIONS
                    and nxt.kind == "ident"
                    and nxt.text.lower() in ("by", "without")
                )
            ):
                functions.add(token.text)
                i += 1
                continue
            if nxt is not None and nxt.text == "{":
                matchers, close = _parse_matchers(expr, tokens, i + 2)
                selectors.append(
                    Selector(token.text, matchers, expr[token.start : tokens[close].end])
                )
                i = close + 1
            else:
                selectors.append(Selector(token.text, (), token.text))
                i += 1
            continue
        if token.text == "{":
            matchers, close = _parse_matchers(expr, tokens, i + 1)
            selectors.append(Selector(None, matchers, expr[token.start : tokens[close].end]))
            i = close + 1
            continue
        i += 1
    return ExprParts(tuple(selectors), frozenset(grouping), frozenset(functions))


def grafana_variables(expr: str) -> set[str]:
    """Names of the Grafana variables an expression uses."""
    return {
        m.group("braced") or m.group("old") or m.group("plain")
        for m in _GRAFANA_VAR_RE.finditer(expr)
    }


def substitute_grafana_variables(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables by concrete values; an unknown variable raises KeyError."""

    def repl(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("old") or match.group("plain")
        if name not in values:
            raise KeyError(f"no test value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _GRAFANA_VAR_RE.sub(repl, expr)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """Grafana's `label_values(selector, label)` / `label_values(label)` -> (selector, label)."""
    match = _LABEL_VALUES_RE.match(query)
    if match is None:
        raise PromQLSyntaxError(f"not a label_values(...) query: {query!r}")
    return match.group("selector"), match.group("label")
