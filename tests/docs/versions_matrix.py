"""docs/versions.md's table, generated from docs/versions.toml (the one place for supported versions).

`python -m tests.docs.versions_matrix --write` rewrites the table between the markers in
docs/versions.md; tests/docs/test_versions.py checks that the page holds what this renders.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MATRIX = REPO / "docs" / "versions.toml"
PAGE = REPO / "docs" / "versions.md"
BEGIN = "<!-- BEGIN generated from versions.toml: python -m tests.docs.versions_matrix --write -->"
END = "<!-- END generated -->"


def load() -> dict[str, Any]:
    with MATRIX.open("rb") as handle:
        return tomllib.load(handle)


def _cell(text: str) -> str:
    # A table cell: a `|` would end it early.
    return text.replace("|", "\\|")


def render(matrix: dict[str, Any]) -> str:
    lines = [
        "| DataHub | header patch | MFE config (which slots) | GMS behaviours modelled | acryl-datahub client |",
        "|---|---|---|---|---|",
    ]
    for row in matrix["datahub"]:
        cells = (row["release"], row["header_patch"], row["mfe"], row["gms"], row["client"])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def page_table(page: str) -> str:
    """The generated block of docs/versions.md, markers excluded."""
    _, sep, rest = page.partition(BEGIN + "\n")
    body, sep2, _tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"{PAGE.name} has no {BEGIN!r} ... {END!r} block")
    return body


def write() -> None:
    page = PAGE.read_text(encoding="utf-8")
    old = page_table(page)
    PAGE.write_text(page.replace(BEGIN + "\n" + old, BEGIN + "\n" + render(load()), 1), "utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        sys.stdout.write(render(load()))
