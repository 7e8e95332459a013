"""The failures GMS's write path raises, and how each API renders them.

The two write APIs render the same Java exception differently, so the double keeps the kind of
failure and lets the API layer choose the status:

| exception (GMS)                            | Rest.li `/aspects` (AspectResource + RestliUtils) | OpenAPI (GlobalControllerExceptionHandler) |
|--------------------------------------------|---------------------------------------------------|-------------------------------------------|
| ValidationException, PRECONDITION subtype  | 422 (AspectResource catches ValidationException)   | 412 {"error": "Precondition Error"}        |
| ValidationException, other subtypes        | 422                                               | 400 {"error": "Validation Error"}          |
| IllegalArgumentException / InvalidUrn      | 400 (RestliUtils.toTask)                          | 400 {"error": message}                     |
| anything else (e.g. MCL produce failure)   | 500                                               | 500 {"error": "Internal server error occurred"} |

Sources: metadata-service/restli-servlet-impl/.../resources/entity/AspectResource.java
(`catch (ValidationException e) -> S_422_UNPROCESSABLE_ENTITY`),
metadata-service/restli-servlet-impl/.../resources/restli/RestliUtils.java (toTask),
metadata-service/openapi-servlet/.../openapi/config/GlobalControllerExceptionHandler.java.
"""

from __future__ import annotations

from enum import Enum


class ValidationSubType(Enum):
    """metadata-models/.../aspect/plugins/validation/ValidationSubType.java."""

    VALIDATION = "VALIDATION"
    PRECONDITION = "PRECONDITION"
    FILTER = "FILTER"
    AUTHORIZATION = "AUTHORIZATION"


class GmsError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GmsValidationError(GmsError):
    """com.linkedin.metadata.entity.validation.ValidationException."""

    def __init__(self, message: str, subtypes: frozenset[ValidationSubType] | None = None) -> None:
        super().__init__(message)
        self.subtypes = subtypes or frozenset({ValidationSubType.VALIDATION})


class GmsIllegalArgument(GmsError):
    """IllegalArgumentException / InvalidUrnException: a malformed request."""


class GmsInternalError(GmsError):
    """Any other RuntimeException, e.g. EntityServiceImpl's "Failed to produce MCLs"."""


class GmsUnsupportedOperation(GmsInternalError):
    """UnsupportedOperationException (e.g. "Aspect name is required ...", a non-UPSERT change to
    a timeseries aspect): neither RestliUtils.toTask nor the OpenAPI handler maps it, so 500."""
