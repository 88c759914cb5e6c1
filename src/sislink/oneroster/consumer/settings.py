"""How to reach one SIS: version, URLs, credentials, limits. Plain frozen data, checked on creation.

Secrets (client secret, OAuth 1 secret, header values such as a vendor key) are kept out of
`repr`, so a settings object can be logged or shown in a traceback safely.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from sislink.oneroster.consumer.exceptions import ConfigurationError
from sislink.oneroster.consumer.retry import RETRYABLE_STATUSES
from sislink.oneroster.versions import CLASSROOM_SCOPES, Service, Version, VersionSpec, spec_for

CredentialsIn = Literal["basic", "form"]
SignatureMethod = Literal["HMAC-SHA256", "HMAC-SHA1"]


@dataclass(frozen=True)
class OAuth2Settings:
    """OAuth 2 client credentials.

    `scopes` are short names (`roster.readonly`, expanded to the version's scope URIs) or full
    URIs (sent as they are). `credentials_in` says whether the client id and secret go in HTTP
    Basic (the standard, Google's way) or in the form body (some servers accept only that).
    """

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = CLASSROOM_SCOPES
    credentials_in: CredentialsIn = "basic"

    def __post_init__(self) -> None:
        _check_url("token_url", self.token_url)
        if not self.client_id:
            raise ConfigurationError("OAuth 2 needs a client id: give the one the SIS issued")
        if not self.client_secret:
            raise ConfigurationError("OAuth 2 needs a client secret: give the one the SIS issued")
        if self.credentials_in not in ("basic", "form"):
            raise ConfigurationError(
                f"credentials_in must be 'basic' or 'form', not {self.credentials_in!r}"
            )


@dataclass(frozen=True)
class OAuth1Settings:
    """OAuth 1.0a one-legged signing (OneRoster 1.1): consumer key and secret."""

    key: str
    secret: str = field(repr=False)
    signature_method: SignatureMethod = "HMAC-SHA256"

    def __post_init__(self) -> None:
        if not self.key or not self.secret:
            raise ConfigurationError("OAuth 1.0a needs both a consumer key and a secret")
        if self.signature_method not in ("HMAC-SHA256", "HMAC-SHA1"):
            raise ConfigurationError(
                f"signature_method must be HMAC-SHA256 or HMAC-SHA1, not {self.signature_method!r}"
            )


AuthSettings = OAuth2Settings | OAuth1Settings

# The bounds on a SIS's answers. A real 50,000-student district has ~410,000 enrolments (its
# largest collection) in ~410 pages of 1,000: the collection ceilings leave it room, and stop
# a SIS that keeps inventing records (whatever X-Total-Count claims) within about two minutes
# of an import on loopback (~6,000 records a second are written). An administrator of a larger
# district raises them (the environment variables below).
DEFAULT_MAX_RECORDS_PER_COLLECTION = 500_000
DEFAULT_MAX_PAGES_PER_COLLECTION = 5_000  # pages of 100 records (the smallest SIS page sizes)
DEFAULT_COLLECTION_TIME_BUDGET_S = 1800.0  # one collection's walk, every page
DEFAULT_REQUEST_DEADLINE_S = 60.0  # one attempt: headers and the whole body
DEFAULT_CALL_DEADLINE_S = 120.0  # one call, every retry and wait included: two full attempts
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a page of 1,000 users is ~1-2 MB
DEFAULT_MAX_TOKEN_RESPONSE_BYTES = 64 * 1024  # a token answer is a few hundred bytes
DEFAULT_JOB_TIME_BUDGET_S = 4 * 3600.0  # every call of one client (one import or export)

LIMIT_VARIABLES: dict[str, str] = {
    "SISLINK_SIS_MAX_RECORDS": "max_records_per_collection",
    "SISLINK_SIS_MAX_PAGES": "max_pages_per_collection",
    "SISLINK_SIS_COLLECTION_BUDGET_S": "collection_time_budget_s",
    "SISLINK_SIS_REQUEST_DEADLINE_S": "request_deadline_s",
    "SISLINK_SIS_CALL_DEADLINE_S": "call_deadline_s",
    "SISLINK_SIS_MAX_RESPONSE_BYTES": "max_response_bytes",
    "SISLINK_SIS_MAX_TOKEN_RESPONSE_BYTES": "max_token_response_bytes",
    "SISLINK_SIS_JOB_BUDGET_S": "job_time_budget_s",
}
"""Environment variables an administrator sets to change the bounds, and the setting each sets."""

_INTEGER_LIMITS = frozenset(
    {
        "max_records_per_collection",
        "max_pages_per_collection",
        "max_response_bytes",
        "max_token_response_bytes",
    }
)


def limits_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The bounds set in the environment (LIMIT_VARIABLES), as ConnectionSettings keywords.

    A value that is not a number is refused naming the variable (ConfigurationError)."""
    env = os.environ if environ is None else environ
    limits: dict[str, Any] = {}
    for variable, name in LIMIT_VARIABLES.items():
        text = env.get(variable, "").strip()
        if not text:
            continue
        try:
            limits[name] = int(text) if name in _INTEGER_LIMITS else float(text)
        except ValueError:
            kind = "a whole number" if name in _INTEGER_LIMITS else "a number of seconds"
            raise ConfigurationError(
                f"{variable} must be {kind}, not {text!r}: fix or unset it"
            ) from None
    return limits


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the client needs to talk to one SIS.

    `base_url` is the OneRoster root (`https://host/ims/oneroster`: `rostering/v1p2/...` or,
    for 1.1, `v1p1/...` hang from it). A SIS that puts its services elsewhere gives
    `service_urls` instead (or as well): `{"rostering": ".../rostering/v1p2", "gradebook": ...}`,
    each the full URL of that service's root.

    `extra_headers` go on every OneRoster call; `gradebook_headers` only on gradebook calls
    (Infinite Campus's `x-vendor-authorization`). Their values are never shown. `keep_cookies`
    sends back cookies the SIS sets (Aeries' load-balancer affinity, set by the token response).

    Limits: at most `max_concurrency` calls in flight, at most `requests_per_second` started
    per second (None: no rate limit), `max_retries` retries of an idempotent call, and after
    `failure_threshold` consecutive failed attempts (5xx, no answer) the client stops with
    SISDown instead of hammering a SIS that is down; after `failure_cooldown_s` one attempt
    is let through to see whether it is back.

    Bounds, because the SIS is not trusted: a collection's walk stops past
    `max_records_per_collection` records, `max_pages_per_collection` pages or
    `collection_time_budget_s`; one attempt has `request_deadline_s` for its headers and whole
    body, one call (its retries and waits included) `call_deadline_s`, and every call of the
    client together `job_time_budget_s` (None: no budget); an answer stops being read past
    `max_response_bytes` (`max_token_response_bytes` for the token endpoint's).
    """

    version: Version | Literal["1.1", "1.2"]
    auth: AuthSettings
    base_url: str | None = None
    service_urls: Mapping[str, str] = field(default_factory=dict)
    page_size: int = 1000
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    gradebook_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    keep_cookies: bool = True
    max_concurrency: int = 16
    requests_per_second: float | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retries: int = 6
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    backoff_base_s: float = 0.2
    backoff_max_s: float = 20.0
    max_retry_after_s: float = 120.0
    failure_threshold: int = 10
    failure_cooldown_s: float = 30.0
    # Bounds on what the SIS may make the client do (docs/security.md, "The SIS is not trusted").
    max_records_per_collection: int = DEFAULT_MAX_RECORDS_PER_COLLECTION
    max_pages_per_collection: int = DEFAULT_MAX_PAGES_PER_COLLECTION
    collection_time_budget_s: float = DEFAULT_COLLECTION_TIME_BUDGET_S
    request_deadline_s: float = DEFAULT_REQUEST_DEADLINE_S
    call_deadline_s: float = DEFAULT_CALL_DEADLINE_S
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_token_response_bytes: int = DEFAULT_MAX_TOKEN_RESPONSE_BYTES
    job_time_budget_s: float | None = DEFAULT_JOB_TIME_BUDGET_S

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "version", Version(self.version))
        except ValueError:
            raise ConfigurationError(
                f"Unknown OneRoster version {self.version!r}: use '1.1' or '1.2'"
            ) from None
        if self.base_url is not None:
            _check_url("base_url", self.base_url)
            object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        services = {}
        for name, url in self.service_urls.items():
            try:
                service = Service(name)
            except ValueError:
                raise ConfigurationError(
                    f"service_urls has an unknown service {name!r}: use 'rostering' or 'gradebook'"
                ) from None
            _check_url(f"service_urls[{name!r}]", url)
            services[service.value] = url.rstrip("/")
        object.__setattr__(self, "service_urls", services)
        if self.base_url is None and set(services) != {s.value for s in Service}:
            raise ConfigurationError(
                "Give base_url (the OneRoster root, e.g. https://sis.example.org/ims/oneroster) "
                "or service_urls for both 'rostering' and 'gradebook'"
            )
        for name, low in (
            ("page_size", 1),
            ("max_concurrency", 1),
            ("failure_threshold", 1),
            ("max_retries", 0),
        ):
            if getattr(self, name) < low:
                raise ConfigurationError(
                    f"{name} must be at least {low}, not {getattr(self, name)}"
                )
        for name in (
            "max_records_per_collection",
            "max_pages_per_collection",
            "max_response_bytes",
            "max_token_response_bytes",
        ):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("collection_time_budget_s", "request_deadline_s", "call_deadline_s"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be positive, not {getattr(self, name)}")
        if self.job_time_budget_s is not None and not self.job_time_budget_s > 0:
            raise ConfigurationError(
                f"job_time_budget_s must be positive (or None: no budget), "
                f"not {self.job_time_budget_s}"
            )
        if self.failure_cooldown_s < 0:
            raise ConfigurationError(
                f"failure_cooldown_s cannot be negative, not {self.failure_cooldown_s}"
            )
        if self.requests_per_second is not None and self.requests_per_second <= 0:
            raise ConfigurationError("requests_per_second must be positive, or None for no limit")
        if not isinstance(self.auth, OAuth2Settings | OAuth1Settings):
            raise ConfigurationError("auth must be OAuth2Settings or OAuth1Settings")

    @property
    def spec(self) -> VersionSpec:
        return spec_for(self.version)

    def service_url(self, service: Service) -> str:
        """The full URL of a service's root, e.g. `https://host/ims/oneroster/gradebook/v1p2`."""
        if service.value in self.service_urls:
            return self.service_urls[service.value]
        assert self.base_url is not None  # checked in __post_init__
        return f"{self.base_url}/{self.spec.service_roots[service]}"

    @property
    def root_url(self) -> str:
        """The OneRoster root that GUIDRef hrefs hang from."""
        if self.base_url is not None:
            return self.base_url
        gradebook = self.service_urls[Service.GRADEBOOK.value]
        suffix = "/" + self.spec.service_roots[Service.GRADEBOOK]
        return gradebook[: -len(suffix)] if gradebook.endswith(suffix) else gradebook

    def scope_string(self) -> str:
        """The OAuth 2 `scope` parameter: short names expanded to this version's URIs."""
        if not isinstance(self.auth, OAuth2Settings):
            return ""
        return " ".join(s if "://" in s else self.spec.scope_uri(s) for s in self.auth.scopes)


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{name} {url!r} is not a web address: give a full URL such as "
            "https://sis.example.org/ims/oneroster"
        )
