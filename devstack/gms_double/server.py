"""GmsDouble: the project's one protocol-faithful test double of DataHub GMS (v1.7.0).

It serves, on one HTTP port, routed as GMS's servlets route (routes.py):

- GMS's Rest.li API: `POST /aspects?action=ingestProposal|ingestProposalBatch`,
  `GET /aspects/{urn}?aspect=&version=`, `GET /entitiesV2/{urn}[?aspects=List(..)]`,
  `GET /entitiesV2?ids=List(..)`, `POST /entities?action=delete` (each with or without a trailing
  slash, raw or URL-encoded URN keys); the OpenAPI v3 entity API
  (`POST /openapi/v3/entity/{entityName}`, `GET /openapi/v3/entity/{entityName}/{urn}/{aspect}`)
  and the timeline (`GET /openapi/v2/timeline/v1/{urn}`); GMS's write semantics (ingest.py) and
  a MetadataChangeLog produced to a real Kafka broker for every stored change (mcl.py);
- `GET /config`, GMS's GraphQL `POST /api/graphql` (bearer token) and datahub-frontend's
  `POST /api/v2/graphql` (session cookie), answering `me` and `scrollAcrossEntities` (gql.py,
  search.py);
- GMS's internal schema registry under `/schema-registry/api/` (schema_registry.py).

State lives in memory and, with `state_file`, in a SQLite file written row by row (persist.py).
Everything a behaviour was taken from is cited in the module that implements it.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

from devstack.gms_double import api, gql, routes
from devstack.gms_double import entity_registry as reg
from devstack.gms_double.auth import (
    UNAUTHORIZED_MESSAGE,
    X_DATAHUB_ACTOR,
    Credentials,
    Principal,
    is_excluded,
    jetty_error_page,
)
from devstack.gms_double.errors import GmsError, GmsUnsupportedOperation
from devstack.gms_double.faults import Faults
from devstack.gms_double.glue import DEFAULT_REGISTRY, GlueMclCodec
from devstack.gms_double.ingest import SYSTEM_ACTOR, WritePipeline, now_ms
from devstack.gms_double.mcl import (
    Codec,
    Delivery,
    MclCodec,
    MclProducer,
    ProducedMcl,
    create_mcl_topics,
)
from devstack.gms_double.persist import StateDb
from devstack.gms_double.scheduler import IngestionSchedulerDouble
from devstack.gms_double.schema_registry import (
    TIMESERIES_MCL_TOPIC,
    VERSIONED_MCL_TOPIC,
    Answer,
    InternalSchemaRegistry,
)
from devstack.gms_double.search import SearchIndex
from devstack.gms_double.seed import ADMIN_USER, seed
from devstack.gms_double.store import AspectStore
from devstack.gms_double.write_auth import (
    ExecuteValidator,
    api_write_denied,
    datahub_version_from_env,
    execute_validator_for,
)
from devstack.lifecycle import StartStop

log = logging.getLogger(__name__)

DATAHUB_VERSION = "v1.7.0"
SCHEMA_REGISTRY_PREFIX = routes.SCHEMA_REGISTRY_PREFIX


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], double: GmsDouble) -> None:
        self.double = double
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive like Jetty: the SDK's requests.Session pools connections.
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as GMS's Jetty does (org.eclipse.jetty.server.ServerConnector: accepted
    # sockets get TCP_NODELAY, `acceptedTcpNoDelay` defaults to true). Without it a response
    # goes out as headers, then body, and the body waits for the client's delayed ACK of the
    # headers: 40 ms on Linux, on every request the consumer and the api make.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.double._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.double._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- plumbing ----------------------------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if body is None:
            self._send(status, b"", None, headers)
        else:
            self._send(status, json.dumps(body).encode("utf-8"), "application/json", headers)

    def _send_reply(self, reply: api.Reply, restli: bool = False) -> None:
        headers = dict(reply.headers)
        if restli:
            headers.setdefault("X-RestLi-Protocol-Version", "2.0.0")
        self._send_json(reply.status, reply.body, headers)

    def _send_answer(self, answer: Answer) -> None:
        if answer.body is None:
            self._send(answer.status, b"", None)
        elif answer.raw_text:
            self._send(answer.status, str(answer.body).encode("utf-8"), "application/json")
        else:
            self._send_json(answer.status, answer.body)

    # -- routing -------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        double = self.server.double
        split = urlsplit(self.path)
        raw_path = split.path
        path = unquote(raw_path)
        query = routes.query_params(split.query)
        body = self._body()
        double._count_request(method, raw_path, body)

        if double.faults.slow_seconds:
            time.sleep(double.faults.slow_seconds)
        failure = double.faults.take_failure()
        if failure is not None:
            # OpenAPI's generic handler body; Rest.li clients only look at the status.
            self._send_json(
                failure.status,
                {"error": "Internal server error occurred", "injectedByGmsDouble": True},
            )
            return

        route = routes.match(method, self.path)
        try:
            if route is not None and route.handler == "schema_registry":
                self._schema_registry(method, route.params["sub"], query, body)
            elif route is not None and route.handler == "config":
                self._send_json(200, double.config())
            elif route is not None and route.handler == "health":
                self._send(200, b"GOOD", "text/plain")
            elif route is not None and route.handler == "frontend_graphql":
                self._frontend_graphql(body)
            else:
                self._gms(method, route, path, query, split.query, body)
        except Exception:
            log.exception("GMS double failed on %s %s", method, self.path)
            self._send_json(500, {"error": "Internal server error occurred"})

    def _principal(self) -> Principal | None:
        # auth.Credentials.authenticate: token table, or NoOpAuthenticator when auth is off.
        return self.server.double.credentials.authenticate(
            self.headers.get("Authorization"), self.headers.get(X_DATAHUB_ACTOR)
        )

    def _session(self, principal: Principal) -> Principal | None:
        # API writes hand the caller's AuthorizationSession to the write validators; with GMS
        # authentication off there is none (write_auth.py).
        return principal if self.server.double.credentials.auth_enabled else None

    def _api_write_denied(self, urns: list[str], principal: Principal) -> str | None:
        # REST API authorization needs an authenticated session: with auth off, none applies.
        if not self.server.double.credentials.auth_enabled:
            return None
        return api_write_denied(urns, principal)

    def _gms(
        self,
        method: str,
        route: routes.Route | None,
        path: str,
        query: dict[str, str],
        raw_query: str,
        body: bytes,
    ) -> None:
        principal = self._principal()
        if principal is None and not is_excluded(path):
            # AuthenticationEnforcementFilter: sendError(401, "Unauthorized to perform this action.")
            self._send(
                401,
                jetty_error_page(401, UNAUTHORIZED_MESSAGE, path),
                "text/html;charset=iso-8859-1",
            )
            return
        if route is None:
            self._no_endpoint(method, path)
            return
        assert principal is not None
        handler, params = route.handler, route.params
        if handler == "restli.ingest":
            self._restli_ingest(principal, params["action"], body)
        elif handler == "restli.get_aspect":
            self._restli_get(params["urn"], query)
        elif handler == "restli.get_entity_v2":
            self._restli_entity_v2(params["urn"], routes.raw_query_params(raw_query))
        elif handler == "restli.batch_get_entity_v2":
            self._restli_batch_entity_v2(routes.raw_query_params(raw_query))
        elif handler == "restli.delete_entity":
            self._restli_delete(body)
        elif handler == "openapi.create":
            self._openapi_create(principal, params["entity"], query, body)
        elif handler == "openapi.get_aspect":
            self._openapi_get_aspect(params["entity"], params["urn"], params["aspect"], query)
        elif handler == "openapi.timeline":
            self._openapi_timeline(params["urn"])
        elif handler == "graphql":
            self._send_json(
                200,
                gql.execute(
                    principal,
                    _json_or_none(body),
                    self.server.double.search,
                    self.server.double.scheduler,
                ),
            )
        else:  # pragma: no cover - routes.match only returns the handlers above
            self._no_endpoint(method, path)

    def _no_endpoint(self, method: str, path: str) -> None:
        if path.startswith(("/openapi/", "/api/")):
            # GlobalControllerExceptionHandler.handleNoHandlerFoundException
            self._send_json(404, {"error": f"No endpoint {method} {self.path}."})
        else:
            # RestLiRouter: RoutingException(404) for an unknown resource or method.
            self._send_reply(
                api.restli_error(404, f"No resource or method for {method} {path}"), restli=True
            )

    # -- GMS endpoints -------------------------------------------------------------------------

    def _restli_ingest(self, principal: Principal, action: str, body: bytes) -> None:
        double = self.server.double
        try:
            parsed = json.loads(body or b"null")
        except json.JSONDecodeError:
            self._send_reply(api.restli_error(400, "Cannot parse request entity"), restli=True)
            return
        try:
            proposals = api.restli_ingest_body(action, parsed)
            denied = self._api_write_denied([p.entity_urn for p in proposals], principal)
            if denied is not None:
                self._send_reply(api.restli_error(403, denied), restli=True)
                return
            double._ingest(proposals, principal.actor_urn, self._session(principal))
        except GmsError as exc:
            self._send_reply(api.restli_error_for(exc), restli=True)
            return
        self._send_reply(api.Reply(200, {"value": api.RESTLI_SUCCESS}), restli=True)

    def _restli_get(self, urn: str, query: dict[str, str]) -> None:
        double = self.server.double
        aspect = query.get("aspect")
        try:
            reg.parse_urn(urn)
            version = int(query.get("version", "0") or 0)
        except (GmsError, ValueError) as exc:
            self._send_reply(api.restli_error(400, str(exc)), restli=True)
            return
        if not aspect:
            # getVersionedAspect with a null aspect name fails inside GMS.
            self._send_reply(
                api.restli_error(500, "aspect query parameter is required"), restli=True
            )
            return
        found = double._read(urn, aspect, version)
        if found is None or reg.is_timeseries(aspect) or reg.aspect_class(aspect) is None:
            self._send_reply(api.restli_not_found(), restli=True)
            return
        row, number = found
        self._send_reply(api.restli_versioned_aspect(aspect, row, number), restli=True)

    def _openapi_create(
        self, principal: Principal, entity_name: str, query: dict[str, str], body: bytes
    ) -> None:
        double = self.server.double
        is_async = api.truthy(query.get("async"), True)
        with_sm = api.truthy(query.get("systemMetadata"), False)
        try:
            reg.require_entity_for_path(entity_name)
            try:
                parsed = json.loads(body or b"null")
            except json.JSONDecodeError as exc:
                self._send_json(400, {"error": "Invalid JSON format", "message": str(exc)})
                return
            proposals = api.openapi_proposals(parsed)
            denied = self._api_write_denied([p.entity_urn for p in proposals], principal)
            if denied is not None:
                self._send_json(403, {"error": denied})
                return
            results = double._ingest(proposals, principal.actor_urn, self._session(principal))
        except GmsError as exc:
            self._send_reply(api.openapi_error_for(exc))
            return
        self._send_json(202 if is_async else 200, api.openapi_entity_list(results, with_sm))

    def _openapi_get_aspect(
        self, entity_name: str, urn: str, aspect: str, query: dict[str, str]
    ) -> None:
        double = self.server.double
        try:
            spec = reg.require_entity_for_path(entity_name)
            reg.parse_urn(urn)
            version = int(query.get("version", "0") or 0)
        except (GmsError, ValueError) as exc:
            self._send_reply(
                api.openapi_error_for(exc)
                if isinstance(exc, GmsError)
                else api.Reply(400, {"error": str(exc)})
            )
            return
        canonical = reg.aspect_in_entity_ignore_case(spec, aspect)
        with_sm = api.truthy(query.get("systemMetadata"), False)
        row = None
        if canonical is not None:
            if reg.is_timeseries(canonical):
                row = double._read_timeseries(urn, canonical)
            else:
                found = double._read(urn, canonical, version)
                row = found[0] if found else None
        if row is None:
            self._send(404, b"", None, {"X-DataHub-Not-Found": "ENTITY"})
            return
        self._send_json(200, api.openapi_aspect(row, with_sm))

    def _restli_entity_v2(self, urn: str, raw_query: dict[str, str]) -> None:
        """EntityV2Resource.get -> EntityServiceImpl.getEntityV2: an EntityResponse. The key
        aspect is always added unless `alwaysIncludeKeyAspect=false`, so an entity that was
        never written still answers 200 with only its key aspect (what the SDK warns about)."""
        try:
            reg.parse_urn(urn)
            aspects = _restli_aspects_param(raw_query)
        except (GmsError, ValueError) as exc:
            self._send_reply(api.restli_error(400, str(exc)), restli=True)
            return
        include_key = raw_query.get("alwaysIncludeKeyAspect", "true").lower() != "false"
        response = self.server.double._entity_response(urn, aspects, include_key)
        if response is None:
            # A null EntityResponse from a Rest.li GET resource method is a 404.
            self._send_reply(api.restli_not_found(), restli=True)
            return
        self._send_reply(api.Reply(200, response), restli=True)

    def _restli_batch_entity_v2(self, raw_query: dict[str, str]) -> None:
        """EntityV2Resource.batchGet: Rest.li's BatchKVResponse {results, statuses, errors};
        a URN of another entity type than the first is looked up all the same."""
        try:
            urns = routes.parse_restli_list(raw_query["ids"])
            for urn in urns:
                reg.parse_urn(urn)
            aspects = _restli_aspects_param(raw_query)
        except (GmsError, ValueError) as exc:
            self._send_reply(api.restli_error(400, str(exc)), restli=True)
            return
        include_key = raw_query.get("alwaysIncludeKeyAspect", "true").lower() != "false"
        results: dict[str, Any] = {}
        for urn in urns:
            response = self.server.double._entity_response(urn, aspects, include_key)
            if response is not None:
                results[urn] = response
        self._send_reply(
            api.Reply(200, {"results": results, "statuses": {}, "errors": {}}), restli=True
        )

    def _restli_delete(self, body: bytes) -> None:
        """EntityResource.deleteEntity (`POST /entities?action=delete {urn, aspectName?, ...}`):
        answers the action's DeleteEntityResponse as {"value": {urn, rows, timeseriesRows}}."""
        parsed = _json_or_none(body)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("urn"), str):
            self._send_reply(
                api.restli_error(
                    400,
                    "Input field validation failure, reason: ERROR :: /urn :: field is required "
                    "but not found and has no default value",
                ),
                restli=True,
            )
            return
        urn = parsed["urn"]
        aspect_name = parsed.get("aspectName")
        try:
            reg.parse_urn(urn)
            if aspect_name is not None and not reg.is_timeseries(str(aspect_name)):
                # "Not supported for non-timeseries aspect %s." (UnsupportedOperationException)
                raise GmsUnsupportedOperation(
                    f"Not supported for non-timeseries aspect {aspect_name}."
                )
            if aspect_name is not None:
                rows, timeseries = 0, self.server.double._delete_timeseries(urn, str(aspect_name))
            else:
                rows, timeseries = self.server.double._delete_urn(urn)
        except GmsError as exc:
            self._send_reply(api.restli_error_for(exc), restli=True)
            return
        value: dict[str, Any] = {"urn": urn, "timeseriesRows": timeseries}
        if aspect_name is None:
            value["rows"] = rows
        self._send_reply(api.Reply(200, {"value": value}), restli=True)

    def _openapi_timeline(self, urn: str) -> None:
        """TimelineControllerV2.getTimeline -> TimelineServiceImpl.getTimeline: entity types
        without change-event generators (everything but dataset and glossaryTerm, e.g.
        dataHubExecutionRequest) throw UnsupportedOperationException("Entity Type ... not
        supported"), which GlobalControllerExceptionHandler does not map: 500."""
        try:
            parsed = reg.parse_urn(urn)
        except GmsError as exc:
            self._send_reply(api.openapi_error_for(exc))
            return
        if parsed.entity_type in ("dataset", "glossaryTerm"):
            self._send_json(
                501, {"error": "GMS test double: timeline diffs are not modelled for this entity"}
            )
            return
        self._send_json(500, {"error": "Internal server error occurred"})

    # -- frontend --------------------------------------------------------------------------------

    def _frontend_graphql(self, body: bytes) -> None:
        credentials = self.server.double.credentials
        principal = credentials.by_cookie_header(self.headers.get("Cookie"))
        if principal is None and self.headers.get("Authorization"):
            # The frontend forwards an Authorization header to GMS, which authenticates it.
            principal = self._principal()
        if principal is None:
            # datahub-frontend Authenticator.onUnauthorized: Play's unauthorized(), empty body.
            self._send(401, b"", None)
            return
        double = self.server.double
        self._send_json(
            200, gql.execute(principal, _json_or_none(body), double.search, double.scheduler)
        )

    # -- schema registry -------------------------------------------------------------------------

    def _schema_registry(self, method: str, sub: str, query: dict[str, str], body: bytes) -> None:
        registry = self.server.double.schema_registry
        if not self.server.double.registry_authorized(self.headers.get("Authorization")):
            # Confluent Schema Registry with basic auth (RestConfig authentication.method
            # BASIC): 401, a WWW-Authenticate challenge and its error body.
            self._send_json(
                401,
                {"error_code": 401, "message": "Unauthorized"},
                {"WWW-Authenticate": 'Basic realm="SchemaRegistry"'},
            )
            return
        parts = [unquote(p) for p in sub.strip("/").split("/") if p]
        answer: Answer
        if method == "GET" and not parts:
            answer = Answer(200, None)
        elif method == "GET" and parts == ["config"]:
            answer = registry.top_level_config()
        elif method == "GET" and len(parts) == 2 and parts[0] == "config":
            answer = registry.subject_config(parts[1])
        elif method == "GET" and parts == ["schemas", "types"]:
            answer = registry.schema_types()
        elif method == "GET" and len(parts) in (3, 4) and parts[:2] == ["schemas", "ids"]:
            try:
                schema_id = int(parts[2])
            except ValueError:
                answer = Answer(400, None)
            else:
                if len(parts) == 4 and parts[3] == "schema":
                    answer = registry.get_schema_only(schema_id)
                elif len(parts) == 3:
                    answer = registry.get_schema_by_id(
                        schema_id, api.truthy(query.get("fetchMaxId"), False)
                    )
                else:
                    answer = Answer(404, None)
        elif method == "GET" and parts == ["subjects"]:
            answer = registry.list_subjects()
        elif len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            answer = (
                registry.list_versions(parts[1])
                if method == "GET"
                else registry.register(parts[1])
                if method == "POST"
                else Answer(405, None)
            )
        elif (
            method == "GET"
            and len(parts) == 4
            and parts[0] == "subjects"
            and parts[2] == "versions"
        ):
            answer = registry.get_schema_by_version(parts[1], parts[3])
        elif (
            method == "GET"
            and len(parts) == 5
            and parts[0] == "subjects"
            and parts[2] == "versions"
            and parts[4] == "schema"
        ):
            found = registry.get_schema_by_version(parts[1], parts[3])
            answer = (
                Answer(found.status, found.body["schema"], raw_text=True)
                if found.status == 200
                else found
            )
        else:
            answer = Answer(404, None)
        self._send_answer(answer)


