"""What can go wrong when talking to a SIS, as a typed hierarchy whose names say what happened.

Every error carries what a person needs to act: the call (method and path, never the query
string, headers or body), the HTTP status, the imsx codeMajor / codeMinor / description the SIS
sent, and a sentence saying what to do. None of them ever holds a secret, a token or a
signature: they are built from the request line and the response body only.

    OneRosterError
    +-- ConfigurationError          the settings themselves are wrong
    +-- TransportError              no HTTP answer at all
    |   +-- SISUnreachable          could not connect, or the connection dropped
    |   +-- SISTimeout              no answer in time (one attempt, or one call's retries)
    |       +-- TimeBudgetSpent     every call of one job together took too long
    +-- SISDown                     too many consecutive failures: the client stops calling
    +-- ResponseError               an HTTP answer we cannot use
    |   +-- StatusError             any 4xx / 5xx
    |   |   +-- BadRequest          400 (e.g. invalid_filter_field)
    |   |   +-- AuthenticationFailed  401 (wrong key/secret, expired token, missing vendor header)
    |   |   +-- TokenRequestFailed  the token endpoint refused (also a 401/400 most of the time)
    |   |       +-- TokenRefused    ... with the `error` and `error_description` it sent
    |   |   +-- PermissionDenied    403 (a scope is missing)
    |   |   +-- NotFound            404 (unknown object, or a wrong base path)
    |   |   +-- InvalidData         422 (the SIS refused what we sent)
    |   |   +-- RateLimited         429, after every retry
    |   |   +-- ServerError         5xx, after every retry
    |   +-- MalformedResponse       not JSON, or not OneRoster
    |   +-- PagingError             the SIS pages wrongly (e.g. ignores `offset`)
    |   +-- TokenResponseInvalid    the token endpoint answered 200 without a usable token
    |   +-- RunawayCollection       a collection's pages past a bound (seen, count, time)
    |   +-- ForeignAddress          a next link or redirect away from the SIS (refused)
    |   +-- ResponseTooLarge        an answer past the size cap
    +-- AmbiguousMatch              a lookup that must find one object found several
"""

from __future__ import annotations

from sislink.oneroster.errors import ImsxStatus


class OneRosterError(Exception):
    """Base of every consumer error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(OneRosterError, ValueError):
    """The connection settings cannot work (missing URL, unknown version, ...)."""


class _CallError(OneRosterError):
    """An error tied to one call: keeps its method and path (the URL path, no query string)."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class TransportError(_CallError):
    """The SIS gave no HTTP answer."""


class SISUnreachable(TransportError):
    """Nothing answered at that address, or the connection dropped, on every attempt."""


class SISTimeout(TransportError):
    """The SIS did not answer within the configured timeout, on every attempt."""


class SISDown(OneRosterError):
    """The client saw too many consecutive failures and stopped calling the SIS."""

    def __init__(self, message: str, *, consecutive_failures: int) -> None:
        super().__init__(message)
        self.consecutive_failures = consecutive_failures


class ResponseError(_CallError):
    """The SIS answered, but not with something we can use."""


class StatusError(ResponseError):
    """The SIS answered with an HTTP error status. `imsx` is the status it sent, if any."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status_code: int,
        imsx: ImsxStatus | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status_code = status_code
        self.imsx = imsx

    @property
    def code_major(self) -> str | None:
        return self.imsx.code_major if self.imsx else None

    @property
    def code_minor(self) -> str | None:
        return self.imsx.code_minor if self.imsx else None

    @property
    def description(self) -> str | None:
        return self.imsx.description if self.imsx and self.imsx.description else None


class BadRequest(StatusError):
    """400: the SIS did not understand the request (a filter, a field, a parameter)."""


class AuthenticationFailed(StatusError):
    """401 on a OneRoster call: the credentials or a required vendor header were refused."""


class TokenRequestFailed(StatusError):
    """The OAuth 2 token endpoint refused to issue a token."""


class PermissionDenied(StatusError):
    """403: the credentials are valid but lack a scope. `missing_scope` names the one needed."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status_code: int,
        imsx: ImsxStatus | None = None,
        missing_scope: str | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path, status_code=status_code, imsx=imsx)
        self.missing_scope = missing_scope


class NotFound(StatusError):
    """404: the object is unknown, or there is no OneRoster endpoint at that path."""


class InvalidData(StatusError):
    """422 (or 400 invaliddata): the SIS refused the object we sent."""


class RateLimited(StatusError):
    """429 on every attempt: the SIS kept asking us to slow down."""


class ServerError(StatusError):
    """5xx on every attempt."""


class MalformedResponse(ResponseError):
    """The SIS answered 2xx with a body that is not JSON or not valid OneRoster."""


class PagingError(ResponseError):
    """The SIS pages in a way that cannot be followed safely (same page twice, a Link loop)."""


class AmbiguousMatch(OneRosterError):
    """A lookup that must find at most one object found several."""


class RunawayCollection(ResponseError):
    """The SIS kept sending pages of a collection past a bound (a page already read, more
    records or pages than it said it had or than the ceiling, the walk's time budget)."""


class ForeignAddress(ResponseError):
    """The SIS pointed sislink at an address that is not the SIS's own (a next link or a
    redirect to another scheme, host, port or path): refused, the token never sent there."""


class ResponseTooLarge(ResponseError):
    """The SIS's answer was larger than the cap; sislink stopped reading it."""


class TimeBudgetSpent(SISTimeout):
    """Every call of this import or export together took longer than its time budget."""


class TokenResponseInvalid(ResponseError):
    """The OAuth 2 token endpoint answered 200 without a usable token (not JSON, no
    access_token, one with control characters): the token endpoint is to blame, not the call
    that needed the token."""


class TokenRefused(TokenRequestFailed):
    """The token endpoint refused with an HTTP error; `error` and `error_description` are what
    it said (RFC 6749 section 5.2), as printable text, None where it said nothing usable."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status_code: int,
        imsx: ImsxStatus | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path, status_code=status_code, imsx=imsx)
        self.error = error
        self.error_description = error_description
