"""The SIS connection and class links: save, authorise, disconnect, link classes to SIS classes.

Checking credentials against the SIS is sync's work; these functions record what it found.
The secret code is sealed with the installation's SecretBox before it reaches the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, exists, insert, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from sislink.classroom.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sislink.classroom.models import (
    Class,
    ClassLink,
    ConnectionStatus,
    SisConnection,
    UTCDateTime,
    utc_now,
)
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services.access import (
    Actor,
    class_for_editing,
    flush_or_conflict,
    require_admin,
)
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.jobs import cancel_connection_jobs

SUPPORTED_VERSIONS = ("1.1", "1.2")
CURRENT = 1


def save_connection(
    session: Session,
    actor: Actor,
    box: SecretBox,
    *,
    partner: str,
    version: str,
    host_url: str,
    access_key: str,
    secret_code: str,
    token_url: str | None = None,
    extra_credentials: Mapping[str, str] | None = None,
    client_auth: str | None = None,
) -> SisConnection:
    """Save the details an administrator entered, as the current connection (a draft).

    A previous current connection becomes history: it is disconnected if it was authorised,
    and its stored secrets are erased. `extra_credentials` (e.g. a vendor key) are sealed too.
    """
    require_admin(actor, "connect sislink to a SIS")
    if client_auth not in (None, "basic", "post"):
        raise InvalidInput(f"Client authentication is basic or post, not {client_auth!r}.")
    if not partner.strip():
        raise InvalidInput("Choose the SIS (partner) to connect to.")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidInput(f"OneRoster version {version!r} is not supported; choose 1.1 or 1.2.")
    host = _url(host_url, "Host URL")
    token = _url(token_url, "Token URL") if token_url and token_url.strip() else None
    if not access_key.strip():
        raise InvalidInput("The access key is required (the SIS shows it with the secret code).")
    if not secret_code.strip():
        raise InvalidInput("The secret code is required (the SIS shows it with the access key).")
    previous = current_connection(session)
    if previous is not None:
        _retire(session, previous)
    connection = SisConnection(
        partner=partner.strip(),
        version=version,
        host_url=host,
        token_url=token,
        access_key=access_key.strip(),
        secret_code_sealed=box.seal(secret_code.strip()),
        extra_credentials_sealed=(
            box.seal(json.dumps(dict(extra_credentials))) if extra_credentials else None
        ),
        client_auth=client_auth,
        status=ConnectionStatus.DRAFT,
        current_slot=CURRENT,
        connected_by_id=actor.person_id,
    )
    session.add(connection)
    flush_or_conflict(
        session, "Another administrator changed the SIS connection; reload and retry."
    )
    record_event(
        session,
        actor,
        "sis.connection_saved",
        f"sis_connection:{connection.id}",
        {"partner": connection.partner, "version": version, "host_url": host},
    )
    return connection


def secret_code(box: SecretBox, connection: SisConnection) -> str:
    """The connection's secret code in clear, for the client that talks to the SIS only."""
    if not connection.secret_code_sealed:
        raise Conflict("The SIS secret code was erased at disconnect; connect again to enter it.")
    return box.open(connection.secret_code_sealed)


def extra_credentials(box: SecretBox, connection: SisConnection) -> dict[str, str]:
    """The connection's extra credentials (e.g. Infinite Campus's vendor key) in clear."""
    if not connection.extra_credentials_sealed:
        return {}
    opened = json.loads(box.open(connection.extra_credentials_sealed))
    return {str(name): str(value) for name, value in opened.items()}


def _erase_secrets(connection: SisConnection) -> None:
    # Empty, not NULL: the column predates erasure; an empty seal opens to nothing.
    connection.secret_code_sealed = ""
    connection.extra_credentials_sealed = None


def mark_authorised(
    session: Session,
    actor: Actor,
    connection_id: int,
    *,
    district_sourced_id: str | None = None,
) -> SisConnection:
    """Record that the SIS accepted the credentials (sync checked them for real)."""
    require_admin(actor, "authorise the SIS connection")
    connection = _get(session, connection_id)
    if not connection.is_current:
        raise Conflict("This is an old SIS connection; authorise the current one instead.")
    connection.status = ConnectionStatus.AUTHORISED
    connection.authorised_at = utc_now()
    connection.disconnected_at = None
    if district_sourced_id:
        connection.district_sourced_id = district_sourced_id
    record_event(
        session,
        actor,
        "sis.authorised",
        f"sis_connection:{connection.id}",
        {"partner": connection.partner, "district": district_sourced_id},
    )
    return connection


