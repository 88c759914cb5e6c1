"""The district as an administrator browses it: people (teachers, students, administrators) and
classes, searched and filtered, a page at a time; the audit trail in words.

Pages are keyset-paged (by name or title, then id), so the hundredth page of a 50,000-student
district costs what the first does; what each row shows beside the row itself (a person's
classes, a class's teacher, students, link and last export) is read for the whole page in one
query each, never one per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from sislink.classroom.models import (
    AuditEvent,
    Class,
    ClassLink,
    Coursework,
    Enrolment,
    EnrolmentRole,
    Invitation,
    Job,
    LoginAccount,
    MarkExportReport,
    Organisation,
    Person,
    utc_now,
)
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.connections import link_states
from sislink.classroom.services.jobs import KIND_WORDS

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
ROLES = ("teacher", "student", "admin")
# How many of a person's classes a list shows (the person's page shows them all).
CLASSES_SHOWN = 3


def _page_size(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE_SIZE))


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class ClassRef:
    id: int
    title: str
    role: str  # "teacher" or "student"


@dataclass(frozen=True)
class PersonRow:
    id: int
    name: str
    email: str | None
    sis_sourced_id: str | None
    sis_identifier: str | None
    roles: list[str]
    active: bool
    classes: list[ClassRef]
    more_classes: int


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    total: int
    # The key of the last row, when there is a next page: pass it back as `after`.
    next_after: tuple[str, int] | None
    counts: dict[str, int] = field(default_factory=dict)


def _after(column: Any, key_id: Any, after: tuple[str, int] | None) -> ColumnElement[bool] | None:
    if after is None:
        return None
    value, last_id = after
    return or_(column > value, and_(column == value, key_id > last_id))


def people_page(
    session: Session,
    actor: Actor,
    *,
    role: str | None = None,
    query: str = "",
    no_email: bool = False,
    after: tuple[str, int] | None = None,
    limit: int = PAGE_SIZE,
) -> Page[PersonRow]:
    """People by name, `limit` at a time after `after`: those with `role` (teacher, student,
    admin), matching `query` (anywhere in the name, email or SIS identifier, or exactly the
    SIS sourcedId), or only those with no email."""
    require_admin(actor, "list the district's people")
    limit = _page_size(limit)
    conditions: list[ColumnElement[bool]] = []
    if role == "teacher":
        conditions.append(Person.is_teacher.is_(True))
    elif role == "student":
        conditions.append(Person.is_student.is_(True))
    elif role == "admin":
        conditions.append(Person.is_admin.is_(True))
    if query.strip():
        pattern = _like(query)
        conditions.append(
            or_(
                # lower() LIKE, not ILIKE: PostgreSQL's ILIKE is several times slower.
                func.lower(Person.name).like(pattern, escape="\\"),
                Person.email_key.like(pattern, escape="\\"),
                func.lower(Person.sis_identifier).like(pattern, escape="\\"),
                # The SIS's own sourcedId, exactly (its unique index answers).
                Person.sis_sourced_id == query.strip(),
            )
        )
    without_email = or_(Person.email.is_(None), Person.email == "")
    if no_email:
        conditions.append(without_email)
    # One pass for both counts: everyone matching, and how many of them have no email.
    counted = session.execute(
        select(func.count(), func.coalesce(func.sum(case((without_email, 1), else_=0)), 0))
        .select_from(Person)
        .where(*conditions)
    ).one()
    total, missing = int(counted[0]), int(counted[1])
    statement = select(Person).where(*conditions)
    keyset = _after(Person.name, Person.id, after)
    if keyset is not None:
        statement = statement.where(keyset)
    found = list(session.scalars(statement.order_by(Person.name, Person.id).limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    classes = _classes_of(session, [p.id for p in found])
    rows = [
        PersonRow(
            id=p.id,
            name=p.name,
            email=p.email or None,
            sis_sourced_id=p.sis_sourced_id,
            sis_identifier=p.sis_identifier,
            roles=sorted(str(r) for r in p.roles),
            active=p.active,
            classes=classes.get(p.id, [])[:CLASSES_SHOWN],
            more_classes=max(0, len(classes.get(p.id, [])) - CLASSES_SHOWN),
        )
        for p in found
    ]
    next_after = (found[-1].name, found[-1].id) if more and found else None
    return Page(rows, total, next_after, {"no_email": missing})


def _classes_of(session: Session, person_ids: Sequence[int]) -> dict[int, list[ClassRef]]:
    """Each person's active classes (taught or taken), by title: one query for them all."""
    if not person_ids:
        return {}
    found: dict[int, list[ClassRef]] = {}
    seen: set[tuple[int, int]] = set()
    rows = session.execute(
        select(Enrolment.person_id, Class.id, Class.title, Enrolment.role)
        .join(Class, Class.id == Enrolment.class_id)
        .where(
            Enrolment.person_id.in_(person_ids),
            Enrolment.active.is_(True),
            Class.active.is_(True),
        )
        .union_all(
            select(
                Class.primary_teacher_id,
                Class.id,
                Class.title,
                literal(EnrolmentRole.TEACHER.value),
            ).where(Class.primary_teacher_id.in_(person_ids), Class.active.is_(True))
        )
    ).all()
    for person_id, class_id, title, role in sorted(rows, key=lambda r: (r[2], r[1])):
        if (person_id, class_id) in seen:
            continue
        seen.add((person_id, class_id))
        found.setdefault(person_id, []).append(ClassRef(class_id, title, str(role)))
    return found


