"""One MFE config per DataHub host design (frontend-patch/README.md, "One config per host
design"): each file follows its design's YAML rules, as DataHub's sources state them (the
loader's required fields: datahub-web-react/src/app/mfeframework/mfeConfigLoader.tsx; the two
`entity.detail.tab` designs: /work/shared/datahub-facts.md section 9, DataHub's "Micro Frontends"
docs page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

MFE = Path(__file__).resolve().parents[2] / "frontend-patch" / "mfe"
TAB = "entity.detail.tab"


def _entries(name: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load((MFE / name).read_text())
    entries = doc["microFrontends"]
    assert isinstance(entries, list) and entries
    return entries


def _loader_valid(entry: dict[str, Any]) -> None:
    """mfeConfigLoader.tsx: id, label, remoteEntry, module `<remote>/<exposed>`, boolean flags."""
    for key in ("id", "label", "remoteEntry", "module"):
        assert isinstance(entry.get(key), str) and entry[key], key
    assert entry["module"] == "lambdaTriggerMFE/mount"
    assert entry["remoteEntry"] == "/api/ingestion/mfe/remoteEntry.js"
    assert isinstance(entry["flags"]["enabled"], bool)
    assert isinstance(entry["flags"]["showInNav"], bool)


def _nav(entries: list[dict[str, Any]]) -> dict[str, Any]:
    (nav,) = [e for e in entries if "placement" not in e]
    assert nav["path"].startswith("/") and nav["navIcon"] and nav["flags"]["showInNav"] is True
    return nav


def _tab(entries: list[dict[str, Any]]) -> dict[str, Any]:
    (tab,) = [e for e in entries if (e.get("placement") or {}).get("slot") == TAB]
    assert tab["flags"]["showInNav"] is False
    return tab


@pytest.mark.parametrize(
    "name", ["mfe.config.nav-only.yaml", "mfe.config.yaml", "mfe.config.slot-placement.yaml"]
)
def test_every_entry_passes_the_loader(name: str) -> None:
    entries = _entries(name)
    for entry in entries:
        _loader_valid(entry)
    assert len({e["id"] for e in entries}) == len(entries)
    _nav(entries)


def test_nav_only_has_no_slot_entry() -> None:
    assert [e["id"] for e in _entries("mfe.config.nav-only.yaml")] == ["lambda-runs"]


def test_contract_design_tab_has_required_contract_version_and_entity_types() -> None:
    tab = _tab(_entries("mfe.config.yaml"))
    placement = tab["placement"]
    assert placement["contractVersion"] == "1.0.0"
    assert placement["entityTypes"] == ["dataset"]
    # First hosts require path and navIcon on every entry: the tab keeps them.
    assert tab["path"].startswith("/") and tab["navIcon"]


def test_placement_design_tab_names_the_tab_and_has_no_contract_version() -> None:
    tab = _tab(_entries("mfe.config.slot-placement.yaml"))
    placement = tab["placement"]
    assert "contractVersion" not in placement and "version" not in placement
    assert placement["tabName"] == "Ingestion runs"
    assert placement.get("entityTypes", ["dataset"]) == ["dataset"]
    # Tabs are routed by name: it must not be one of the built-in dataset tabs.
    assert placement["tabName"] not in {"Columns", "Lineage", "Schema", "Documentation", "Runs"}
    assert "path" not in tab  # nav.page only in this design
