"""Who may do what with a run: one place, reused by every route (start, read, cancel).

- start (and cancel): DataHub's `manageIngestion` platform privilege, or any signed-in user
  with `LAMBDA_TRIGGER_API_REQUIRED_PRIVILEGE=authenticated`;
- read: the run's requester (`actorUrn`), or anyone who may start runs; everyone else 403.
"""

from __future__ import annotations

from lambda_trigger.settings import ApiSettings
from lambda_trigger_api.errors import ApiError
from lambda_trigger_api.identity import Caller

PRIVILEGE_NAME = "Manage Metadata Ingestion"


def may_start(settings: ApiSettings, caller: Caller) -> bool:
    return settings.required_privilege == "authenticated" or caller.manage_ingestion


def require_start(settings: ApiSettings, caller: Caller, action: str = "run ingestion") -> None:
    if not may_start(settings, caller):
        raise ApiError(
            403,
            "forbidden",
            f"{caller.username or caller.urn} lacks the DataHub privilege '{PRIVILEGE_NAME}' "
            f"needed to {action}",
        )


def may_read(settings: ApiSettings, caller: Caller, requester: str | None) -> bool:
    return (requester is not None and requester == caller.urn) or may_start(settings, caller)


def require_read(settings: ApiSettings, caller: Caller, requester: str | None) -> None:
    if not may_read(settings, caller, requester):
        raise ApiError(
            403,
            "forbidden",
            f"only the run's requester or a holder of '{PRIVILEGE_NAME}' may read this run",
        )
