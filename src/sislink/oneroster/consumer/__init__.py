"""The OneRoster consumer: everything sislink says to a SIS goes through `OneRosterClient`.

    settings = ConnectionSettings(
        version="1.2",
        base_url="https://sis.example.org/ims/oneroster",
        auth=OAuth2Settings(token_url="https://sis.example.org/token", client_id=..., client_secret=...),
    )
    async with OneRosterClient(settings) as sis:
        teacher = await sis.find_teacher_by_email("a.teacher@school.org")
        async for enrollment in sis.iter_collection("enrollments"):
            ...

The public names are re-exported here; the modules behind them are private.
"""

from sislink.oneroster.consumer.client import ModelPage, OneRosterClient, PutOutcome
from sislink.oneroster.consumer.conformance import (
    SIS_QUIRKS,
    CheckResult,
    ConformanceReport,
    SISQuirks,
    run_conformance,
)
from sislink.oneroster.consumer.exceptions import (
    AmbiguousMatch,
    AuthenticationFailed,
    BadRequest,
    ConfigurationError,
    InvalidData,
    MalformedResponse,
    NotFound,
    OneRosterError,
    PagingError,
    PermissionDenied,
    RateLimited,
    ResponseError,
    ServerError,
    SISDown,
    SISTimeout,
    SISUnreachable,
    StatusError,
    TokenRequestFailed,
    TransportError,
)
from sislink.oneroster.consumer.settings import (
    ConnectionSettings,
    OAuth1Settings,
    OAuth2Settings,
)
from sislink.oneroster.filters import both, either, where

__all__ = [
    "SIS_QUIRKS",
    "AmbiguousMatch",
    "AuthenticationFailed",
    "BadRequest",
    "CheckResult",
    "ConfigurationError",
    "ConformanceReport",
    "ConnectionSettings",
    "InvalidData",
    "MalformedResponse",
    "ModelPage",
    "NotFound",
    "OAuth1Settings",
    "OAuth2Settings",
    "OneRosterClient",
    "OneRosterError",
    "PagingError",
    "PermissionDenied",
    "PutOutcome",
    "RateLimited",
    "ResponseError",
    "SISDown",
    "SISQuirks",
    "SISTimeout",
    "SISUnreachable",
    "ServerError",
    "StatusError",
    "TokenRequestFailed",
    "TransportError",
    "both",
    "either",
    "run_conformance",
    "where",
]
