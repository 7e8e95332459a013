"""docs/versions.toml, the version matrix, agrees with the code and with docs/versions.md.

Each pin or release the matrix states is read from where the code keeps it, so changing one
without the other fails here: the acryl-datahub pin (pyproject.toml, requirements-dev.lock), the
GMS double's release and its /config answer, the header patch's file and the React / antd versions
the component is tested with, and the slots the MFE config declares.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
import yaml

from tests.docs.versions_matrix import PAGE, REPO, load, page_table, render


@pytest.fixture(scope="module")
def matrix() -> dict[str, Any]:
    return load()


def test_page_holds_the_rendered_matrix(matrix: dict[str, Any]) -> None:
    assert page_table(PAGE.read_text(encoding="utf-8")) == render(matrix), (
        "docs/versions.md is out of date: .venv/bin/python -m tests.docs.versions_matrix --write"
    )


def test_client_pin_is_the_matrix_client(matrix: dict[str, Any]) -> None:
    client = matrix["client"]["acryl-datahub"]
    with (REPO / "pyproject.toml").open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    assert f"acryl-datahub=={client}" in dependencies
    lock = (REPO / "requirements-dev.lock").read_text(encoding="utf-8").splitlines()
    assert f"acryl-datahub=={client}" in lock
    # The row of the release the project is made for names the pinned client exactly.
    (made_for,) = [
        r for r in matrix["datahub"] if r["release"] == matrix["header_patch"]["made_for"]
    ]
    assert made_for["client"] == client


def test_gms_double_models_the_matrix_release(matrix: dict[str, Any]) -> None:
    server = (REPO / "devstack" / "gms_double" / "server.py").read_text(encoding="utf-8")
    version = re.search(r'^DATAHUB_VERSION = "([^"]+)"', server, flags=re.MULTILINE)
    assert version and version.group(1) == matrix["gms_double"]["models"]
    # GET /config's managedIngestion.defaultCliVersion, and the scheduler's copy of it.
    assert f'"defaultCliVersion": "{matrix["gms_double"]["default_cli_version"]}"' in server
    scheduler = (REPO / "devstack" / "gms_double" / "scheduler.py").read_text(encoding="utf-8")
    assert f'DEFAULT_CLI_VERSION = "{matrix["gms_double"]["default_cli_version"]}"' in scheduler
    (row,) = [r for r in matrix["datahub"] if r["release"] == matrix["gms_double"]["models"]]
    assert row["gms"].startswith("modelled")
    assert all(not r["gms"].startswith("modelled") for r in matrix["datahub"] if r is not row), (
        "the double models one release"
    )


def test_header_patch_is_the_file_for_its_release(matrix: dict[str, Any]) -> None:
    patch = matrix["header_patch"]
    path = REPO / patch["file"]
    assert path.is_file()
    assert patch["made_for"] in path.name
    text = path.read_text(encoding="utf-8")
    assert "DefaultEntityHeader.tsx" in text
    package = json.loads((REPO / "frontend-patch" / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["react"] == patch["react"]
    assert package["devDependencies"]["antd"] == patch["antd"]


def test_mfe_config_declares_both_slot_designs(matrix: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO / matrix["mfe"]["config"]).read_text(encoding="utf-8"))
    entries = config["microFrontends"]
    nav = [e for e in entries if e["flags"].get("showInNav") and "placement" not in e]
    tabs = [e for e in entries if (e.get("placement") or {}).get("slot") == "entity.detail.tab"]
    assert len(nav) == 1, "one nav page entry"
    assert len(tabs) == 1 and tabs[0]["placement"]["entityTypes"] == ["dataset"]
    assert "entity.detail.tab" in matrix["mfe"]["entity_tab"]
    for row in matrix["datahub"]:
        assert "nav page" in row["mfe"], f"{row['release']}: say what the nav page does there"


def test_every_row_has_every_column(matrix: dict[str, Any]) -> None:
    releases = [row["release"] for row in matrix["datahub"]]
    assert len(set(releases)) == len(releases)
    for row in matrix["datahub"]:
        assert set(row) == {"release", "header_patch", "mfe", "gms", "client"}, row["release"]
        assert all(isinstance(v, str) and v.strip() for v in row.values()), row["release"]
