"""The administrator's SIS setup: catalogue, eligibility, connect, authorise, teacher permission,
disconnect, status and the audit trail. The CLI and the REST API call these and nothing else.

Connect checks what was typed and saves it (the secret sealed), without calling the SIS.
Authorise calls the SIS for real and fixes the SIS identity (partner + district org), so that a
reconnect to the same SIS, even at a changed URL, resumes with the same ids, and a switch to a
different SIS needs the administrator's confirmation and sets old class links aside.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import ClassLink, ConnectionStatus, Person, SisConnection
from sislink.classroom.services import connections
from sislink.classroom.services.access import require_admin
from sislink.classroom.services.audit import recent_events, record_event
from sislink.partners import (
    EligibilityAnswers,
    HostUrlProblem,
    UrlPolicy,
    catalogue,
    check_eligibility,
    derive_urls,
    normalise_host_url,
)
from sislink.partners.eligibility import Hosting
from sislink.sync.connection_checks import (
    DEFAULT_TIMEOUT_S,
    CheckTiming,
    check_sis,
    settings_for_authorise,
)
from sislink.sync.errors import (
    AuthorisationFailed,
    ConfirmationRequired,
    InvalidConnectionDetails,
    NotConnected,
)
from sislink.sync.sis_client import build_settings, partner_profile, settings_for

ALLOW_PRIVATE_VARIABLE = "SISLINK_ALLOW_PRIVATE_SIS"
AUDIT_ACTIONS_PREFIX = "sis."


def private_addresses_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """True when the installation allows SIS addresses on private networks."""
    value = (os.environ if environ is None else environ).get(ALLOW_PRIVATE_VARIABLE, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


# ---- what the services answer -------------------------------------------------------------


@dataclass(frozen=True)
class PartnerEntry:
    """One SIS of the catalogue, as an administrator sees it before connecting."""

    name: str
    display_name: str
    oneroster_version: str
    auth: str
    partnership: str
    labels: dict[str, str]
    host_url_example: str
    token_url_needed: bool
    client_auth: str | None  # how its token request sends the credentials; None: OAuth 1.0a
    extra_credentials: list[str]
    products: list[str]
    setup_steps: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EligibilityReport:
    sis: str
    display_name: str
    eligible: bool
    reasons: list[str]
    warnings: list[str]
    to_confirm: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConnectionView:
    """The current connection as shown to an administrator: never a secret, only whether one
    is stored."""

    id: int
    partner: str
    display_name: str
    version: str
    host_url: str
    token_url: str | None
    access_key: str
    client_auth: str | None  # how the token request sends the credentials; None with OAuth 1.0a
    status: str
    secret_stored: bool
    teacher_export_enabled: bool
    sis_identity: str | None
    created_at: datetime
    connected_by: str
    authorised_at: datetime | None
    disconnected_at: datetime | None
    last_import_at: datetime | None
    last_export_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuthorisationReport:
    """Authorised: what the SIS showed, and what happened to class links."""

    connection: ConnectionView
    district_sourced_id: str
    district_name: str
    same_sis_as_before: bool | None  # None: no earlier SIS to compare with
    links_resumed: int
    links_set_aside: int
    steps: list[CheckTiming] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "Authorised"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["connection"] = self.connection.as_dict()
        data["message"] = self.message
        return data


@dataclass(frozen=True)
class StatusReport:
    connection: ConnectionView | None
    partners: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection.as_dict() if self.connection else None,
            "partners": self.partners,
        }


# ---- catalogue and eligibility --------------------------------------------------------------


def partners() -> list[PartnerEntry]:
    """Every SIS in the catalogue, with its partnership status."""
    return [
        PartnerEntry(
            name=p.name,
            display_name=p.display_name,
            oneroster_version=p.oneroster_version,
            auth=p.auth,
            partnership=p.partnership_words,
            labels={
                "host_url": p.labels.host_url,
                "access_key": p.labels.access_key,
                "secret_code": p.labels.secret_code,
            },
            host_url_example=p.host_url_example,
            token_url_needed=p.auth == "oauth2" and p.token_url is None,
            client_auth=p.client_auth if p.auth == "oauth2" else None,
            extra_credentials=list(p.extra_credentials),
            products=list(p.products),
            setup_steps=list(p.setup_steps),
        )
        for p in catalogue().values()
    ]


def partnership_table() -> list[dict[str, str]]:
    return [
        {"name": p.name, "display_name": p.display_name, "partnership": p.partnership_words}
        for p in catalogue().values()
    ]


def eligibility(
    sis: str,
    *,
    version: str | None = None,
    has_licence: bool | None = None,
    hosting: Hosting | None = None,
) -> EligibilityReport:
    """Eligible or not for `sis`, and why, from the administrator's answers."""
    chosen = partner_profile(sis)
    if hosting is not None and hosting not in ("vendor", "self"):
        raise InvalidConnectionDetails(
            f"Hosting is 'vendor' (the SIS company runs it) or 'self' (the district does), "
            f"not {hosting!r}."
        )
    verdict = check_eligibility(chosen, EligibilityAnswers(version, has_licence, hosting))
    return EligibilityReport(
        sis=chosen.name,
        display_name=chosen.display_name,
        eligible=verdict.eligible,
        reasons=list(verdict.reasons),
        warnings=list(verdict.warnings),
        to_confirm=list(verdict.to_confirm),
    )


