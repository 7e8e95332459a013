from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambda_trigger.runid import is_run_id, new_run_id
from lambda_trigger.urns import (
    InvalidUrnError,
    execution_request_urn,
    parse_dataset_urn,
    run_id_of,
    validate_data_job_urn,
)

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,AwsDataCatalog.financial_data.us_stocks_sip_v2,PROD)"


def test_dataset_urn_parts() -> None:
    ds = parse_dataset_urn(SIP)
    assert (ds.platform, ds.name, ds.env) == (
        "athena",
        "AwsDataCatalog.financial_data.us_stocks_sip_v2",
        "PROD",
    )


def test_dataset_name_with_commas_and_parentheses() -> None:
    ds = parse_dataset_urn("urn:li:dataset:(urn:li:dataPlatform:s3,bucket/a,b(c),DEV)")
    assert ds.name == "bucket/a,b(c)" and ds.env == "DEV"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "non-empty string"),
        (None, "non-empty string"),
        (42, "non-empty string"),
        ("urn:li:dataset:foo", "not a valid dataset URN"),
        ("urn:li:corpuser:alice", "must be a dataset URN, got a corpuser URN"),
        ("urn:li:dataJob:(urn:li:dataFlow:(airflow,f,PROD),j)", "got a dataJob URN"),
        (" " + SIP, "whitespace"),
        (SIP[:-1], "not a valid dataset URN"),
        ("urn:li:dataset:(urn:li:dataPlatform:athena,x" + "y" * 2100 + ",PROD)", "longer than"),
    ],
)
def test_invalid_dataset_urns(value: object, message: str) -> None:
    with pytest.raises(InvalidUrnError, match=message):
        parse_dataset_urn(value)


def test_data_job_urn() -> None:
    job = "urn:li:dataJob:(urn:li:dataFlow:(airflow,example_flow,PROD),example_job)"
    assert validate_data_job_urn(job) == job
    with pytest.raises(InvalidUrnError, match="got a dataset URN"):
        validate_data_job_urn(SIP)
    with pytest.raises(InvalidUrnError, match="not a valid dataJob URN"):
        validate_data_job_urn("urn:li:dataJob:(nope)")


def test_run_ids_are_unique_sortable_and_urn_safe() -> None:
    early = new_run_id(datetime(2026, 1, 1, 12, 0, 0, 1000, tzinfo=UTC))
    late = new_run_id(datetime(2026, 1, 1, 12, 0, 0, 2000, tzinfo=UTC))
    assert early.startswith("lt-20260101T120000001Z-")
    assert early < late
    assert len({new_run_id() for _ in range(2000)}) == 2000
    assert is_run_id(early) and not is_run_id("lt-nope") and not is_run_id("../etc")
    assert run_id_of(execution_request_urn(early)) == early
    with pytest.raises(InvalidUrnError):
        run_id_of("urn:li:dataset:x")