def disconnect(session: Session, actor: Actor) -> SisConnection:
    """Disconnect the current connection: exports stop; exported data stays in the SIS.

    The stored secret code (and extra credentials) are erased. The row stays current (as
    disconnected) until a new connection is saved, so that the administrator can see what was
    connected and reconnect.
    """
    require_admin(actor, "disconnect the SIS")
    connection = current_connection(session)
    if connection is None or connection.status == ConnectionStatus.DISCONNECTED:
        raise Conflict("sislink is not connected to a SIS, so there is nothing to disconnect.")
    connection.status = ConnectionStatus.DISCONNECTED
    connection.disconnected_at = utc_now()
    _erase_secrets(connection)
    # Exports and imports stop at once, including those already under way.
    stopped = cancel_connection_jobs(session, connection.id)
    record_event(
        session,
        actor,
        "sis.disconnected",
        f"sis_connection:{connection.id}",
        {"jobs_stopped": stopped} if stopped else None,
    )
    return connection


def set_teacher_export(session: Session, actor: Actor, enabled: bool) -> SisConnection:
    """Switch 'Enable classwork and mark exporting' for teachers."""
    require_admin(actor, "change whether teachers may export marks")
    connection = current_connection(session)
    if connection is None:
        raise NotFound("Connect to a SIS first; the export setting belongs to the connection.")
    connection.teacher_export_enabled = enabled
    record_event(
        session,
        actor,
        "sis.teacher_export",
        f"sis_connection:{connection.id}",
        {"enabled": enabled},
    )
    return connection


def current_connection(session: Session) -> SisConnection | None:
    return session.scalars(
        select(SisConnection).where(SisConnection.current_slot == CURRENT)
    ).first()


def connection_history(session: Session) -> Sequence[SisConnection]:
    statement = select(SisConnection).order_by(
        SisConnection.created_at.desc(), SisConnection.id.desc()
    )
    return session.scalars(statement).all()


def require_export_allowed(session: Session, actor: Actor) -> SisConnection:
    """The current connection, if the actor may export marks through it now."""
    connection = current_connection(session)
    if connection is None or connection.status != ConnectionStatus.AUTHORISED:
        raise Conflict("sislink is not connected to a SIS; ask an administrator to connect it.")
    if not actor.is_admin and not connection.teacher_export_enabled:
        raise PermissionDenied(
            "Mark export is switched off for teachers; an administrator can enable "
            "'classwork and mark exporting'."
        )
    return connection


def link_class(
    session: Session, actor: Actor, class_id: int, sis_class_sourced_id: str
) -> ClassLink:
    """Link a class to one SIS class (replacing an earlier link). Its teachers or admins only.

    One SIS class belongs to one classroom class: checked here, in the transaction that writes
    the link, and enforced by the schema, so two links made at once cannot both succeed.
    """
    klass = class_for_editing(session, actor, class_id)
    connection = require_export_allowed(session, actor)
    sourced_id = sis_class_sourced_id.strip()
    if not sourced_id:
        raise InvalidInput("Choose the SIS class to link this class to.")
    refuse_if_sis_class_taken(session, connection, sourced_id, class_id)
    try:
        with session.begin_nested():
            link = class_link(session, class_id)
            if link is None:
                link = ClassLink(class_id=class_id)
                session.add(link)
            link.connection_id = connection.id
            link.sis_class_sourced_id = sourced_id
            link.linked_by_id = actor.person_id
            link.linked_at = utc_now()
            klass.sis_unlinked_at = None
            session.flush()
    except IntegrityError:
        # Someone linked at the same moment: say who holds the SIS class, if that was the clash.
        with session.no_autoflush:
            refuse_if_sis_class_taken(session, connection, sourced_id, class_id)
        raise Conflict("This class was linked by someone else at the same time; reload.") from None
    record_event(session, actor, "class.linked", f"class:{class_id}", {"sis_class": sourced_id})
    return link


