"""The api reports the mapping it runs (/readyz, /metrics), and picks up an edited file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from lambda_trigger.mapping import load_mapping
from lambda_trigger.mapping_source import mapping_hash
from lambda_trigger.settings import ApiSettings, DataHubSettings, MappingSettings
from lambda_trigger_api.app import create_app

pytestmark = pytest.mark.integration

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def test_the_api_reports_its_mapping_hash(gms: Any, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(f"rules:\n  - dataset: '{SIP}'\n    target: {{function: one, label: One}}\n")
    first = mapping_hash(load_mapping(str(path), None, None))
    app = create_app(
        ApiSettings(),
        DataHubSettings(gms_url=gms.url, gms_token=gms.admin_token, timeout_seconds=5.0),
        MappingSettings(mapping_file=str(path)),
        registry=CollectorRegistry(),
    )
    with TestClient(app) as api:
        assert api.get("/readyz").json() == {"status": "ok", "mappingHash": first}
        assert f'lambda_trigger_api_mapping_info{{hash="{first}"}} 1.0' in api.get("/metrics").text

        path.write_text(
            f"rules:\n  - dataset: '{SIP}'\n    target: {{function: two, label: Two}}\n"
        )
        second = mapping_hash(load_mapping(str(path), None, None))
        assert second != first
        source = app.state.service.mappings
        assert source.reload_if_changed()  # what the next due check (request or scrape) does
        assert api.get("/readyz").json()["mappingHash"] == second
        metrics = api.get("/metrics").text
        assert f'lambda_trigger_api_mapping_info{{hash="{second}"}} 1.0' in metrics
        assert first not in metrics
