"""What can go wrong when talking to Google Classroom, as exceptions whose names say what happened
and whose message is one sentence a person can act on.

Google answers an API error as `{"error": {"code", "message", "status", "details"}}`; Classroom
puts a tag such as `@ProjectPermissionDenied` or `@CourseNotModifiable` at the start of the
message for permission and precondition failures. `error_from_answer` reads that (or whatever
came instead: HTML from a wrong endpoint, nothing at all) into one of the classes below.

None of them ever holds a secret: they are built from the method's name, the HTTP status and
the answer's body, never from the request's headers (the bearer token) or the key file.

    ClassroomError
    +-- KeyFileError            the service account key file cannot be used
    +-- TokenRefused            the token endpoint refused the key, the user or the scopes
    +-- ClassroomUnreachable    no HTTP answer at all
    +-- MalformedAnswer         an answer that is not Google's API (HTML, empty, not JSON)
    +-- ApiError                Google's error JSON
        +-- InvalidArgument     400 INVALID_ARGUMENT
        +-- Unauthenticated     401 UNAUTHENTICATED
        +-- PermissionDenied    403 PERMISSION_DENIED (tag: @ProjectPermissionDenied, ...)
        +-- NotFound            404 NOT_FOUND
        +-- AlreadyExists       409 ALREADY_EXISTS
        +-- FailedPrecondition  400 FAILED_PRECONDITION (tag: @CourseNotModifiable, ...)
        +-- QuotaExhausted      429 RESOURCE_EXHAUSTED, after every retry
        +-- ServerError         5xx, after every retry
"""

from __future__ import annotations

import json
import re
from typing import Any

_TAG = re.compile(r"@(\w+)")

# Google's own words go into sentences shown on pages, reports and logs: a hostile or broken
# server could put a whole HTML page or a token in them. They are cut, and anything that looks
# like a credential (a bearer token, a `token=`/`key=`/`secret=` value) is masked.
GOOGLE_WORDS_MAX = 300
_SECRET_LOOKING = re.compile(
    r"(?i)(?P<head>\bbearer\s+|\b(?:access_token|refresh_token|id_token|token|api_?key|key|"
    r"client_secret|secret|password|assertion)\s*[=:]\s*[\"']?)[^\s&\"',;]+"
)


def google_words(text: str) -> str:
    """Google's message as it may be shown: credentials masked, at most GOOGLE_WORDS_MAX
    characters (the rest is said to be cut, never silently dropped)."""
    masked = _SECRET_LOOKING.sub(lambda found: f"{found.group('head')}***", " ".join(text.split()))
    if len(masked) <= GOOGLE_WORDS_MAX:
        return masked
    return masked[:GOOGLE_WORDS_MAX].rstrip() + " … (cut)"