def _restli_aspects_param(raw_query: dict[str, str]) -> list[str] | None:
    # `aspects=List(a,b)`; absent: every aspect of the entity (getEntityAspectNames).
    raw = raw_query.get("aspects")
    return routes.parse_restli_list(raw) if raw is not None else None


def _await(pending: list[object]) -> None:
    """Wait for every MCL of a write to be acknowledged (raises "Failed to produce MCLs")."""
    for delivery in pending:
        if isinstance(delivery, Delivery):
            delivery.wait()


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError:
        return None


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    graphql: str = ""  # the start of a GraphQL request's query


class GmsDouble(StartStop):
    """A DataHub GMS (and datahub-frontend GraphQL) stand-in producing real MCLs to Kafka.

    `GmsDouble(bootstrap_servers, host, port, state_file)`; `start()` serves in a background
    thread (port 0 picks a free port), `stop()` ends it. Test helpers below the properties.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        *,
        admin_token: str | None = None,
        versioned_partitions: int = 3,
        timeseries_partitions: int = 1,
        create_topics: bool = True,
        seed_on_empty: bool = True,
        versioned_topic: str = VERSIONED_MCL_TOPIC,
        timeseries_topic: str = TIMESERIES_MCL_TOPIC,
        schema_registry_type: Literal["INTERNAL", "AWS_GLUE"] = "INTERNAL",
        glue_endpoint_url: str | None = None,
        glue_region: str = "us-east-1",
        glue_registry_name: str = DEFAULT_REGISTRY,
        glue_compression: Literal["NONE", "ZLIB"] = "NONE",
        schema_registry_user_info: str | None = None,
        datahub_version: str | None = None,
        kafka_config: Mapping[str, Any] | None = None,
    ) -> None:
        """`schema_registry_type="AWS_GLUE"`: MCLs in Glue framing, schemas registered in the
        Glue registry at `glue_endpoint_url` (glue.py). `schema_registry_user_info`
        ("user:password"): the Confluent-compatible endpoint under /schema-registry/api/
        answers only requests with that basic auth, as a secured registry does."""
        self.bootstrap_servers = bootstrap_servers
        # The DataHub release the double behaves as where releases differ (write_auth.py):
        # the argument, else GMS_DOUBLE_DATAHUB_VERSION, else v1.7.0. `strict`/`relaxed` name
        # the ExecuteIngestionAuthValidator behaviour directly.
        self.datahub_version = datahub_version or datahub_version_from_env()
        self.execute_validator: ExecuteValidator = execute_validator_for(self.datahub_version)
        # Extra librdkafka properties (TLS, SASL) for its producer and admin client: GMS on a
        # secured cluster produces over the same listener the consumer reads from.
        self.kafka_config = dict(kafka_config or {})
        self.host = host
        self._requested_port = port
        self._port = port
        self.state_file = Path(state_file) if state_file else None
        self._versioned_partitions = versioned_partitions
        self._timeseries_partitions = timeseries_partitions
        self._create_topics = create_topics
        self._seed_on_empty = seed_on_empty

        self.store = AspectStore()
        self.search = SearchIndex(self.store)
        self._db: StateDb | None = None
        self.credentials = Credentials()
        self.faults = Faults()
        # DataHub's ingestion-source scheduler and "Run" (scheduler.py); tests drive its clock.
        self.scheduler = IngestionSchedulerDouble(self)
        # GMS renames the MCL topics with METADATA_CHANGE_LOG_{VERSIONED,TIMESERIES}_TOPIC_NAME.
        self.versioned_topic = versioned_topic
        self.timeseries_topic = timeseries_topic
        self.schema_registry = InternalSchemaRegistry(versioned_topic, timeseries_topic)
        self.schema_registry_type = schema_registry_type
        self.codec: Codec = (
            GlueMclCodec(
                endpoint_url=glue_endpoint_url,
                region=glue_region,
                registry_name=glue_registry_name,
                compression=glue_compression,
            )
            if schema_registry_type == "AWS_GLUE"
            else MclCodec()
        )
        self._registry_authorization = (
            "Basic " + base64.b64encode(schema_registry_user_info.encode()).decode()
            if schema_registry_user_info
            else None
        )
        self._admin_token = admin_token or f"gms-double-admin-{secrets.token_urlsafe(24)}"

        self._lock = threading.RLock()
        self._server_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._producer: MclProducer | None = None
        self._pipeline: WritePipeline | None = None
        self._requests = 0
        # The latest requests (tests count what a client asked, and when: issue 25).
        self._seen: deque[SeenRequest] = deque(maxlen=10_000)
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._started:
            return self
        self._load_or_seed()
        self.credentials.add_token(
            self._admin_token, Principal(ADMIN_USER, "datahub", manage_ingestion=True, admin=True)
        )
        if self._create_topics:
            create_mcl_topics(
                self.bootstrap_servers,
                self._versioned_partitions,
                self._timeseries_partitions,
                versioned_topic=self.versioned_topic,
                timeseries_topic=self.timeseries_topic,
                kafka_config=self.kafka_config,
            )
        self._producer = MclProducer(self.bootstrap_servers, self.codec, self.kafka_config)
        self._pipeline = WritePipeline(
            self.store,
            self._producer.produce,
            self._commit,
            versioned_topic=self.versioned_topic,
            timeseries_topic=self.timeseries_topic,
            execute_validator=self.execute_validator,
        )
        self._serve()
        self._started = True
        self._save_settings()
        log.info("GMS double serving %s (Kafka %s)", self.url, self.bootstrap_servers)
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._stop_serving()
        if self._producer is not None:
            self._producer.close()
        if self._db is not None:
            with self._lock:
                self._db.close()
                self.store.attach(None)
                self._db = None
        self._started = False

    def _serve(self) -> None:
        with self._server_lock:
            server = _Server((self.host, self._port), self)
            self._port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"gms-double-{self._port}",
                daemon=True,
            )
            self._thread.start()
            self.faults.down = False

    def _stop_serving(self) -> None:
        with self._server_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            server.shutdown()
            server.server_close()  # closes the listening socket: new connections are refused
            with self._connections_lock:
                live = list(self._connections)
            for conn in live:
                # Cut kept-alive connections too, or pooled clients would still be answered.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            if thread is not None:
                thread.join(timeout=5)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _count_request(self, method: str = "", path: str = "", body: bytes = b"") -> None:
        query = ""
        if path.endswith("/graphql") and body:
            parsed = _json_or_none(body)
            if isinstance(parsed, dict):
                query = str(parsed.get("query") or "")[:200]
        with self._connections_lock:
            self._requests += 1
            self._seen.append(SeenRequest(method, path, query))

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self._port}"

    @property
    def schema_registry_url(self) -> str:
        return f"{self.url}{SCHEMA_REGISTRY_PREFIX}/"

    @property
    def frontend_url(self) -> str:
        return self.url

    @property
    def admin_token(self) -> str:
        return self._admin_token

    # -- GMS internals used by the handler -----------------------------------------------------

    def registry_authorized(self, authorization: str | None) -> bool:
        if self._registry_authorization is None:
            return True
        return authorization is not None and hmac.compare_digest(
            authorization.encode(), self._registry_authorization.encode()
        )

    def config(self) -> dict[str, Any]:
        """GET /config (metadata-service/servlet Config): `noCode` and the version are what
        DatahubRestEmitter.test_connection checks; a version >= 1.0.1 makes the SDK switch to
        OpenAPI ingestion. CLI telemetry is reported off so SDK clients stay offline, and
        `patchCapable` is false because the double does not implement PATCH."""
        return {
            "noCode": "true",
            "supportsImpactAnalysis": False,
            "versions": {
                "acryldata/datahub": {
                    "version": self._reported_version(),
                    "commit": "gms-test-double",
                }
            },
            "telemetry": {"enabledCli": False, "enabledIngestion": False},
            "managedIngestion": {"enabled": True, "defaultCliVersion": "1.7.0.17"},
            "datahub": {"serverType": "dev", "serverEnv": "core"},
            "datasetUrnNameCasing": False,
            "patchCapable": False,
            "statefulIngestionCapable": True,
            "models": {},
            "gmsTestDouble": True,
        }

    def _reported_version(self) -> str:
        # `strict`/`relaxed` are behaviours, not releases: report the default release then.
        version = self.datahub_version
        return version if version[:1] in "v0123456789" and version else DATAHUB_VERSION

    def _ingest(
        self, proposals: list[Any], actor: str, session: Principal | None = None
    ) -> list[Any]:
        assert self._pipeline is not None
        with self._lock:
            try:
                results = self._pipeline.ingest(proposals, actor, session)
            finally:
                pending = self._pipeline.take_deliveries()
        # GMS joins the MCL futures after its transaction (mcl.py): other writes go on
        # meanwhile; the MCLs already left in commit order.
        _await(pending)
        return results

    def _read(self, urn: str, aspect: str, version: int) -> Any:
        with self._lock:
            return self.store.get(urn, aspect, version)

    def _read_timeseries(self, urn: str, aspect: str) -> Any:
        with self._lock:
            return self.store.timeseries_latest(urn, aspect)

    def _entity_response(
        self, urn: str, aspects: list[str] | None, include_key: bool
    ) -> dict[str, Any] | None:
        """EntityServiceImpl.getEntityV2 / EntityUtils.toEntityResponse: the latest version of
        each asked-for (or every) versioned aspect as an EnvelopedAspect {name, type, version,
        value, created, systemMetadata}; unknown or timeseries names are simply not found; the
        key aspect is built from the URN when not stored (getKeyEnvelopedAspect: version 0,
        created by the system actor now, no systemMetadata)."""
        parsed = reg.parse_urn(urn)
        spec = reg.entity_spec(parsed.entity_type)
        if spec is None:
            return None
        names = aspects if aspects is not None else sorted(spec.aspects)
        envelopes: dict[str, Any] = {}
        with self._lock:
            for name in names:
                row = self.store.latest(urn, name)
                if row is None:
                    continue
                envelopes[name] = {
                    "name": name,
                    "type": "VERSIONED",
                    "version": 0,
                    "value": row.value,
                    "created": {"time": row.created_on, "actor": row.created_by},
                    "systemMetadata": row.system_metadata,
                }
        if include_key and spec.key_aspect not in envelopes:
            key_name, key_value = reg.key_aspect_of(urn)
            envelopes[key_name] = {
                "name": key_name,
                "type": "VERSIONED",
                "version": 0,
                "value": key_value,
                "created": {"time": now_ms(), "actor": SYSTEM_ACTOR},
            }
        return {"entityName": spec.name, "urn": urn, "aspects": envelopes}

    def _delete_urn(self, urn: str) -> tuple[int, int]:
        assert self._pipeline is not None
        with self._lock:
            try:
                deleted = self._pipeline.delete_urn(urn)
            finally:
                pending = self._pipeline.take_deliveries()
        _await(pending)
        return deleted

    def _delete_timeseries(self, urn: str, aspect: str) -> int:
        # TimeseriesAspectService.deleteAspectValues: the double keeps one value per aspect.
        with self._lock:
            row = self.store.timeseries_latest(urn, aspect)
            if row is None:
                return 0
            self.store.drop_timeseries(urn, aspect)
            self._commit()
            return 1

    # -- persistence ---------------------------------------------------------------------------

    def _load_or_seed(self) -> None:
        with self._lock:
            if self.state_file is not None and self._db is None:
                self._db = StateDb(self.state_file)
                if not self._db.is_empty():
                    settings = self._db.load(self.store)
                    self.credentials.load_json(settings.get("credentials") or {})
                    self._admin_token = str(settings.get("admin_token") or self._admin_token)
                self.store.attach(self._db)
            if self._seed_on_empty and len(self.store) == 0:
                rows = seed(self.store, now_ms())
                log.info("seeded %d aspect rows", rows)
            self._commit()

    def _commit(self) -> None:
        # Called by the write pipeline once per ingested batch, under the double's lock.
        if self._db is not None:
            self._db.commit()

    def _save_settings(self) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.put_setting("admin_token", self._admin_token)
            self._db.put_setting("credentials", self.credentials.to_json())
            self._db.commit()

    # -- test helpers ----------------------------------------------------------------------------

    def add_token(
        self,
        token: str,
        actor_urn: str,
        username: str,
        manage_ingestion: bool,
        *,
        privileges: frozenset[str] = frozenset(),
        grants: frozenset[tuple[str, str]] = frozenset(),
        strict_policies: bool = False,
    ) -> None:
        """Make `token` a valid bearer token for `actor_urn` (GMS and frontend), with the
        policies `manage_ingestion`, platform `privileges` and resource `grants`; with
        `strict_policies` its writes need EDIT_ENTITY grants too (auth.Principal)."""
        self.credentials.add_token(
            token,
            Principal(
                actor_urn,
                username,
                manage_ingestion,
                privileges=privileges,
                grants=grants,
                strict_policies=strict_policies,
            ),
        )
        self._save_settings()

    def add_session_cookie(
        self, cookie: str, actor_urn: str, username: str, manage_ingestion: bool
    ) -> None:
        """Make a datahub-frontend session valid: `cookie` is the PLAY_SESSION value or a whole
        Cookie header containing it."""
        self.credentials.add_session(cookie, Principal(actor_urn, username, manage_ingestion))
        self._save_settings()

    def get_aspect(self, urn: str, aspect_name: str, version: int = 0) -> dict[str, Any] | None:
        """The stored Pegasus JSON of an aspect (timeseries: the latest value), or None."""
        with self._lock:
            if reg.is_timeseries(aspect_name):
                row = self.store.timeseries_latest(urn, aspect_name)
                return row.value if row else None
            found = self.store.get(urn, aspect_name, version)
            return found[0].value if found else None

    def system_metadata(self, urn: str, aspect_name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.store.get(urn, aspect_name, 0)
            return found[0].system_metadata if found else None

    def aspect_version(self, urn: str, aspect_name: str) -> int | None:
        """The aspect's current version number (systemMetadata.version: 1 for the first value,
        +1 per change) - what If-Version-Match compares with; None when absent."""
        with self._lock:
            row = self.store.latest(urn, aspect_name)
            return row.version_number(self.store.history_len(urn, aspect_name)) if row else None

    def mcl_log(self) -> list[ProducedMcl]:
        """Every MCL produced since start, in production order."""
        return self._producer.produced() if self._producer else []

    def mcl_count(self) -> int:
        return len(self.mcl_log())

    def request_count(self) -> int:
        with self._connections_lock:
            return self._requests

    def requests_seen(self) -> list[SeenRequest]:
        """The latest 10,000 requests, oldest first (method, path, GraphQL query's start)."""
        with self._connections_lock:
            return list(self._seen)

    def set_down(self, down: bool) -> None:
        """Down: the port refuses connections (open ones are cut). Up again: same port."""
        if not self._started:
            raise RuntimeError("GmsDouble is not started")
        if down and self._server is not None:
            self._stop_serving()
            self.faults.down = True
        elif not down and self._server is None:
            self._serve()

    def set_slow(self, seconds: float) -> None:
        self.faults.set_slow(seconds)

    def fail_next(self, n: int, status: int = 500) -> None:
        self.faults.fail_next(n, status)

    def reset_faults(self) -> None:
        self.faults.reset()
        if self._started and self._server is None:
            self._serve()
