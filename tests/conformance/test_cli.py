"""The official `datahub` CLI (acryl-datahub 1.7.0.17) against the GMS double.

What each command sends (datahub/cli/*.py of the installed wheel) and what GMS answers:

- `put`: cli_utils.post_entity, `POST /aspects/?action=ingestProposal` (trailing slash). GMS's
  Rest.li router ignores the trailing slash (routes.py: RestLiRouter.process); AspectResource.
  ingestProposal answers 200.
- `get`: cli_utils.get_entity, `GET /entitiesV2/{url-encoded urn}[?aspects=List(..)]`
  (EntityV2Resource.get -> EntityServiceImpl.getEntityV2 with the key aspect always added);
  with `--aspect` it first calls DataHubGraph.exists, `GET /aspects/{urn}?aspect=<key aspect>`.
- `timeline`: `GET /openapi/v2/timeline/v1/{urn}` (TimelineControllerV2).
- `delete --soft`: DataHubGraph.soft_delete_entity, a `status` {removed: true} UPSERT through
  Rest.li ingestProposal (the CLI client mode does not switch to OpenAPI).
- `delete --hard`: DataHubGraph.hard_delete_entity, `POST /entities?action=delete {urn}`
  (EntityResource.deleteEntity -> EntityServiceImpl.deleteUrn).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import POLYGON, Cli, MclTail, read_from_broker, request_input, request_urn
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.rest_emitter import DatahubRestEmitter
from datahub.metadata.schema_classes import DatasetPropertiesClass

from devstack.gms_double import GmsDouble

pytestmark = pytest.mark.integration

INPUT = "dataHubExecutionRequestInput"
KEY = "dataHubExecutionRequestKey"
SYSTEM_ACTOR = "urn:li:corpuser:__datahub_system"
ADMIN = "urn:li:corpuser:datahub"


def _put(cli: Cli, tmp_path: Path, urn: str) -> dict[str, object]:
    body = request_input()
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body))
    done = cli("put", "--urn", urn, "--aspect", INPUT, "-d", str(request))
    assert done.returncode == 0, done.stderr
    assert "Update succeeded with status 200" in done.stdout
    return body


def test_put_writes_the_request_and_produces_its_mcls(
    cli: Cli, double: GmsDouble, mcls: MclTail, tmp_path: Path, kafka_bootstrap: str
) -> None:
    urn = request_urn()
    body = _put(cli, tmp_path, urn)

    assert double.get_aspect(urn, INPUT) == body
    produced = mcls.new()
    # DefaultAspectsUtil adds the missing key aspect to the batch (CREATE, If-None-Match: *),
    # then the proposal itself: one MCL each, keyed by the entity URN (KafkaEventProducer).
    assert sorted(m.aspect_name for m in produced) == sorted([KEY, INPUT])
    request_mcl = next(m for m in produced if m.aspect_name == INPUT)
    assert request_mcl.key == urn
    assert request_mcl.value["changeType"] == "UPSERT"
    assert request_mcl.aspect == body
    assert request_mcl.value["created"]["actor"] == ADMIN  # the authenticated writer
    assert request_mcl.value["previousAspectValue"] is None
    key, value = read_from_broker(kafka_bootstrap, request_mcl)
    assert key == urn.encode() and value == request_mcl.raw


def test_get_shows_the_request_by_raw_and_by_encoded_urn(cli: Cli, tmp_path: Path) -> None:
    urn = request_urn()
    body = _put(cli, tmp_path, urn)
    encoded = urn.replace(":", "%3A")

    by_raw = cli("get", "--urn", urn)
    by_encoded = cli("get", "--urn", encoded)  # cli_utils.get_entity passes urn%3A... as is
    assert by_raw.returncode == 0, by_raw.stderr
    assert by_encoded.returncode == 0, by_encoded.stderr
    # getEntityV2 answers every stored aspect plus the key (EntityUtils.toEntityResponse).
    expected = {INPUT: body, KEY: {"id": urn.rsplit(":", 1)[1]}}
    assert by_raw.json() == expected
    assert by_encoded.json() == expected


def test_get_one_aspect(cli: Cli, tmp_path: Path) -> None:
    urn = request_urn()
    body = _put(cli, tmp_path, urn)
    done = cli("get", "--urn", urn, "--aspect", INPUT)
    assert done.returncode == 0, done.stderr
    assert done.json() == {INPUT: body}

    details = cli("get", "--urn", urn, "--aspect", INPUT, "--details")
    assert details.returncode == 0, details.stderr
    # --details prints the EnvelopedAspect minus name/version/type: value, created,
    # systemMetadata (EntityAspect.EntitySystemAspect.toEnvelopedAspects).
    envelope = details.json()[INPUT]
    assert envelope["value"] == body
    assert envelope["created"]["actor"] == ADMIN
    assert envelope["systemMetadata"]["version"] == "1"


def test_get_of_an_unknown_request_says_not_found(cli: Cli) -> None:
    urn = request_urn("missing")
    # Without --aspect: getEntityV2 answers 200 with only the key aspect built from the URN
    # (getCorrespondingAspects, alwaysIncludeKeyAspect), which the CLI reports as not found.
    plain = cli("get", "--urn", urn)
    assert plain.returncode == 1
    assert f"urn {urn} not found" in plain.stderr
    # With --aspect: exists() reads the key aspect, GMS answers 404 (no stored key row).
    with_aspect = cli("get", "--urn", urn, "--aspect", INPUT)
    assert with_aspect.returncode == 1
    assert f"urn {urn} not found" in with_aspect.stderr


def test_timeline_of_a_request_is_a_server_error(cli: Cli, tmp_path: Path) -> None:
    urn = request_urn()
    _put(cli, tmp_path, urn)
    done = cli("timeline", "--urn", urn, "--category", "TAG")
    assert done.returncode == 0, done.stderr
    # TimelineServiceImpl.getAspectsFromElements: only datasets and glossary terms have change
    # event generators; any other entity type throws UnsupportedOperationException, which the
    # OpenAPI exception handler leaves unmapped: 500. The CLI prints the status it got.
    printed = json.loads(done.stdout[done.stdout.index("{") :])
    assert printed["status"] == 500


def test_soft_delete_of_a_request_is_refused(
    cli: Cli, double: GmsDouble, mcls: MclTail, tmp_path: Path
) -> None:
    urn = request_urn()
    body = _put(cli, tmp_path, urn)
    mcls.new()
    done = cli("delete", "--urn", urn, "--soft", "-f")
    # dataHubExecutionRequest has no `status` aspect (entity-registry.yml), so the UPSERT is a
    # ValidationException (ValidationApiUtils.validateAspect) -> AspectResource: 422. The CLI
    # reports it per URN and still exits 0.
    assert done.returncode == 0, done.stderr
    assert "Unknown aspect status for entity dataHubExecutionRequest" in done.stdout
    assert "'status': 422" in done.stdout
    assert mcls.new() == []
    assert double.get_aspect(urn, INPUT) == body


def test_soft_delete_of_a_dataset_upserts_status_removed(
    cli: Cli, double: GmsDouble, mcls: MclTail
) -> None:
    dataset = POLYGON.replace("polygon_prices", f"soft_{double.mcl_count()}")
    DatahubRestEmitter(double.url, token=double.admin_token, retry_max_times=0).emit_mcp(
        MetadataChangeProposalWrapper(entityUrn=dataset, aspect=DatasetPropertiesClass(name="soft"))
    )
    mcls.new()
    done = cli("delete", "--urn", dataset, "--soft", "-f")
    assert done.returncode == 0, done.stderr
    assert "Soft deleted 1 entities" in done.stdout
    # A soft delete is an ordinary UPSERT of status {removed: true} (DataHubGraph.
    # set_soft_delete_status): one UPSERT MCL of `status`, runId "__datahub-delete-cli".
    produced = mcls.new()
    assert [(m.aspect_name, m.value["changeType"]) for m in produced] == [("status", "UPSERT")]
    assert produced[0].aspect == {"removed": True}
    assert produced[0].value["systemMetadata"]["runId"] == "__datahub-delete-cli"
    assert double.get_aspect(dataset, "status") == {"removed": True}


def test_hard_delete_of_a_request_removes_it_with_one_key_delete_mcl(
    cli: Cli, double: GmsDouble, mcls: MclTail, tmp_path: Path
) -> None:
    urn = request_urn()
    _put(cli, tmp_path, urn)
    key_sm = double.system_metadata(urn, KEY)
    mcls.new()

    done = cli("delete", "--urn", urn, "--hard", "-f")
    assert done.returncode == 0, done.stderr
    # DeleteEntityResponse.rows = every row of the entity (EbeanAspectDao.deleteUrn): the key
    # and the request.
    assert "Hard deleted 1 entities (impacts 2 versioned rows and 0 timeseries" in done.stdout

    # EntityServiceImpl.deleteUrn: one MCL, the key aspect's DELETE, produced with
    # PegasusUtils.constructMCL(null, ..., newValue=null, newSystemMetadata=null, oldValue=key,
    # oldSystemMetadata=key's) and createSystemAuditStamp().
    produced = mcls.new()
    assert len(produced) == 1
    deleted = produced[0]
    assert deleted.key == urn
    assert deleted.value["changeType"] == "DELETE"
    assert deleted.aspect_name == KEY
    assert deleted.value["aspect"] is None and deleted.value["systemMetadata"] is None
    assert json.loads(deleted.value["previousAspectValue"]["value"]) == {
        "id": urn.rsplit(":", 1)[1]
    }
    assert deleted.value["previousSystemMetadata"]["runId"] == key_sm["runId"]  # type: ignore[index]
    assert deleted.value["created"]["actor"] == SYSTEM_ACTOR

    assert double.get_aspect(urn, INPUT) is None and double.get_aspect(urn, KEY) is None
    gone = cli("get", "--urn", urn)
    assert gone.returncode == 1 and f"urn {urn} not found" in gone.stderr

    again = cli("delete", "--urn", urn, "--hard", "-f")
    # deleteUrn of an entity without a key row: an empty result, no MCL.
    assert "Hard deleted 1 entities (impacts 0 versioned rows" in again.stdout
    assert mcls.new() == []
