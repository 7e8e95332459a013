"""docs/configuration.md lists every environment variable the services and the CLI read.

The names are read from the code with `ast`: every `validation_alias` of a pydantic-settings
field (a string or `AliasChoices`), every `os.environ.get("X")` / `os.environ["X"]` /
`os.getenv("X")`, and module constants named `*_ENV` whose value is a variable name
(`LAMBDA_TRIGGER_MFE_DIR`). A setting added without a row here fails this test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "configuration.md"
CODE = [REPO / "common" / "lambda_trigger", REPO / "api", REPO / "consumer"]
# Read by the services but documented as a family: the standard AWS chain (boto3's own names).
FAMILIES = ("AWS_",)
_NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Call):  # AliasChoices("A", "B")
        return [s for arg in node.args for s in _strings(arg)]
    return []


def _is_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _reads_environ(call: ast.Call) -> bool:
    """os.environ.get(...) or os.getenv(...)."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "get":
        return _is_environ(func.value)
    return func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os"


def names_in(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "validation_alias":
            found.update(_strings(node.value))
        elif isinstance(node, ast.Call) and node.args and _reads_environ(node):
            found.update(_strings(node.args[0]))
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            found.update(_strings(node.slice))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.endswith("_ENV"):
                found.update(_strings(node.value))
    return {name for name in found if _NAME.match(name)}


def settings_in_code() -> set[str]:
    names: set[str] = set()
    for root in CODE:
        for path in root.rglob("*.py"):
            names |= names_in(path)
    return names


def documented() -> set[str]:
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", PAGE.read_text(encoding="utf-8")))


def test_the_code_reads_settings_the_scan_finds() -> None:
    names = settings_in_code()
    # One of each source the scan understands: a plain alias, AliasChoices, a *_ENV constant.
    assert {"DATAHUB_GMS_URL", "KAFKA_BOOTSTRAP_SERVER", "LAMBDA_TRIGGER_MFE_DIR"} <= names
    assert "LAMBDA_TRIGGER_NATIVE_HISTORY" in names
    assert len(names) > 50


def test_every_setting_is_on_the_page() -> None:
    missing = sorted(
        name for name in settings_in_code() - documented() if not name.startswith(FAMILIES)
    )
    assert not missing, f"docs/configuration.md has no row for {missing}"


def test_the_page_names_no_setting_the_code_does_not_read() -> None:
    page = PAGE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (`[A-Z][^|]*?) \|", page, flags=re.MULTILINE)
    in_rows = {n for row in rows for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}
    stale = sorted(n for n in in_rows - settings_in_code() if not n.startswith(FAMILIES))
    assert not stale, f"docs/configuration.md documents settings nothing reads: {stale}"