# ---- the lifecycle ---------------------------------------------------------------------------


def connect(
    classroom: Classroom,
    actor: Actor,
    *,
    sis: str,
    host_url: str,
    access_key: str,
    secret_code: str,
    token_url: str | None = None,
    extra_credentials: Mapping[str, str] | None = None,
    insecure: bool = False,
    allow_private: bool | None = None,
    confirm_different_sis: bool = False,
    client_auth: str | None = None,
) -> ConnectionView:
    """Check what the administrator typed and save it as the current connection (not yet
    authorised). No call is made to the SIS; the secret is stored sealed. `client_auth`
    ("basic" or "post") says how the OAuth 2 token request sends the client id and secret,
    where the SIS wants it otherwise than its profile says."""
    require_admin(actor, "connect sislink to a SIS")
    chosen = partner_profile(sis)
    policy = UrlPolicy(
        allow_insecure=insecure,
        allow_private=private_addresses_allowed() if allow_private is None else allow_private,
    )
    try:
        urls = derive_urls(chosen, host_url, policy)
    except HostUrlProblem as exc:
        raise InvalidConnectionDetails(str(exc), exc.suggestion) from None
    given_token_url = _token_url(chosen.display_name, chosen.auth, token_url, policy)
    extras = _extra_credentials(chosen.display_name, chosen.extra_credentials, extra_credentials)
    # Everything the consumer will need must be derivable now, not at the first import.
    build_settings(
        chosen,
        host_url=urls.host_url,
        access_key=access_key,
        secret_code=secret_code,
        token_url=given_token_url,
        extra_credentials=extras,
        policy=policy,
        client_auth=client_auth,
    )
    with classroom.transaction() as session:
        before = _last_known_sis(session)
        different = before is not None and before.partner != chosen.name
        if different and not confirm_different_sis:
            assert before is not None
            raise ConfirmationRequired(
                f"sislink is linked to {_display(before.partner)} (district "
                f"{before.district_sourced_id}); {chosen.display_name} is a different SIS. Class "
                "links made with the old SIS will be set aside (kept for history, not reused). "
                "To go ahead, connect again and confirm (--confirm-different-sis)."
            )
        connection = connections.save_connection(
            session,
            actor,
            classroom.secret_box,
            partner=chosen.name,
            version=chosen.oneroster_version,
            host_url=urls.host_url,
            access_key=access_key,
            secret_code=secret_code,
            token_url=given_token_url,
            extra_credentials=extras,
            # Kept only where it differs from the profile's, so a corrected profile applies.
            client_auth=None if client_auth == chosen.client_auth else client_auth,
        )
        if different and before is not None:
            record_event(
                session,
                actor,
                "sis.different_sis_confirmed",
                f"sis_connection:{connection.id}",
                {"from": before.sis_identity, "to_partner": chosen.name},
            )
        return _view(session, connection)


