"""Who may start a run by writing the request aspect directly (SDK, CLI, Airflow, CI).

The api checks DataHub's `manageIngestion` privilege before it writes, but anyone DataHub's
policies let write `dataHubExecutionRequestInput` can write one too. So the consumer checks
the *writer*, the MCL's `created.actor` that GMS authenticated (never `systemMetadata` or the
aspect's `actorUrn`, which the writer chooses):

1. the api's own service principal (`LAMBDA_TRIGGER_API_SERVICE_ACTOR`; default: the actor
   of this consumer's DATAHUB_GMS_TOKEN, i.e. the api and the consumer share the service
   token): allowed, and its `actorUrn` (the caller the api checked) is the requester;
2. an actor in `LAMBDA_TRIGGER_ALLOWED_ACTORS` (e.g. the Airflow or CI service account);
3. a holder of a role in `LAMBDA_TRIGGER_ALLOWED_ROLES` (`roleMembership`; default
   `urn:li:dataHubRole:Admin`, the role DataHub's default policies give "Manage Metadata
   Ingestion": `urn:li:dataHubPolicy:admin-platform-policy` in
   metadata-service/war/src/main/resources/boot/policies.json). Roles and actors are the
   recommended lists: only DataHub admins assign roles.
4. opt-in, with its risk: a member of a group in `LAMBDA_TRIGGER_ALLOWED_GROUPS` (the user's
   `groupMembership` and `nativeGroupMembership` aspects). DataHub's default policies let a
   group's owners edit its members, and OIDC group sync writes memberships from IdP claims, so
   a group grants run rights to whoever controls its membership; a start-up line says so.

Cancels (KILL signals) follow the same rule: the signal's writer must be the run's requester or
someone allowed to start runs (`may_cancel`).

GMS authentication off (common/lambda_trigger/gms_auth.py): `created.actor` is then whatever the
writer's `X-DataHub-Actor` header says, so every writer but the api's service principal is
refused, unless `LAMBDA_TRIGGER_DEV_TRUST_UNAUTHENTICATED_WRITERS=true` (local stacks). One
start-up line says which. Even then the service principal is the system actor that any caller
without the header becomes: turn GMS authentication on.

Why not DataHub's own privilege check: GraphQL `getGrantedPrivileges(input: {actorUrn})` answers
only for the caller itself - GetGrantedPrivilegesResolver.isAuthorized requires
`actorUrn.equals(context.getActorUrn())`, else "Unauthorized to get privileges for the given
author." (datahub-graphql-core/src/main/java/com/linkedin/datahub/graphql/resolvers/policy/
GetGrantedPrivilegesResolver.java) - and `me` is the caller too. A service token cannot ask
whether someone else holds `manageIngestion`; membership aspects it can read. Lists are
comma-separated URNs.

Anything else ends FAILURE "not authorised: <actor> may not start runs", nothing is invoked,
and `lambda_trigger_consumer_unauthorised_requests_total` counts it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass

from datahub.metadata.schema_classes import (
    GroupMembershipClass,
    NativeGroupMembershipClass,
    RoleMembershipClass,
)
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambda_trigger.contract import RunRequest
from lambda_trigger.datahub import DataHubClient, DataHubUnavailable
from lambda_trigger.gms_auth import TokenIdentityUnknown, gms_auth_off, token_actor
from lambda_trigger.sanitize import printable
from lambda_trigger.settings import DataHubSettings
from lambda_trigger_consumer.request import with_trusted_requester

log = logging.getLogger(__name__)

ADMIN_ROLE = "urn:li:dataHubRole:Admin"


def _urns(text: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (text or "").split(",") if part.strip())


class AuthorizerSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_actor: str | None = Field(None, validation_alias="LAMBDA_TRIGGER_API_SERVICE_ACTOR")
    allowed_actors: str = Field("", validation_alias="LAMBDA_TRIGGER_ALLOWED_ACTORS")
    allowed_groups: str = Field("", validation_alias="LAMBDA_TRIGGER_ALLOWED_GROUPS")
    allowed_roles: str = Field(ADMIN_ROLE, validation_alias="LAMBDA_TRIGGER_ALLOWED_ROLES")
    # GMS authentication off: believe writers other than the api's service principal anyway.
    dev_trust_unauthenticated_writers: bool = Field(
        False, validation_alias="LAMBDA_TRIGGER_DEV_TRUST_UNAUTHENTICATED_WRITERS"
    )


@dataclass(frozen=True)
class Decision:
    """`request` carries the requester the run is recorded as; `refusal` is None when allowed."""

    request: RunRequest
    refusal: str | None = None


class Authorizer:
    def __init__(
        self,
        datahub: DataHubClient,
        datahub_settings: DataHubSettings,
        settings: AuthorizerSettings | None = None,
        *,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        settings = settings or AuthorizerSettings()
        self._datahub = datahub
        self._datahub_settings = datahub_settings
        self._service_actor = settings.service_actor
        self._lock = threading.Lock()
        self.allowed_actors = _urns(settings.allowed_actors)
        self.allowed_groups = _urns(settings.allowed_groups)
        self.allowed_roles = _urns(settings.allowed_roles)
        self._trust_unauthenticated = settings.dev_trust_unauthenticated_writers
        self._auth_off: bool | None = None
        if self.allowed_groups:
            log.warning(
                "LAMBDA_TRIGGER_ALLOWED_GROUPS is set: members of %s may start runs. Whoever "
                "controls those groups' membership (their owners, under DataHub's default "
                "policies; the IdP, with OIDC group sync) grants run rights. Prefer "
                "LAMBDA_TRIGGER_ALLOWED_ROLES or LAMBDA_TRIGGER_ALLOWED_ACTORS.",
                ", ".join(sorted(self.allowed_groups)),
            )
        self.refused = Counter(
            "lambda_trigger_consumer_unauthorised_requests",
            "Run requests refused because their writer may not start runs",
            registry=registry,
        )

    def service_actor(self) -> str:
        """May raise DataHubUnavailable (the caller retries) until GMS has said who the
        service token is."""
        if self._service_actor is None:
            with self._lock:
                if self._service_actor is None:
                    self._service_actor = self._whoami()
                    log.info(
                        "api service principal: %s (the actor of DATAHUB_GMS_TOKEN)",
                        self._service_actor,
                    )
        return self._service_actor

    def _whoami(self) -> str:
        s = self._datahub_settings
        try:
            return token_actor(s.gms_url, s.gms_token, s.timeout_seconds)
        except TokenIdentityUnknown as exc:
            raise DataHubUnavailable(str(exc)) from exc

    def auth_off(self) -> bool:
        """Is GMS authentication off? Asked once (until GMS answers); may raise
        DataHubUnavailable, so that no writer is judged before it is known."""
        if self._auth_off is None:
            with self._lock:
                if self._auth_off is None:
                    off = gms_auth_off(
                        self._datahub_settings.gms_url, self._datahub_settings.timeout_seconds
                    )
                    if off is None:
                        raise DataHubUnavailable("is GMS authentication on? GMS did not answer")
                    self._auth_off = off
                    self._announce(off)
        return self._auth_off

    def _announce(self, off: bool) -> None:
        if not off:
            log.info("GMS authentication is on: run request and cancel writers are checked")
        elif self._trust_unauthenticated:
            log.error(
                "GMS authentication is OFF and LAMBDA_TRIGGER_DEV_TRUST_UNAUTHENTICATED_WRITERS"
                "=true: any writer's claimed identity is believed (local stacks only)"
            )
        else:
            log.error(
                "GMS authentication is OFF (it accepts any token): only the api's service "
                "principal may start or cancel runs; every other writer is refused. Turn GMS "
                "authentication on (METADATA_SERVICE_AUTH_ENABLED=true)."
            )

    def start(self) -> None:
        """Say at start-up who the service principal is and whether GMS checks tokens (a
        background attempt: the checks ask again until GMS answers)."""
        with contextlib.suppress(DataHubUnavailable):
            self.service_actor()
            self.auth_off()

    def check(self, request: RunRequest) -> Decision:
        """May raise DataHubUnavailable: nothing was started, the caller retries."""
        service = self.service_actor()
        trusted = with_trusted_requester(request, service)
        writer = request.writer_urn
        if writer is not None and self.may_start(writer, service):
            return Decision(trusted)
        self.refused.inc()
        who = writer or "an unidentified writer"
        log.warning(
            "run %s refused: written by %s (claims actorUrn %s), who may not start runs",
            request.run_id,
            printable(who),
            printable(request.actor_urn or ""),
        )
        return Decision(trusted, f"not authorised: {who} may not start runs")

    def may_cancel(self, actor: str, request: RunRequest | None) -> bool:
        """A KILL's writer may cancel a run it requested, or any run if it may start runs.
        May raise DataHubUnavailable (the signal is looked at again)."""
        service = self.service_actor()
        if request is not None and not (self.auth_off() and not self._trust_unauthenticated):
            requester = with_trusted_requester(request, service).actor_urn
            if requester is not None and actor == requester:
                return True
        return self.may_start(actor, service)

    def may_start(self, actor: str, service_actor: str) -> bool:
        if actor == service_actor:
            return True
        if self.auth_off() and not self._trust_unauthenticated:
            return False  # GMS did not authenticate this writer: its name is only a claim
        if actor in self.allowed_actors:
            return True
        if not actor.startswith("urn:li:corpuser:"):
            return False  # memberships are corpuser aspects
        if self.allowed_roles:
            roles = self._datahub._get(actor, RoleMembershipClass)
            if roles is not None and set(roles.roles) & self.allowed_roles:
                return True
        if self.allowed_groups:  # opt-in, see the module's comment
            groups: set[str] = set()
            membership = self._datahub._get(actor, GroupMembershipClass)
            if membership is not None:
                groups.update(membership.groups)
            native = self._datahub._get(actor, NativeGroupMembershipClass)
            if native is not None:
                groups.update(native.nativeGroups)
            if groups & self.allowed_groups:
                return True
        return False
