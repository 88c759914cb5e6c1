"""The administrator's Google Classroom setup: connect (the service account key and an
administrator's email, checked and stored sealed, no call made), authorise (real calls, each
failure named with its fix), status, disconnect (the key erased; nothing in Classroom removed).
The CLI (and the console, when it gets its page) call these and nothing else.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import ConnectionStatus, GoogleConnection
from sislink.classroom.services.access import require_admin
from sislink.classroom.services.audit import record_event

# DEFAULT_API_ENDPOINT and SCOPES are re-exported (the "as" form) for the console, which asks
# services in sync/ and never a protocol package.
from sislink.googleclassroom import DEFAULT_API_ENDPOINT as DEFAULT_API_ENDPOINT
from sislink.googleclassroom import SCOPES as SCOPES
from sislink.googleclassroom import (
    ClassroomClient,
    ClassroomError,
    ClassroomUnreachable,
    ClientSettings,
    KeyFileError,
    MalformedAnswer,
    PermissionDenied,
    ServiceAccountKey,
    TokenRefused,
)
from sislink.operations.metrics import observe_google_call
from sislink.sync.errors import AuthorisationFailed, InvalidConnectionDetails, NotConnected


@dataclass(frozen=True)
class GoogleCheck:
    """One step of authorise: its name, whether it passed, and what was seen or what to do."""

    name: str
    ok: bool
    detail: str
    confirmed: bool = True  # False: passed, but the calls could not prove it either way


@dataclass(frozen=True)
class GoogleConnectionView:
    """A Google connection as an administrator sees it: never the key."""

    domain: str
    admin_email: str
    client_email: str
    client_id: str
    project_id: str
    api_endpoint: str
    status: str
    connected_at: datetime
    authorised_at: datetime | None
    checks: list[GoogleCheck] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["connected_at"] = self.connected_at.isoformat()
        found["authorised_at"] = self.authorised_at.isoformat() if self.authorised_at else None
        return found


def _domain_of(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def _in_domain(email: str, domain: str) -> bool:
    host = _domain_of(email)
    return host == domain or host.endswith("." + domain)


def _current(session: Session) -> GoogleConnection | None:
    return session.scalars(
        select(GoogleConnection).where(GoogleConnection.current_slot == 1)
    ).first()


def _view(connection: GoogleConnection) -> GoogleConnectionView:
    checks = [GoogleCheck(**c) for c in json.loads(connection.last_check or "[]")]
    return GoogleConnectionView(
        domain=connection.domain,
        admin_email=connection.admin_email,
        client_email=connection.client_email,
        client_id=connection.client_id,
        project_id=connection.project_id,
        api_endpoint=connection.api_endpoint,
        status=connection.status,
        connected_at=connection.created_at,
        authorised_at=connection.authorised_at,
        checks=checks,
    )


def connect(
    classroom: Classroom,
    actor: Actor,
    *,
    key_file_text: str,
    admin_email: str,
    domain: str | None = None,
    api_endpoint: str = DEFAULT_API_ENDPOINT,
) -> GoogleConnectionView:
    """Check the key file and the administrator's email, and save them as the current Google
    connection (not yet authorised): the key sealed. No call is made to Google."""
    require_admin(actor, "connect sislink to Google Classroom")
    try:
        key = ServiceAccountKey.from_json(key_file_text)
    except KeyFileError as exc:
        raise InvalidConnectionDetails(str(exc)) from None
    email = admin_email.strip().lower()
    if "@" not in email or not _domain_of(email):
        raise InvalidConnectionDetails(
            f"{admin_email!r} is not an email address: give the email of an administrator of "
            "the Google Workspace domain."
        )
    chosen_domain = (domain or _domain_of(email)).strip().lower().lstrip("@")
    if not _in_domain(email, chosen_domain):
        raise InvalidConnectionDetails(
            f"{email} is outside the domain {chosen_domain}: give an administrator of "
            f"{chosen_domain} (or the domain the administrator belongs to)."
        )
    if urlparse(api_endpoint).scheme not in ("https", "http") or not urlparse(api_endpoint).netloc:
        raise InvalidConnectionDetails(
            f"{api_endpoint!r} is not a web address; the real Classroom's is {DEFAULT_API_ENDPOINT}"
        )
    with classroom.transaction() as session:
        before = _current(session)
        if before is not None:
            before.current_slot = None
            before.key_sealed = None  # a replaced key is erased too
            before.status = ConnectionStatus.DISCONNECTED
            before.disconnected_at = datetime.now(UTC)
            session.flush()
        connection = GoogleConnection(
            domain=chosen_domain,
            admin_email=email,
            client_email=key.client_email,
            client_id=key.client_id,
            project_id=key.project_id,
            private_key_id=key.private_key_id,
            api_endpoint=api_endpoint,
            key_sealed=classroom.secret_box.seal(key_file_text),
            status=ConnectionStatus.DRAFT,
            current_slot=1,
            connected_by_id=actor.person_id,
        )
        session.add(connection)
        session.flush()
        record_event(
            session,
            actor,
            "google.connected",
            f"google_connection:{connection.id}",
            {"domain": chosen_domain, "admin_email": email, "client_email": key.client_email},
        )
        return _view(connection)


def _client(
    classroom: Classroom, connection: GoogleConnection, settings: ClientSettings | None
) -> ClassroomClient:
    if connection.key_sealed is None:
        raise NotConnected("The Google connection has no key (disconnected): connect again.")
    key = ServiceAccountKey.from_json(classroom.secret_box.open(connection.key_sealed))
    client = ClassroomClient(
        key,
        admin_email=connection.admin_email,
        api_endpoint=connection.api_endpoint,
        settings=settings or ClientSettings(max_retries=2, timeout_s=20),
    )
    client.call_observers.append(observe_google_call)  # Prometheus (operations/metrics.py)
    return client


def _problem(exc: ClassroomError) -> str:
    """A stable name for why authorise failed (for the console and scripts)."""
    if isinstance(exc, TokenRefused):
        if exc.error == "unauthorized_client":
            return "delegation"
        if "signature" in exc.description.lower():
            return "key_unknown"
        if "email or user id" in exc.description.lower():
            return "not_in_domain"
        return "token_refused"
    if isinstance(exc, ClassroomUnreachable):
        return "unreachable"
    if isinstance(exc, MalformedAnswer):
        return "not_google"
    if isinstance(exc, PermissionDenied):
        if (
            "SERVICE_DISABLED" in json.dumps(exc.details)
            or "has not been used" in exc.google_message
        ):
            return "api_disabled"
        if exc.tag == "ClassroomApiDisabled":
            return "classroom_off_for_user"
        if "scope" in exc.google_message.lower():
            return "scope_missing"
        return "permission_denied"
    return "classroom_error"


def authorise(
    classroom: Classroom, actor: Actor, *, settings: ClientSettings | None = None
) -> GoogleConnectionView:
    """Call Classroom for real as the administrator: the token (the key and the delegation of
    every scope), the administrator's profile (the domain, the API switched on, Classroom on for
    them), that they can list courses, and whether they see courses beyond their own (an
    administrator does). The first failure stops it, named with its fix (AuthorisationFailed)."""
    require_admin(actor, "authorise the Google Classroom connection")
    with classroom.session() as session:
        connection = _current(session)
        if connection is None:
            raise NotConnected("sislink is not connected to Google Classroom: connect first.")
        session.expunge(connection)
    checks: list[GoogleCheck] = []
    failure: AuthorisationFailed | None = None
    with _client(classroom, connection, settings) as client:
        try:
            client.service()  # the token: key, delegation, scopes
            checks.append(GoogleCheck(
                "token", True,
                f"{connection.client_email} may act as {connection.admin_email} with "
                f"{len(SCOPES)} scopes",
            ))  # fmt: skip
            me = client.execute(lambda s: s.userProfiles().get(userId="me"))
            seen = str(me.get("emailAddress") or "").lower()
            if seen and not _in_domain(seen, connection.domain):
                raise AuthorisationFailed(
                    "wrong_domain",
                    f"Classroom says the administrator is {seen}, outside {connection.domain}: "
                    "connect again with the right domain.",
                )
            checks.append(GoogleCheck(
                "domain and API", True,
                f"the Classroom API is enabled and {seen or connection.admin_email} is in "
                f"{connection.domain}",
            ))  # fmt: skip
            listed = client.execute(lambda s: s.courses().list(pageSize=50))
            courses = listed.get("courses", [])
            checks.append(GoogleCheck(
                "list courses", True, f"the administrator sees {len(courses)} course(s) on the first page"
            ))  # fmt: skip
            checks.append(_administrator_check(client, courses))
        except ClassroomError as exc:
            failure = AuthorisationFailed(_problem(exc), str(exc))
        except AuthorisationFailed as exc:
            failure = exc
    if failure is not None:
        checks.append(GoogleCheck(failure.problem, False, failure.message))
    with classroom.transaction() as session:
        stored = session.get(GoogleConnection, connection.id)
        assert stored is not None
        stored.last_check = json.dumps([asdict(c) for c in checks])
        if failure is None:
            stored.status = ConnectionStatus.AUTHORISED
            stored.authorised_at = datetime.now(UTC)
        record_event(
            session,
            actor,
            "google.authorised" if failure is None else "google.authorise_failed",
            f"google_connection:{stored.id}",
            {"problem": failure.problem} if failure else {},
        )
        view = _view(stored)
    if failure is not None:
        raise failure
    return view


def _administrator_check(client: ClassroomClient, courses: list[dict[str, Any]]) -> GoogleCheck:
    """An administrator sees every course of the domain; anyone else only their own. Seeing a
    course they are not in proves the role; seeing none proves nothing (a new domain)."""
    if not courses:
        return GoogleCheck(
            "administrator", True,
            "not confirmed: the domain has no course yet (the first direct add will tell; "
            "a non-administrator is refused there)",
            confirmed=False,
        )  # fmt: skip
    mine: set[str] = set()
    for role in ("teacherId", "studentId"):
        page = client.execute(functools.partial(_own_courses, role))
        mine |= {c["id"] for c in page.get("courses", [])}
    others = [c for c in courses if c["id"] not in mine]
    if others:
        return GoogleCheck("administrator", True, "sees courses it does not teach or attend")
    raise AuthorisationFailed(
        "not_admin",
        f"{client.admin_email} sees only the courses they belong to: they are not an "
        "administrator of the domain. Give the email of a super administrator (or one with "
        "Classroom's administrator privileges) and connect again.",
    )


def _own_courses(role: str, service: Any) -> Any:
    return service.courses().list(pageSize=50, **{role: "me"})


def status(classroom: Classroom) -> GoogleConnectionView | None:
    """The current Google connection, or None."""
    with classroom.session() as session:
        connection = _current(session)
        return _view(connection) if connection is not None else None


def disconnect(classroom: Classroom, actor: Actor) -> GoogleConnectionView:
    """Disconnect: the key is erased at once; nothing in Classroom is touched."""
    require_admin(actor, "disconnect Google Classroom")
    with classroom.transaction() as session:
        connection = _current(session)
        if connection is None:
            raise NotConnected("sislink is not connected to Google Classroom.")
        connection.key_sealed = None
        connection.current_slot = None
        connection.status = ConnectionStatus.DISCONNECTED
        connection.disconnected_at = datetime.now(UTC)
        record_event(session, actor, "google.disconnected", f"google_connection:{connection.id}")
        return _view(connection)
