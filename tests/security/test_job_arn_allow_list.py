"""A metadata edit must not choose what runs: DataJob ARNs are allow-listed and tied to the dataset."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from datahub.metadata.schema_classes import (
    DataJobInputOutputClass,
    StructuredPropertiesClass,
    StructuredPropertyValueAssignmentClass,
)

from lambda_trigger_consumer.driver import DriverConfig

from .conftest import POLY, SIP, Env, bearer, emit, make_api, mapping_settings

pytestmark = pytest.mark.integration

PROPERTY = "urn:li:structuredProperty:io.datahub.ingestion.stepFunctionArn"
FOREIGN_ACCOUNT = "999999999999"
FOREIGN_ARN = f"arn:aws:lambda:us-east-1:{FOREIGN_ACCOUNT}:function:exfiltrate"


def _job(env: Env, arn: str, outputs: list[str]) -> str:
    job = f"urn:li:dataJob:(urn:li:dataFlow:(airflow,sec_{uuid.uuid4().hex[:8]},PROD),load)"
    emit(
        env,
        job,
        StructuredPropertiesClass(
            properties=[StructuredPropertyValueAssignmentClass(propertyUrn=PROPERTY, values=[arn])]
        ),
    )
    emit(env, job, DataJobInputOutputClass(inputDatasets=[], outputDatasets=outputs))
    return job


def test_a_foreign_arn_in_a_structured_property_is_never_invoked(
    env: Env, start_consumer: Any
) -> None:
    job = _job(env, FOREIGN_ARN, [SIP])  # tied to the dataset, but no allow-list names it
    start_consumer(driver_config=DriverConfig(job_arn_property_urn=PROPERTY))
    request = env.request(SIP, job_urn=job)

    result = env.wait_status(request.run_id, {"SUCCESS", "FAILURE", "RUNNING"})
    assert result.status == "FAILURE"
    assert "not allowed by the mapping's jobTargets allow-list" in (result.report or "")
    assert FOREIGN_ACCOUNT not in (result.report or "")
    assert not [i for i in env.moto.invocations() if "exfiltrate" in i.function_name]
    assert env.moto.invocations(env.functions["sip"]) == []

    with make_api(
        env, mapping_settings=mapping_settings(env, job_arn_property_urn=PROPERTY)
    ) as api:
        answer = api.post(
            "/api/ingestion/run",
            json={"datasetUrn": SIP, "jobUrn": job},
            headers=bearer(env.users["alice"]),
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "no_target"
    assert FOREIGN_ACCOUNT not in answer.text and "exfiltrate" not in answer.text


def test_an_allowed_arn_runs_only_for_a_dataset_the_job_outputs(
    env: Env, start_consumer: Any
) -> None:
    name = f"sec-{uuid.uuid4().hex[:8]}"
    arn = env.moto.create_lambda(name)
    env.mapping["jobTargets"] = {
        "loaders": {
            "arns": ["arn:aws:lambda:us-east-1:123456789012:function:sec-*"],
            "label": "Loader job",
        }
    }
    job = _job(env, arn, [POLY])
    settings = mapping_settings(env, job_arn_property_urn=PROPERTY)
    with make_api(env, mapping_settings=settings) as api:
        not_tied = api.post(
            "/api/ingestion/run",
            json={"datasetUrn": SIP, "jobUrn": job},
            headers=bearer(env.users["alice"]),
        )
        tied = api.post(
            "/api/ingestion/run",
            json={"datasetUrn": POLY, "jobUrn": job},
            headers=bearer(env.users["alice"]),
        )
    assert not_tied.status_code == 422, not_tied.text
    assert "does not list dataset" in not_tied.json()["message"]
    assert tied.status_code == 202, tied.text
    assert tied.json()["message"] == "Loader job requested"

    start_consumer(driver_config=DriverConfig(job_arn_property_urn=PROPERTY))
    refused = env.request(SIP, job_urn=job)
    assert env.wait_status(refused.run_id, {"SUCCESS", "FAILURE"}).status == "FAILURE"
    result = env.wait_status(tied.json()["runId"], {"SUCCESS", "FAILURE"})
    assert result.status == "SUCCESS", result.report
    assert [i.payload["runId"] for i in env.moto.invocations(name)] == [tied.json()["runId"]]