@dataclass(frozen=True)
class AccountState:
    """Whether a person can sign in to the console, and how they got (or get) there."""

    may_sign_in: bool
    has_password: bool
    password_set_at: datetime | None
    invited_at: datetime | None  # an unused, unexpired set-password link

    @property
    def words(self) -> str:
        if not self.may_sign_in:
            return "cannot sign in (not an active administrator or teacher)"
        if self.has_password:
            return "signs in with a password"
        if self.invited_at is not None:
            return "invited; has not set a password yet"
        return "no password and no invitation: cannot sign in yet"


@dataclass(frozen=True)
class PersonDetail:
    row: PersonRow
    classes: list[ClassRef]
    account: AccountState


def person_detail(session: Session, actor: Actor, person_id: int) -> PersonDetail:
    """One person with every class and their console account's state."""
    from sislink.classroom.services.accounts import may_sign_in
    from sislink.classroom.services.people import get_person

    require_admin(actor, "read a person's details")
    person = get_person(session, person_id)
    classes = _classes_of(session, [person.id]).get(person.id, [])
    account = session.get(LoginAccount, person.id)
    invited = session.scalar(
        select(func.max(Invitation.created_at)).where(
            Invitation.person_id == person.id,
            Invitation.used_at.is_(None),
            Invitation.expires_at > utc_now(),
        )
    )
    row = PersonRow(
        id=person.id,
        name=person.name,
        email=person.email or None,
        sis_sourced_id=person.sis_sourced_id,
        sis_identifier=person.sis_identifier,
        roles=sorted(str(r) for r in person.roles),
        active=person.active,
        classes=classes,
        more_classes=0,
    )
    state = AccountState(
        may_sign_in=may_sign_in(person),
        has_password=account is not None,
        password_set_at=getattr(account, "password_set_at", None),
        invited_at=invited,
    )
    return PersonDetail(row, classes, state)


@dataclass(frozen=True)
class ClassRow:
    id: int
    title: str
    section: str | None
    sis_sourced_id: str | None
    active: bool
    teacher: str | None
    teacher_id: int | None
    students: int
    linked_to: str | None
    link_words: str
    last_export: str | None
    last_export_at: datetime | None
    last_attention: dict[str, Any] | None


