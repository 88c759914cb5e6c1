"""Google Classroom, spoken with Google's own client libraries: the client sislink uses against
the real Classroom API, and a local Classroom (`emulator/`) to test it against.

Knows nothing of sislink's classroom or of OneRoster; `sync/` joins the worlds.
"""

from sislink.googleclassroom.client import (
    DEFAULT_API_ENDPOINT,
    SCOPES,
    CallAttempt,
    CallOutcome,
    ClassroomClient,
    ClientSettings,
    ServiceAccountKey,
)
from sislink.googleclassroom.errors import (
    AlreadyExists,
    ClassroomError,
    ClassroomUnreachable,
    FailedPrecondition,
    InvalidArgument,
    KeyFileError,
    MalformedAnswer,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
    ServerError,
    TokenRefused,
)

__all__ = [
    "DEFAULT_API_ENDPOINT",
    "SCOPES",
    "AlreadyExists",
    "CallAttempt",
    "CallOutcome",
    "ClassroomClient",
    "ClassroomError",
    "ClassroomUnreachable",
    "ClientSettings",
    "FailedPrecondition",
    "InvalidArgument",
    "KeyFileError",
    "MalformedAnswer",
    "NotFound",
    "PermissionDenied",
    "QuotaExhausted",
    "ServerError",
    "ServiceAccountKey",
    "TokenRefused",
]