class ClassroomError(Exception):
    """Base of every error talking to Google Classroom: `message` is the sentence to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class KeyFileError(ClassroomError, ValueError):
    """The service account key file (or the administrator's email beside it) cannot work."""


class TokenRefused(ClassroomError):
    """The key file's token endpoint did not give an access token."""

    def __init__(self, message: str, *, error: str = "", description: str = "") -> None:
        super().__init__(message)
        self.error = error  # OAuth's code: invalid_grant, unauthorized_client, ...
        self.description = description


class ClassroomUnreachable(ClassroomError):
    """Nothing answered (refused, reset, timed out), on every attempt."""


class MalformedAnswer(ClassroomError):
    """Something answered, but not as Google's API does (HTML, empty, not JSON)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ApiError(ClassroomError):
    """Google's error JSON: the HTTP status, Google's status name, the tag and Google's words."""

    def __init__(
        self,
        message: str,
        *,
        call: str,
        status: int,
        google_status: str,
        google_message: str,
        tag: str | None,
        details: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.call = call
        self.status = status
        self.google_status = google_status
        self.google_message = google_message
        self.tag = tag
        self.details = details or []


class InvalidArgument(ApiError):
    """400 INVALID_ARGUMENT: the request does not match the API (a bug on our side, mostly)."""


class Unauthenticated(ApiError):
    """401 UNAUTHENTICATED: the access token was not accepted."""


class PermissionDenied(ApiError):
    """403 PERMISSION_DENIED: not allowed for this user or this Cloud project."""


class NotFound(ApiError):
    """404 NOT_FOUND: no such course, alias, user or item."""


class AlreadyExists(ApiError):
    """409 ALREADY_EXISTS: an alias, member or invitation that is already there."""


class FailedPrecondition(ApiError):
    """FAILED_PRECONDITION: allowed in general, not in the object's present state."""


class QuotaExhausted(ApiError):
    """429 RESOURCE_EXHAUSTED, still, after every retry."""


class ServerError(ApiError):
    """5xx, still, after every retry."""


_BY_STATUS: dict[str, type[ApiError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "FAILED_PRECONDITION": FailedPrecondition,
    "RESOURCE_EXHAUSTED": QuotaExhausted,
}

DELEGATION_PAGE = (
    "Admin console > Security > Access and data control > API controls > Domain-wide delegation"
)

# What each Classroom tag means and what to do, in words (Google's access-error guide).
_TAG_ADVICE: dict[str, str] = {
    "ProjectPermissionDenied": (
        "only the Cloud project that created a courseWork item may change it or its "
        "submissions; this one was made by another project or in Classroom itself (its grades "
        "can still be read)"
    ),
    "ClassroomApiDisabled": (
        "Classroom is turned off for this user: turn it on for their organisational unit in "
        "the Admin console (Apps > Google Workspace > Classroom) and have them accept "
        "Classroom's terms once"
    ),
    "UserInIllegalDomain": (
        "the user is outside the Google Workspace domain (or in a domain the district's "
        "Classroom settings do not allow); only the domain's own accounts can be added"
    ),
    "CourseNotModifiable": (
        "the course cannot be changed in its present state (an archived, declined or "
        "suspended course can only have its state changed)"
    ),
    "IneligibleOwner": "the new owner must already be a teacher of the course",
    "UserCannotOwnCourse": "this user may not own a course (for example, a student account)",
    "InactiveCourseOwner": "the course owner's account is suspended or deleted",
    "CourseMemberLimitReached": "the course has reached Classroom's limit of members",
    "CourseTeacherLimitReached": "the course has reached Classroom's limit of teachers",
    "UserGroupsMembershipLimitReached": "the user is in too many courses (Classroom's limit)",
    "CourseTitleCannotContainUrl": "a course name cannot contain a web address",
    "CannotRemoveCourseOwner": "the owner cannot be removed: make another teacher the owner first",
}


def _status_name(http_status: int) -> str:
    if http_status == 429:
        return "RESOURCE_EXHAUSTED"
    if http_status >= 500:
        return "UNAVAILABLE" if http_status == 503 else "INTERNAL"
    return {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(
        http_status, {404: "NOT_FOUND", 409: "ALREADY_EXISTS"}.get(http_status, "UNKNOWN")
    )


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith("<!doctype html") or head.startswith("<html") or "<body" in head


def error_from_answer(
    call: str, http_status: int, body: bytes | str, *, as_user: str = "", tries: int = 1
) -> ClassroomError:
    """The error for a non-2xx answer to `call` (e.g. `courses.students.create`)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        what = "HTML" if _looks_like_html(text) else ("nothing" if not text.strip() else "text")
        return MalformedAnswer(
            f"Google Classroom answered {call} with {what} (HTTP {http_status}), not Google's "
            "error JSON: check the API endpoint (for the real Classroom it is "
            "https://classroom.googleapis.com/) and any proxy in between.",
            status=http_status,
        )
    google_message = google_words(str(error.get("message") or ""))
    google_status = str(error.get("status") or _status_name(http_status))
    details = error.get("details") if isinstance(error.get("details"), list) else []
    found = _TAG.search(google_message)
    tag = found.group(1) if found else None
    reasons = {
        str(d.get("reason")) for d in details or [] if isinstance(d, dict) and d.get("reason")
    }
    who = f" as {as_user}" if as_user else ""
    if "SERVICE_DISABLED" in reasons or "has not been used in project" in google_message:
        advice = (
            "the Google Classroom API is not enabled in the service account's Cloud project: "
            "enable it in the Google Cloud console (APIs & Services > Library > Google "
            "Classroom API), wait a few minutes, and try again"
        )
    elif "ACCESS_TOKEN_SCOPE_INSUFFICIENT" in reasons or "insufficient authentication scopes" in (
        google_message.lower()
    ):
        advice = (
            "the access token lacks a scope this call needs: grant the service account's "
            f"client id every scope sislink asks for ({DELEGATION_PAGE})"
        )
    elif tag in _TAG_ADVICE:
        advice = f"{_TAG_ADVICE[tag]} (@{tag})"
    elif google_status == "RESOURCE_EXHAUSTED":
        advice = (
            f"the quota was still used up after {tries} tries; Google allows 1,200 calls a "
            "minute per user and 3,000 per project: run the sync again later, or ask Google "
            f"for more quota ({google_message or 'no detail given'})"
        )
    elif http_status >= 500:
        advice = (
            f"Classroom failed with HTTP {http_status} after {tries} tries "
            f"({google_message or google_status}); try again later"
        )
    elif google_status == "PERMISSION_DENIED":
        advice = (
            f"{google_message or 'permission denied'}; a domain administrator can add people "
            "directly, a teacher must invite them, and only a teacher of a course or an "
            "administrator can see it"
        )
    elif google_status == "UNAUTHENTICATED":
        advice = (
            f"{google_message or 'not authenticated'}; check the key file and that "
            "domain-wide delegation is granted"
        )
    elif google_status == "NOT_FOUND":
        advice = f"{google_message or 'not found'} Check the course id or alias, or the email"
    elif google_status == "ALREADY_EXISTS":
        advice = (
            f"{google_message or 'already exists'} (an alias, member or invitation that is "
            "already there)"
        )
    elif google_status == "INVALID_ARGUMENT":
        advice = f"the request does not match the API: {google_message}"
    else:
        advice = google_message or google_status
    message = f"Google Classroom refused {call}{who} ({google_status}): {advice}."
    message = message.replace("..", ".")
    cls: type[ApiError] = _BY_STATUS.get(
        google_status, ServerError if http_status >= 500 else ApiError
    )
    if google_status == "FAILED_PRECONDITION":
        cls = FailedPrecondition
    return cls(
        message,
        call=call,
        status=http_status,
        google_status=google_status,
        google_message=google_message,
        tag=tag,
        details=details,
    )


# Google's token endpoint answers {"error", "error_description"}; these are its known words.
def token_error(
    *,
    error: str,
    description: str,
    client_email: str,
    client_id: str,
    subject: str,
    scopes: tuple[str, ...],
    token_uri: str,
) -> TokenRefused:
    """The sentence for a refused JWT-bearer grant (no assertion, key or token in it)."""
    lowered = description.lower()
    if error == "unauthorized_client":
        message = (
            f"Google refused to let service account {client_email} act as {subject}: "
            f"domain-wide delegation is not granted to client id {client_id} for every scope "
            f"sislink asks for. In the {DELEGATION_PAGE}, add client id {client_id} with the "
            f"scopes {', '.join(scopes)}."
        )
    elif "signature" in lowered:
        message = (
            f"Google did not accept the key file's private key for {client_email}: the key "
            "was deleted, rotated, or does not belong to this service account. Create a new "
            "JSON key for the service account in the Google Cloud console and use that file."
        )
    elif "email or user id" in lowered or "subject" in lowered:
        message = (
            f"Google does not know {subject} as a user of the domain: give the email of an "
            "administrator of the Google Workspace domain the service account is delegated in."
        )
    elif error == "invalid_scope":
        message = f"Google refused the scopes sislink asked for ({description}); this is a bug in sislink."
    elif "iat" in lowered or "exp" in lowered or "timeframe" in lowered:
        message = (
            "Google refused the signed request as out of date: check this server's clock "
            "(it must be within a few minutes of the real time)."
        )
    else:
        message = (
            f"Google's token endpoint {token_uri} refused the key for {client_email} acting as "
            f"{subject}: {error or 'error'}: {description or 'no reason given'}."
        )
    return TokenRefused(message, error=error, description=description)