def sis_class_holder(
    session: Session, connection: SisConnection, sis_class_sourced_id: str, other_than: int
) -> Class | None:
    """The class, other than `other_than`, linked to this SIS class of the connected SIS.

    Links made through earlier connections to the same SIS (same partner and district) count:
    they are the same SIS class.
    """
    holder = session.scalars(
        select(Class)
        .join(ClassLink, ClassLink.class_id == Class.id)
        .where(
            ClassLink.sis_class_sourced_id == sis_class_sourced_id,
            ClassLink.class_id != other_than,
            ClassLink.connection_id.in_(_same_sis(connection)),
        )
        .order_by(ClassLink.id)
    ).first()
    return holder


def refuse_if_sis_class_taken(
    session: Session, connection: SisConnection, sis_class_sourced_id: str, class_id: int
) -> None:
    """Conflict naming the class that holds this SIS class already, if another one does."""
    holder = sis_class_holder(session, connection, sis_class_sourced_id, class_id)
    if holder is not None:
        raise Conflict(
            f"The SIS class {sis_class_sourced_id} is already linked to the class "
            f"{holder.title!r}; unlink it there first (one SIS class per class)."
        )


def is_another_sis(linked_through: SisConnection, current: SisConnection) -> bool:
    """Whether a link made through `linked_through` was made with another SIS than `current`.

    Another SIS is one whose identity (partner and district) is known on both sides and
    differs: such a link's SIS class belongs to that SIS, and the same sourcedId here may be
    another class, so the class cannot export until it is linked again. A connection whose
    district is not known yet is not taken for another SIS: nothing says it is one.
    """
    if linked_through.id == current.id:
        return False
    return (
        linked_through.sis_identity is not None
        and current.sis_identity is not None
        and linked_through.sis_identity != current.sis_identity
    )


def _same_sis(connection: SisConnection) -> Select[int]:
    """Ids of the connections to the same SIS as `connection` (itself included)."""
    if connection.district_sourced_id is None:
        return select(SisConnection.id).where(SisConnection.id == connection.id)
    return select(SisConnection.id).where(
        or_(
            SisConnection.id == connection.id,
            and_(
                SisConnection.partner == connection.partner,
                SisConnection.district_sourced_id == connection.district_sourced_id,
            ),
        )
    )


def unlink_class(session: Session, actor: Actor, class_id: int) -> bool:
    """Remove a class's SIS link. True if it had one.

    The class remembers it was unlinked by hand, so that roster imports leave it unlinked
    until someone links it again.
    """
    klass = class_for_editing(session, actor, class_id)
    link = class_link(session, class_id)
    if link is None:
        return False
    session.delete(link)
    klass.sis_unlinked_at = utc_now()
    record_event(
        session,
        actor,
        "class.unlinked",
        f"class:{class_id}",
        {"sis_class": link.sis_class_sourced_id},
    )
    return True


def class_link(session: Session, class_id: int) -> ClassLink | None:
    return session.scalars(select(ClassLink).where(ClassLink.class_id == class_id)).first()


def link_imported_classes(session: Session, connection_id: int) -> int:
    """Link every active class imported from the SIS, and not linked yet, to its own SIS class.

    Classes that come from the SIS are linked already, as teachers expect: they need not pick
    the SIS class a class was imported from. Left alone: a class someone unlinked by hand (the
    unlink stands until someone links it again), and a class whose SIS class another class is
    linked to already (one SIS class per class). Returns how many links were made.
    """
    connection = _get(session, connection_id)
    taken = aliased(ClassLink)
    unlinked = (
        select(
            Class.id,
            literal(connection_id),
            Class.sis_sourced_id,
            literal(utc_now(), UTCDateTime()),
        )
        .outerjoin(ClassLink, ClassLink.class_id == Class.id)
        .where(
            Class.sis_sourced_id.is_not(None),
            Class.active.is_(True),
            Class.sis_unlinked_at.is_(None),
            ClassLink.id.is_(None),
            ~exists().where(
                taken.sis_class_sourced_id == Class.sis_sourced_id,
                taken.connection_id.in_(_same_sis(connection)),
            ),
        )
    )
    # Counted from RETURNING: PostgreSQL's driver gives no rowcount for INSERT ... SELECT.
    statement = (
        insert(ClassLink)
        .from_select(["class_id", "connection_id", "sis_class_sourced_id", "linked_at"], unlinked)
        .returning(ClassLink.id)
    )
    try:
        with session.begin_nested():
            made = session.execute(statement).all()
    except IntegrityError:
        # A teacher linked one of these classes, or its SIS class, while this statement ran:
        # read again, now that their link is there to be seen, and leave theirs alone.
        with session.begin_nested():
            made = session.execute(statement).all()
    return len(made)