def classes_page(
    session: Session,
    actor: Actor,
    *,
    query: str = "",
    link: str | None = None,
    after: tuple[str, int] | None = None,
    limit: int = PAGE_SIZE,
) -> Page[ClassRow]:
    """The district's classes by title, `limit` at a time after `after`: matching `query` (in
    the title, section, SIS id or teacher's name), and `link` "linked" or "unlinked"."""
    require_admin(actor, "list the district's classes")
    limit = _page_size(limit)
    teacher = Person.__table__.alias("teacher")
    conditions: list[ColumnElement[bool]] = []
    if query.strip():
        pattern = _like(query)
        conditions.append(
            or_(
                func.lower(Class.title).like(pattern, escape="\\"),
                func.lower(Class.section).like(pattern, escape="\\"),
                Class.sis_sourced_id == query.strip(),
                Class.primary_teacher_id.in_(
                    select(Person.id).where(func.lower(Person.name).like(pattern, escape="\\"))
                ),
            )
        )
    is_linked = exists().where(ClassLink.class_id == Class.id)
    if link == "linked":
        conditions.append(is_linked)
    elif link == "unlinked":
        conditions.append(~is_linked)
    counted = session.execute(
        select(func.count(), func.coalesce(func.sum(case((is_linked, 1), else_=0)), 0))
        .select_from(Class)
        .where(*conditions)
    ).one()
    total, linked = int(counted[0]), int(counted[1])
    statement = (
        select(Class, teacher.c.name)
        .outerjoin(teacher, teacher.c.id == Class.primary_teacher_id)
        .where(*conditions)
    )
    keyset = _after(Class.title, Class.id, after)
    if keyset is not None:
        statement = statement.where(keyset)
    found = session.execute(statement.order_by(Class.title, Class.id).limit(limit + 1)).all()
    more = len(found) > limit
    found = found[:limit]
    classes = [klass for klass, _ in found]
    ids = [c.id for c in classes]
    students: dict[int, int] = {}
    last: dict[int, MarkExportReport] = {}
    if ids:
        students = {
            class_id: count
            for class_id, count in session.execute(
                select(Enrolment.class_id, func.count())
                .where(
                    Enrolment.class_id.in_(ids),
                    Enrolment.role == EnrolmentRole.STUDENT,
                    Enrolment.active.is_(True),
                )
                .group_by(Enrolment.class_id)
            ).all()
        }
        newest = (
            select(func.max(MarkExportReport.id))
            .where(MarkExportReport.class_id.in_(ids), MarkExportReport.dry_run.is_(False))
            .group_by(MarkExportReport.class_id)
        )
        last = {
            r.class_id: r
            for r in session.scalars(
                select(MarkExportReport).where(MarkExportReport.id.in_(newest))
            )
        }
    states = link_states(session, classes)
    rows = []
    for klass, teacher_name in found:
        state = states[klass.id]
        report = last.get(klass.id)
        rows.append(
            ClassRow(
                id=klass.id,
                title=klass.title,
                section=klass.section,
                sis_sourced_id=klass.sis_sourced_id,
                active=klass.active,
                teacher=teacher_name,
                teacher_id=klass.primary_teacher_id,
                students=students.get(klass.id, 0),
                linked_to=state.sis_class_id,
                link_words=state.advice or "",
                last_export=report.outcome if report else None,
                last_export_at=report.started_at if report else None,
                last_attention=(report.summary or {}).get("attention") if report else None,
            )
        )
    next_after = (classes[-1].title, classes[-1].id) if more and classes else None
    return Page(rows, total, next_after, {"linked": linked, "unlinked": total - linked})


# ---- the audit trail in words -------------------------------------------------------------

ACTION_WORDS = {
    "account.signed_in": "signed in",
    "account.password_set": "set the password of",
    "account.invited": "sent a set-password link to",
    "account.disabled": "disabled the account of",
    "api_token.created": "made an API token for",
    "api_token.revoked": "revoked an API token of",
    "person.created": "added",
    "person.roles_changed": "changed the roles of",
    "class.created": "created the class",
    "class.edited": "edited the class",
    "class.archived": "archived the class",
    "class.enrolled": "enrolled {person} as {role} in",
    "class.unenrolled": "took {person} ({role}) out of",
    "class.linked": "linked to its SIS class the class",
    "class.unlinked": "unlinked from its SIS class the class",
    "class.export_choices_changed": "changed the export choices of",
    "coursework.created": "added the coursework",
    "coursework.published": "published the coursework",
    "coursework.deleted": "deleted the coursework",
    "marks.exported": "exported the marks of",
    "marks.export_previewed": "tried a dry run of the mark export of",
    "marks.export_not_done": "could not export the marks of",
    "roster.hold_approved": "approved the held",
    "roster.hold_discarded": "discarded the held",
    "sis.connection_saved": "saved the SIS connection",
    "sis.authorised": "authorised the SIS connection",
    "sis.authorise_failed": "tried to authorise the SIS connection, which failed",
    "sis.disconnected": "disconnected the SIS",
    "sis.teacher_export": "changed whether teachers may export marks",
    "sis.links_set_aside": "set aside the class links of the previous SIS",
    "sis.links_resumed": "resumed the class links of the SIS",
    "sis.different_sis_found": "found that the SIS is a different one than before",
    "sis.different_sis_confirmed": "confirmed the switch to a different SIS",
    "organisation.updated": "updated the district's details",
    "google.connected": "connected Google Classroom",
    "google.authorised": "authorised Google Classroom",
    "google.authorise_failed": "tried to authorise Google Classroom, which failed",
    "google.disconnected": "disconnected Google Classroom",
    "google.roster_synced": "synced the roster to Google Classroom",
    "google.roster_held": "held a Google Classroom roster sync for review",
    "google.roster_hold_approved": "approved the held Google Classroom roster sync",
    "google.roster_hold_discarded": "discarded the held Google Classroom roster sync",
    "google.grades_pulled": "read grades from Google Classroom for",
    "sign_in.provider_added": "added a sign-in provider",
    "sign_in.provider_changed": "changed a sign-in provider",
    "sign_in.provider_removed": "removed a sign-in provider",
}
# Subjects already said by the action's words.
_SAID_BY_ACTION = ("sis.", "google.connected", "google.authorised", "google.disconnected")


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: datetime
    who: str
    sentence: str  # "Ada Admin (ada@...) linked to its SIS class the class Biology 2"
    link: str | None  # the page of the thing it was done to, when there is one
    details: dict[str, Any]


