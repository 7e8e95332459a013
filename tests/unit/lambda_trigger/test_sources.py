"""`sources sync`: which sources a mapping asks for (the DataHub side is in tests/integration)."""

from __future__ import annotations

import json

import pytest

from lambda_trigger.mapping import MappingError, parse_mapping
from lambda_trigger.sources import SOURCE_TYPE, desired_sources, source_urn

SIP = "urn:li:dataset:(urn:li:dataPlatform:athena,db.sip,PROD)"
POLY = "urn:li:dataset:(urn:li:dataPlatform:athena,db.poly,PROD)"

MAPPING = {
    "targets": {"earnings": {"function": "earnings-lambda", "label": "Earnings loader"}},
    "rules": [
        {
            "dataset": SIP,
            "target": "earnings",
            "schedule": {"cron": "0 2 * * 1-5", "timezone": "Europe/Berlin"},
        },
        {"dataset": POLY, "target": {"type": "lambda", "function": "poly"}},
        {"tag": "urn:li:tag:finance", "target": "earnings"},
        {"platform": "athena", "name": "db.*", "target": "earnings"},
    ],
    "default": "earnings",
}


def test_one_source_per_exact_dataset_rule() -> None:
    sources = desired_sources(parse_mapping(MAPPING, "t"), "lambda-trigger")
    assert [s.urn for s in sources] == [
        source_urn("lambda-trigger", SIP),
        source_urn("lambda-trigger", POLY),
    ]
    sip, poly = sources
    assert sip.info.type == SOURCE_TYPE and sip.info.config.executorId == "lambda-trigger"
    assert sip.info.name == "Earnings loader: db.sip"
    assert sip.info.schedule is not None
    assert (sip.info.schedule.interval, sip.info.schedule.timezone) == (
        "0 2 * * 1-5",
        "Europe/Berlin",
    )
    assert json.loads(sip.info.config.recipe) == {
        "source": {
            "type": "lambda-trigger",
            "config": {"target": "earnings", "datasetUrn": SIP, "datasets": [SIP]},
        }
    }
    assert poly.info.schedule is None
    assert poly.info.name == "Ingestion job: db.poly"  # an inline target without a label
    assert json.loads(poly.info.config.recipe)["source"]["config"]["target"] == "rule-2"


def test_source_urns_are_stable_and_per_executor() -> None:
    assert source_urn("a", SIP) == source_urn("a", SIP)
    assert source_urn("a", SIP) != source_urn("b", SIP)
    assert source_urn("a", SIP) != source_urn("a", POLY)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"tag": "urn:li:tag:x", "target": "earnings", "schedule": {"cron": "0 2 * * *"}},
            "dataset",
        ),
        ({"dataset": SIP, "target": "earnings", "schedule": {"cron": "every night"}}, "cron"),
    ],
)
def test_bad_schedules_are_refused(rule: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping({"targets": MAPPING["targets"], "rules": [rule]}, "t")