async def authorise(
    classroom: Classroom,
    actor: Actor,
    *,
    confirm_different_sis: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AuthorisationReport:
    """Check the current connection against the SIS for real; AuthorisationFailed (one
    precise problem and what to do) or the report. Writes an audit event either way."""
    require_admin(actor, "authorise the SIS connection")
    with classroom.session() as session:
        connection = connections.current_connection(session)
        if connection is None:
            raise NotConnected(
                "There is no SIS connection to authorise; connect first (sislink connect)."
            )
        if connection.status == ConnectionStatus.DISCONNECTED:
            raise NotConnected(
                "The SIS connection was disconnected and its secret erased; connect again "
                "(sislink connect), then authorise."
            )
        chosen = partner_profile(connection.partner)
        settings = settings_for_authorise(settings_for(connection, classroom.secret_box), timeout_s)
        connection_id, host_url = connection.id, connection.host_url
    try:
        answer = await check_sis(settings, chosen, host_url)
    except AuthorisationFailed as failed:
        with classroom.transaction() as session:
            record_event(
                session,
                actor,
                "sis.authorise_failed",
                f"sis_connection:{connection_id}",
                {"problem": failed.problem, "message": failed.message},
            )
        raise
    identity = f"{chosen.name}:{answer.district_sourced_id}"
    with classroom.session() as session:
        # The saved connection itself, once authorised, is the SIS to compare with: the same
        # credentials reaching another district are a different SIS, as a new connection is.
        saved = _get(session, connection_id)
        before = saved if saved.sis_identity is not None else None
        before = before or _last_known_sis(session, excluding=connection_id)
        before_identity = before.sis_identity if before is not None else None
        before_partner = before.partner if before is not None else None
        before_district = before.district_sourced_id if before is not None else None
        moved_under_saved = before is saved and before_identity != identity
    same: bool | None = None if before_identity is None else before_identity == identity
    if moved_under_saved and not confirm_different_sis:
        with classroom.transaction() as session:
            record_event(
                session,
                actor,
                "sis.different_sis_found",
                f"sis_connection:{connection_id}",
                {"before": before_identity, "found": identity, "same_connection": True},
            )
        raise ConfirmationRequired(
            f"The saved connection to {chosen.display_name} now reaches another district "
            f"({answer.district_sourced_id}) than the one it was authorised with "
            f"({before_district}): that is a different SIS. Class links made with the old "
            "district will be set aside (kept for history, not reused). To go ahead, "
            "authorise again and confirm (--confirm-different-sis)."
        )
    if same is False and before_partner == chosen.name and not confirm_different_sis:
        with classroom.transaction() as session:
            record_event(
                session,
                actor,
                "sis.different_sis_found",
                f"sis_connection:{connection_id}",
                {"before": before_identity, "found": identity},
            )
        raise ConfirmationRequired(
            f"These credentials reach a different {chosen.display_name} district "
            f"({answer.district_sourced_id}) from the one sislink was linked to "
            f"({before_district}). Class links made with the old district will be set aside "
            "(kept for history, not reused). To go ahead, authorise again and confirm "
            "(--confirm-different-sis)."
        )
    with classroom.transaction() as session:
        connection = _get(session, connection_id)
        if not connection.is_current:
            raise ConfirmationRequired(
                "Another administrator replaced the SIS connection while it was being "
                "authorised; look at the connection now (sislink status) and authorise again."
            )
        was_authorised = connection.status == ConnectionStatus.AUTHORISED
        if moved_under_saved:
            # Confirmed: the old district keeps its row (history) and its links (set aside);
            # a new row, with the same details and teacher permission, is the connection to
            # the new district.
            connection = _replace_connection(session, actor, classroom, connection)
        connections.mark_authorised(
            session, actor, connection.id, district_sourced_id=answer.district_sourced_id
        )
        if not was_authorised:
            # "Enable classwork and mark exporting" is on by default once authorised.
            connection.teacher_export_enabled = True
        resumed, set_aside = _carry_links(session, actor, connection)
        return AuthorisationReport(
            connection=_view(session, connection),
            district_sourced_id=answer.district_sourced_id,
            district_name=answer.district_name,
            same_sis_as_before=same,
            links_resumed=resumed,
            links_set_aside=set_aside,
            steps=list(answer.steps),
        )


def set_teacher_export(classroom: Classroom, actor: Actor, enabled: bool) -> ConnectionView:
    """Switch "Enable classwork and mark exporting" for teachers on or off."""
    with classroom.transaction() as session:
        connection = connections.set_teacher_export(session, actor, enabled)
        return _view(session, connection)


def disconnect(classroom: Classroom, actor: Actor) -> ConnectionView:
    """Disconnect: exports and scheduled imports stop at once (no client can be opened any
    more); links, the export ledger and history stay; the stored secret is erased."""
    with classroom.transaction() as session:
        connection = connections.disconnect(session, actor)
        return _view(session, connection)


def status(classroom: Classroom) -> StatusReport:
    """The current connection (or None) and the partnership status of every SIS."""
    with classroom.session() as session:
        connection = connections.current_connection(session)
        view = _view(session, connection) if connection is not None else None
    return StatusReport(connection=view, partners=partnership_table())


def audit_trail(
    classroom: Classroom, actor: Actor, *, limit: int = 100, sis_only: bool = True
) -> list[dict[str, Any]]:
    """Recent audit events (newest first): who, what, when, details (never a secret)."""
    require_admin(actor, "read the audit trail")
    limit = max(1, min(limit, 1000))
    with classroom.session() as session:
        events = recent_events(session, limit=limit if not sis_only else limit * 5)
        emails = _emails(session, {e.actor_id for e in events if e.actor_id is not None})
        rows = [
            {
                "at": event.at,
                "who": emails.get(event.actor_id, "") if event.actor_id else _OPERATOR,
                "action": event.action,
                "subject": event.subject,
                "details": event.details,
            }
            for event in events
            if not sis_only or event.action.startswith(AUDIT_ACTIONS_PREFIX)
        ]
    return rows[:limit]


# ---- helpers ---------------------------------------------------------------------------------

_OPERATOR = "the operator (command line)"


def _token_url(
    display_name: str, auth: str, token_url: str | None, policy: UrlPolicy
) -> str | None:
    if token_url is None or not token_url.strip():
        return None
    if auth == "oauth1":
        raise InvalidConnectionDetails(
            f"{display_name} signs every request with OAuth 1.0a and has no token URL; "
            "leave Token URL empty."
        )
    try:
        return normalise_host_url(token_url, policy)
    except HostUrlProblem as exc:
        raise InvalidConnectionDetails(
            str(exc).replace("Host URL", "Token URL"), exc.suggestion
        ) from None


def _extra_credentials(
    display_name: str, needed: Sequence[str], given: Mapping[str, str] | None
) -> dict[str, str]:
    given = {k: v.strip() for k, v in (given or {}).items() if v and v.strip()}
    unknown = sorted(set(given) - set(needed))
    if unknown:
        raise InvalidConnectionDetails(
            f"{display_name} takes no {', '.join(n.replace('_', ' ') for n in unknown)}; "
            "leave it out."
        )
    missing = [n for n in needed if n not in given]
    if missing:
        names = " and ".join(n.replace("_", " ") for n in missing)
        raise InvalidConnectionDetails(
            f"{display_name} also needs the {names} (for example key:secret for gradebook "
            "calls); give it when connecting (--vendor-key-env VAR)."
        )
    return given


def _display(partner: str) -> str:
    found = catalogue().get(partner)
    return found.display_name if found else partner


def _last_known_sis(session: Session, excluding: int | None = None) -> SisConnection | None:
    """The most recent connection whose SIS identity is known (it was authorised once)."""
    statement = select(SisConnection).where(SisConnection.district_sourced_id.is_not(None))
    if excluding is not None:
        statement = statement.where(SisConnection.id != excluding)
    statement = statement.order_by(SisConnection.id.desc()).limit(1)
    return session.scalars(statement).first()


def _replace_connection(
    session: Session, actor: Actor, classroom: Classroom, old: SisConnection
) -> SisConnection:
    """A new current connection with `old`'s details (its secrets opened and sealed again),
    `old` retired into history with its district and class links."""
    extras = connections.extra_credentials(classroom.secret_box, old)
    replacement = connections.save_connection(
        session,
        actor,
        classroom.secret_box,
        partner=old.partner,
        version=old.version,
        host_url=old.host_url,
        access_key=old.access_key,
        secret_code=connections.secret_code(classroom.secret_box, old),
        token_url=old.token_url,
        extra_credentials=extras or None,
        client_auth=old.client_auth,
    )
    replacement.teacher_export_enabled = old.teacher_export_enabled
    record_event(
        session,
        actor,
        "sis.different_sis_confirmed",
        f"sis_connection:{replacement.id}",
        {"from": old.sis_identity, "to_partner": old.partner, "replaces": old.id},
    )
    return replacement


def _carry_links(session: Session, actor: Actor, connection: SisConnection) -> tuple[int, int]:
    """Class links made with the same SIS (same identity) resume on this connection; links
    made with another SIS stay on their old connection, set aside: kept, never reused."""
    same_sis = select(SisConnection.id).where(
        SisConnection.partner == connection.partner,
        SisConnection.district_sourced_id == connection.district_sourced_id,
        SisConnection.id != connection.id,
    )
    to_resume = session.scalars(
        select(ClassLink).where(ClassLink.connection_id.in_(same_sis))
    ).all()
    for link in to_resume:
        link.connection_id = connection.id
    resumed = len(to_resume)
    session.flush()
    aside = session.scalars(
        select(ClassLink).where(ClassLink.connection_id != connection.id).order_by(ClassLink.id)
    ).all()
    if resumed:
        record_event(
            session,
            actor,
            "sis.links_resumed",
            f"sis_connection:{connection.id}",
            {"count": resumed, "sis_identity": connection.sis_identity},
        )
    if aside:
        record_event(
            session,
            actor,
            "sis.links_set_aside",
            f"sis_connection:{connection.id}",
            {
                "count": len(aside),
                "links": [
                    {
                        "class": link.class_id,
                        "sis_class": link.sis_class_sourced_id,
                        "connection": link.connection_id,
                    }
                    for link in aside[:200]
                ],
            },
        )
    return resumed, len(aside)


def _get(session: Session, connection_id: int) -> SisConnection:
    connection = session.get(SisConnection, connection_id)
    if connection is None:
        raise NotConnected("The SIS connection was removed; connect again (sislink connect).")
    return connection


def _emails(session: Session, ids: set[int]) -> dict[int | None, str]:
    if not ids:
        return {}
    rows = session.execute(select(Person.id, Person.email).where(Person.id.in_(ids))).all()
    return {row.id: row.email or f"person {row.id}" for row in rows}


def _client_auth_of(connection: SisConnection) -> str | None:
    found = catalogue().get(connection.partner)
    if found is None or found.auth == "oauth1":
        return None
    return connection.client_auth or found.client_auth


def _view(session: Session, connection: SisConnection) -> ConnectionView:
    who = _OPERATOR
    if connection.connected_by_id is not None:
        who = _emails(session, {connection.connected_by_id}).get(connection.connected_by_id, "")
    return ConnectionView(
        id=connection.id,
        partner=connection.partner,
        display_name=_display(connection.partner),
        version=connection.version,
        host_url=connection.host_url,
        token_url=connection.token_url,
        access_key=connection.access_key,
        client_auth=_client_auth_of(connection),
        status=connection.status,
        secret_stored=bool(connection.secret_code_sealed),
        teacher_export_enabled=connection.teacher_export_enabled,
        sis_identity=connection.sis_identity,
        created_at=connection.created_at,
        connected_by=who,
        authorised_at=connection.authorised_at,
        disconnected_at=connection.disconnected_at,
        last_import_at=connection.last_import_at,
        last_export_at=connection.last_export_at,
    )