def audit_in_words(
    session: Session,
    actor: Actor,
    *,
    before: int | None = None,
    limit: int = PAGE_SIZE,
    action_prefix: str | None = None,
) -> tuple[list[AuditLine], int | None]:
    """Audit events newest first, `limit` at a time (before the event id `before`), each said
    in words with names, not ids; and the id to pass as `before` for the next page."""
    require_admin(actor, "read the audit trail")
    limit = _page_size(limit)
    statement = select(AuditEvent)
    if before is not None:
        statement = statement.where(AuditEvent.id < before)
    if action_prefix:
        statement = statement.where(AuditEvent.action.like(f"{action_prefix}%"))
    events = list(session.scalars(statement.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(events) > limit
    events = events[:limit]
    subjects: dict[str, set[int]] = {}
    for event in events:
        kind, _, raw = event.subject.partition(":")
        if raw.isdigit():
            subjects.setdefault(kind, set()).add(int(raw))
    people_ids = subjects.get("person", set()) | {e.actor_id for e in events if e.actor_id}
    # People named in the details (who was enrolled): said by name too.
    people_ids |= {
        e.details["person"] for e in events if isinstance((e.details or {}).get("person"), int)
    }
    names = _names(session, people_ids, subjects)
    lines = []
    for event in events:
        who = names.get(("person", event.actor_id or 0)) if event.actor_id else None
        who = who or (
            "sislink (the command line or a scheduled job)"
            if not event.actor_id
            else "someone since deleted"
        )
        what = ACTION_WORDS.get(event.action, event.action.replace(".", ": ").replace("_", " "))
        details = dict(event.details or {})
        if "{person}" in what:
            named = details.pop("person", None)
            person_words = names.get(("person", named)) if isinstance(named, int) else None
            what = what.format(
                person=person_words or "someone since deleted",
                role=details.pop("role", "member"),
            )
        thing, link = _subject_words(event, names)
        sentence = f"{who} {what}"
        if thing and not event.action.startswith(_SAID_BY_ACTION):
            sentence += f" {thing}"
        lines.append(AuditLine(event.id, event.at, who, sentence, link, details))
    return lines, (events[-1].id if more and events else None)


def _names(
    session: Session, people_ids: set[int], subjects: dict[str, set[int]]
) -> dict[tuple[str, int], str]:
    names: dict[tuple[str, int], str] = {}
    if people_ids:
        for pid, name, email in session.execute(
            select(Person.id, Person.name, Person.email).where(Person.id.in_(people_ids))
        ):
            names[("person", pid)] = f"{name} ({email})" if email else name
    if subjects.get("class"):
        for cid, title in session.execute(
            select(Class.id, Class.title).where(Class.id.in_(subjects["class"]))
        ):
            names[("class", cid)] = title
    if subjects.get("coursework"):
        for wid, title, class_title in session.execute(
            select(Coursework.id, Coursework.title, Class.title)
            .join(Class, Class.id == Coursework.class_id)
            .where(Coursework.id.in_(subjects["coursework"]))
        ):
            names[("coursework", wid)] = f"{title!r} of {class_title}"
    if subjects.get("job"):
        for jid, kind in session.execute(
            select(Job.id, Job.kind).where(Job.id.in_(subjects["job"]))
        ):
            names[("job", jid)] = f"{KIND_WORDS.get(kind, kind.replace('_', ' '))} {jid}"
    if subjects.get("organisation"):
        for oid, name in session.execute(
            select(Organisation.id, Organisation.name).where(
                Organisation.id.in_(subjects["organisation"])
            )
        ):
            names[("organisation", oid)] = name
    return names


def _subject_words(event: AuditEvent, names: dict[tuple[str, int], str]) -> tuple[str, str | None]:
    kind, _, raw = event.subject.partition(":")
    if not raw.isdigit():
        return event.subject, None
    number = int(raw)
    named = names.get((kind, number))
    link = {
        "person": f"/admin/people/{number}",
        "class": f"/classes/{number}",
        "job": f"/admin/roster/jobs/{number}",
    }.get(kind)
    if kind == "job" and named and not named.startswith("roster"):
        link = None
    if named is None:
        return f"{kind.replace('_', ' ')} {number} (since deleted)", None
    if kind == "job" and event.action.startswith("roster."):
        return f"roster import {number}", link
    return named, link
