"""People: create them, find them by email (or SIS identifier), change their roles."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.bulk import normalise_email
from sislink.classroom.errors import Conflict, InvalidInput, NotFound
from sislink.classroom.models import Enrolment, EnrolmentRole, Person, Role
from sislink.classroom.services.access import Actor, flush_or_conflict, require_admin
from sislink.classroom.services.audit import record_event

EMAIL_TAKEN = "Another person already uses this email ({email}). Use a different email."


def check_email(email: str) -> tuple[str, str]:
    """The email as shown and its case-insensitive key; InvalidInput if it is not an email."""
    shown, key = normalise_email(email)
    if shown is None or key is None:
        raise InvalidInput("An email is required.")
    local, at, domain = shown.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in shown):
        raise InvalidInput(f"{shown!r} is not an email address (expected name@school.example).")
    return shown, key


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput("A name is required.")
    return cleaned


def create_person(
    session: Session,
    actor: Actor,
    *,
    name: str,
    email: str,
    roles: Iterable[Role] = (),
) -> Person:
    """Add a person (administrators only). Emails are unique whatever their case."""
    require_admin(actor, "add people")
    shown, key = check_email(email)
    held = frozenset(roles)
    if find_person_by_email(session, shown) is not None:
        raise Conflict(EMAIL_TAKEN.format(email=shown))
    person = Person(
        name=check_name(name),
        email=shown,
        email_key=key,
        is_admin=Role.ADMIN in held,
        is_teacher=Role.TEACHER in held,
        is_student=Role.STUDENT in held,
    )
    session.add(person)
    flush_or_conflict(session, EMAIL_TAKEN.format(email=shown))
    record_event(session, actor, "person.created", f"person:{person.id}", {"email": shown})
    return person


def find_person_by_email(session: Session, email: str) -> Person | None:
    _, key = normalise_email(email)
    if key is None or "\x00" in key:
        # No stored email holds a NUL, and PostgreSQL refuses one in a query: nobody has it.
        return None
    return session.scalars(select(Person).where(Person.email_key == key)).first()


def find_person(
    session: Session, named: str, *, role: Role | None = None, active_only: bool = False
) -> Person:
    """The person named by their email or by their SIS identifier (the OneRoster `identifier`,
    or the SIS sourcedId): people without an email are named that way. An email is looked up
    first. NotFound when it names nobody; InvalidInput when it names several people (only
    those with `role`, and only active ones with `active_only`, count)."""
    text = named.strip()
    if not text:
        raise InvalidInput("Name the person by their email or their SIS identifier.")

    def eligible(person: Person) -> bool:
        held = role is None or role in person.roles
        return held and (person.active or not active_only)

    kind = role.value if role is not None else "person"
    by_email = find_person_by_email(session, text)
    if by_email is not None and not eligible(by_email):
        # The text is this person's email: it names them, and nobody else (someone whose SIS
        # identifier happens to be that email is not picked instead).
        active = "active " if active_only else ""
        raise NotFound(
            f"No {active}{kind} has the email or SIS identifier {text!r}; check the spelling, "
            "or import the roster."
        )
    found = [
        person
        for person in session.scalars(
            select(Person)
            .where((Person.sis_identifier == text) | (Person.sis_sourced_id == text))
            .order_by(Person.id)
        )
        if eligible(person)
    ]
    if by_email is not None:
        others = [person for person in found if person.id != by_email.id]
        if others:
            raise InvalidInput(
                f"{text!r} is one person's email and another's SIS identifier, so who is meant "
                "is unclear; name the person by their email, or change the SIS identifier."
            )
        return by_email
    if not found:
        active = "active " if active_only else ""
        raise NotFound(
            f"No {active}{kind} has the email or SIS identifier {text!r}; check the spelling, "
            "or import the roster."
        )
    if len(found) > 1:
        named_ones = ", ".join(f"{p.name} ({p.email or 'no email'})" for p in found[:5])
        raise InvalidInput(
            f"{text!r} is the SIS identifier of {len(found)} people ({named_ones}); name the "
            "one you mean by their email."
        )
    return found[0]


class ClassStudents:
    """The active students of one class, loaded once, to find a student among them by email or
    SIS identifier (identifier or sourcedId). Teacher-facing lookups go through this: a
    teacher learns nothing about people outside the class, not even whether they exist."""

    def __init__(self, students: Iterable[Person]) -> None:
        self.students = sorted(students, key=lambda person: person.id)
        self._by_email: dict[str, Person] = {}
        self._by_identifier: dict[str, list[Person]] = {}
        for person in self.students:
            if person.email_key:
                self._by_email[person.email_key] = person
            for identifier in (person.sis_identifier, person.sis_sourced_id):
                held = self._by_identifier.setdefault(identifier or "", [])
                if identifier and person not in held:
                    held.append(person)

    @classmethod
    def of_class(cls, session: Session, class_id: int) -> ClassStudents:
        return cls(
            session.scalars(
                select(Person)
                .join(Enrolment, Enrolment.person_id == Person.id)
                .where(
                    Enrolment.class_id == class_id,
                    Enrolment.role == EnrolmentRole.STUDENT,
                    Enrolment.active.is_(True),
                )
                .distinct()
            )
        )

    def find(self, named: str) -> Person:
        """The class's student with this email or SIS identifier. NotFound ("no student of
        this class is ...", with the text as typed) when none is; InvalidInput when it could be
        several of them."""
        text = named.strip()
        if not text:
            raise InvalidInput("Name the student by their email or their SIS identifier.")
        _, key = normalise_email(text)
        by_email = self._by_email.get(key) if key is not None else None
        by_identifier = self._by_identifier.get(text, []) if text else []
        candidates = {person.id: person for person in by_identifier}
        if by_email is not None:
            candidates[by_email.id] = by_email
        if not candidates:
            raise NotFound(
                f"No student of this class is {named!r}: check the email or SIS identifier, "
                "or enrol the student."
            )
        if len(candidates) > 1:
            raise InvalidInput(
                f"{named!r} could be {len(candidates)} students of this class (an email and a "
                "SIS identifier, or one SIS identifier shared): name the student by their email."
            )
        return next(iter(candidates.values()))


def find_student_of_class(session: Session, class_id: int, named: str) -> Person:
    """The class's active student named by email or SIS identifier (see ClassStudents.find)."""
    return ClassStudents.of_class(session, class_id).find(named)


def get_person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"There is no person with id {person_id}.")
    return person


def change_email(session: Session, actor: Actor, person_id: int, email: str) -> Person:
    """Change a person's email (administrators, or the person themself)."""
    if actor.person_id != person_id:
        require_admin(actor, "change another person's email")
    person = get_person(session, person_id)
    shown, key = check_email(email)
    holder = find_person_by_email(session, shown)
    if holder is not None and holder.id != person.id:
        raise Conflict(EMAIL_TAKEN.format(email=shown))
    person.email, person.email_key = shown, key
    flush_or_conflict(session, EMAIL_TAKEN.format(email=shown))
    return person


def set_roles(session: Session, actor: Actor, person_id: int, roles: Iterable[Role]) -> Person:
    """Replace a person's roles (administrators only)."""
    require_admin(actor, "change people's roles")
    person = get_person(session, person_id)
    held = frozenset(roles)
    person.is_admin = Role.ADMIN in held
    person.is_teacher = Role.TEACHER in held
    person.is_student = Role.STUDENT in held
    record_event(
        session, actor, "person.roles_changed", f"person:{person.id}", {"roles": sorted(held)}
    )
    return person
