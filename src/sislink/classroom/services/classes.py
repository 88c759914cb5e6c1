"""Classes and enrolments: create and edit classes, enrol people, find a teacher's classes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sislink.classroom.errors import InvalidInput, NotFound, PermissionDenied
from sislink.classroom.models import Class, Enrolment, EnrolmentRole, Person, Role, School, Term
from sislink.classroom.services.access import (
    Actor,
    class_for_editing,
    flush_or_conflict,
    require_admin,
)
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.people import get_person

# Fields a teacher may edit by hand; each edit is remembered so that imports keep it.
EDITABLE_CLASS_FIELDS = ("title", "section", "primary_teacher_id")


def create_class(
    session: Session,
    actor: Actor,
    *,
    title: str,
    section: str | None = None,
    school_id: int | None = None,
    term_id: int | None = None,
    primary_teacher_id: int | None = None,
) -> Class:
    """Make a class. A teacher makes classes they teach; an administrator, any class."""
    if primary_teacher_id is None:
        primary_teacher_id = actor.person_id
    if not actor.is_admin:
        if actor.person_id is None or Role.TEACHER not in actor.roles:
            raise PermissionDenied("Only teachers and administrators may create classes.")
        if primary_teacher_id != actor.person_id:
            raise PermissionDenied(
                "A teacher may only create classes they teach themselves; ask an administrator "
                "to create a class for another teacher."
            )
    if primary_teacher_id is not None:
        _require_teacher(session, primary_teacher_id)
    if school_id is not None and session.get(School, school_id) is None:
        raise NotFound(f"There is no school with id {school_id}.")
    if term_id is not None and session.get(Term, term_id) is None:
        raise NotFound(f"There is no term with id {term_id}.")
    created = Class(
        title=check_title(title),
        section=_blank_to_none(section),
        school_id=school_id,
        term_id=term_id,
        primary_teacher_id=primary_teacher_id,
    )
    session.add(created)
    flush_or_conflict(session, "This class could not be saved: it clashes with another class.")
    record_event(session, actor, "class.created", f"class:{created.id}", {"title": created.title})
    return created


def edit_class(
    session: Session,
    actor: Actor,
    class_id: int,
    *,
    title: str | None = None,
    section: str | None = None,
    primary_teacher_id: int | None = None,
) -> Class:
    """Change a class's title, section or primary teacher (only those who teach it, or admins).

    Each changed field is remembered as changed by hand, so that roster imports keep it.
    """
    edited = class_for_editing(session, actor, class_id)
    changes: dict[str, object] = {}
    if title is not None:
        changes["title"] = check_title(title)
    if section is not None:
        changes["section"] = _blank_to_none(section)
    if primary_teacher_id is not None:
        _require_teacher(session, primary_teacher_id)
        changes["primary_teacher_id"] = primary_teacher_id
    changed = {name for name, value in changes.items() if getattr(edited, name) != value}
    for name in changed:
        setattr(edited, name, changes[name])
    if changed:
        # A new list (not an in-place append) so that the JSON column is seen as changed.
        edited.hand_edited_fields = sorted(set(edited.hand_edited_fields or ()) | changed)
        record_event(
            session, actor, "class.edited", f"class:{edited.id}", {"fields": sorted(changed)}
        )
    return edited


def enrol(
    session: Session, actor: Actor, class_id: int, person_id: int, role: EnrolmentRole
) -> Enrolment:
    """Add a person to a class as student or co-teacher (idempotent; reactivates if removed)."""
    class_for_editing(session, actor, class_id)
    person = get_person(session, person_id)
    if role == EnrolmentRole.TEACHER and not person.is_teacher:
        raise InvalidInput(f"{person.name} is not a teacher, so cannot co-teach a class.")
    found = session.scalars(
        select(Enrolment).where(
            Enrolment.class_id == class_id,
            Enrolment.person_id == person_id,
            Enrolment.role == role,
        )
    ).first()
    if found is None:
        found = Enrolment(class_id=class_id, person_id=person_id, role=str(role))
        session.add(found)
    found.active = True
    flush_or_conflict(session, f"{person.name} is already enrolled in this class.")
    record_event(
        session, actor, "class.enrolled", f"class:{class_id}", {"person": person_id, "role": role}
    )
    return found


def unenrol(
    session: Session, actor: Actor, class_id: int, person_id: int, role: EnrolmentRole
) -> bool:
    """Remove a person from a class (the enrolment is kept, inactive). True if they were in it."""
    class_for_editing(session, actor, class_id)
    found = session.scalars(
        select(Enrolment).where(
            Enrolment.class_id == class_id,
            Enrolment.person_id == person_id,
            Enrolment.role == role,
            Enrolment.active.is_(True),
        )
    ).first()
    if found is None:
        return False
    found.active = False
    record_event(
        session, actor, "class.unenrolled", f"class:{class_id}", {"person": person_id, "role": role}
    )
    return True


def classes_taught_by(
    session: Session, person_id: int, *, include_inactive: bool = False
) -> Sequence[Class]:
    """The classes a person teaches, as primary teacher or co-teacher, by title."""
    co_taught = select(Enrolment.class_id).where(
        Enrolment.person_id == person_id,
        Enrolment.role == EnrolmentRole.TEACHER,
        Enrolment.active.is_(True),
    )
    statement = select(Class).where(
        or_(Class.primary_teacher_id == person_id, Class.id.in_(co_taught))
    )
    if not include_inactive:
        statement = statement.where(Class.active.is_(True))
    return session.scalars(statement.order_by(Class.title, Class.id)).all()


def members(session: Session, class_id: int, role: EnrolmentRole) -> Sequence[Person]:
    """The active students (or co-teachers) of a class, by name."""
    statement = (
        select(Person)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .where(
            Enrolment.class_id == class_id,
            Enrolment.role == role,
            Enrolment.active.is_(True),
        )
        .order_by(Person.name, Person.id)
    )
    return session.scalars(statement).all()


def deactivate_class(session: Session, actor: Actor, class_id: int) -> Class:
    """Archive a class (administrators): it stays, with its coursework and marks."""
    require_admin(actor, "archive classes")
    archived = class_for_editing(session, actor, class_id)
    archived.active = False
    record_event(session, actor, "class.archived", f"class:{class_id}")
    return archived


def check_title(title: str) -> str:
    cleaned = title.strip()
    if not cleaned:
        raise InvalidInput("A title is required.")
    if len(cleaned) > 300:
        raise InvalidInput(
            f"A class title may be at most 300 characters (this one has {len(cleaned)})."
        )
    return cleaned


def _require_teacher(session: Session, person_id: int) -> None:
    if not get_person(session, person_id).is_teacher:
        raise InvalidInput(f"Person {person_id} is not a teacher, so cannot teach a class.")


def _blank_to_none(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()
