"""docker compose variable interpolation, enough to resolve the overlay's paths in tests.

Supports `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
`${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and nested expressions in defaults, as the compose
specification describes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A required variable is missing, or the syntax is broken."""


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def _braced(body: str, env: Mapping[str, str]) -> str:
    match = _NAME_RE.match(body)
    if match is None:
        raise InterpolationError(f"bad variable expression ${{{body}}}")
    name, rest = match.group(), body[match.end() :]
    value = env.get(name)
    if rest == "":
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            unset = value is None or (op.startswith(":") and value == "")
            if op.endswith("-"):
                return interpolate(arg, env) if unset else str(value)
            if op.endswith("?"):
                if unset:
                    raise InterpolationError(
                        f"required variable {name} is missing: {interpolate(arg, env)}"
                    )
                return str(value)
            return "" if unset else interpolate(arg, env)
    raise InterpolationError(f"bad variable expression ${{{body}}}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i)
            out.append(_braced(text[i + 2 : end], env))
            i = end + 1
        elif text[i] == "$" and (match := _NAME_RE.match(text, i + 1)):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string of a parsed compose file (keys stay as they are)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node