def record_activity(
    session: Session, connection_id: int, *, imported: bool = False, exported: bool = False
) -> None:
    """Remember when the connection last imported or exported."""
    connection = _get(session, connection_id)
    if imported:
        connection.last_import_at = utc_now()
    if exported:
        connection.last_export_at = utc_now()


def _retire(session: Session, connection: SisConnection) -> None:
    if connection.status != ConnectionStatus.DISCONNECTED:
        connection.status = ConnectionStatus.DISCONNECTED
        connection.disconnected_at = utc_now()
    _erase_secrets(connection)
    connection.current_slot = None
    # The old row must leave the "current" slot before the new row takes it.
    session.flush()


def _get(session: Session, connection_id: int) -> SisConnection:
    connection = session.get(SisConnection, connection_id)
    if connection is None:
        raise NotFound(f"There is no SIS connection with id {connection_id}.")
    return connection


def _url(value: str | None, label: str) -> str:
    cleaned = (value or "").strip()
    if not cleaned.startswith(("https://", "http://")) or len(cleaned) < len("http://a"):
        raise InvalidInput(
            f"The {label} must be a web address starting with https:// "
            f"(for example https://sis.district.example); got {cleaned!r}."
        )
    return cleaned.rstrip("/")


class LinkState(StrEnum):
    """What a class's SIS link is, for the lists people see (CLI, pages, REST)."""

    LINKED = "linked"
    UNLINKED = "unlinked"
    UNLINKED_BY_HAND = "unlinked_by_hand"
    # Linked through a connection to another SIS: pre-flight refuses its export.
    LINKED_WITH_ANOTHER_SIS = "linked_with_another_sis"

    @property
    def in_words(self) -> str:
        return "not linked" if self is LinkState.UNLINKED else self.value.replace("_", " ")


@dataclass(frozen=True)
class ClassLinkState:
    """A class's link as the people who use it should see it."""

    state: LinkState
    sis_class_id: str | None  # the SIS class its marks go to; None when they cannot go
    unlinked_at: datetime | None = None
    advice: str | None = None  # what to do about it, in words

    def as_json(self) -> dict[str, Any]:
        return {
            "link": self.state.value,
            "sis_class_id": self.sis_class_id,
            "unlinked_at": self.unlinked_at.isoformat() if self.unlinked_at else None,
            "link_advice": self.advice,
        }


def link_states(session: Session, found: Iterable[Class]) -> dict[int, ClassLinkState]:
    """Each class's link state, by class id (three queries, however many classes)."""
    classes_ = list(found)
    links = {
        link.class_id: link
        for link in session.scalars(
            select(ClassLink).where(ClassLink.class_id.in_([c.id for c in classes_]))
        )
    }
    through = {c.id: c for c in session.scalars(select(SisConnection))}
    current = current_connection(session)
    return {c.id: _link_state(c, links.get(c.id), current, through) for c in classes_}


def _link_state(
    klass: Class,
    link: ClassLink | None,
    current: SisConnection | None,
    through: Mapping[int, SisConnection],
) -> ClassLinkState:
    if link is None:
        if klass.sis_unlinked_at is not None:
            day = klass.sis_unlinked_at.date().isoformat()
            return ClassLinkState(
                LinkState.UNLINKED_BY_HAND,
                None,
                klass.sis_unlinked_at,
                f"unlinked by hand on {day}; roster imports leave it unlinked: link it again "
                "if that was a mistake",
            )
        return ClassLinkState(LinkState.UNLINKED, None)
    linked_through = through.get(link.connection_id)
    if (
        current is not None
        and linked_through is not None
        and is_another_sis(linked_through, current)
    ):
        return ClassLinkState(
            LinkState.LINKED_WITH_ANOTHER_SIS,
            None,
            advice=f"linked with another SIS ({linked_through.partner}, SIS class "
            f"{link.sis_class_sourced_id}), so its marks cannot be exported: link it again to "
            "one of this SIS's classes",
        )
    return ClassLinkState(LinkState.LINKED, link.sis_class_sourced_id)
