"""Who is acting, and the permission rules every service checks (permissions are data here)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sislink.classroom.errors import Conflict, NotFound, PermissionDenied
from sislink.classroom.models import Class, Enrolment, EnrolmentRole, Person, Role


@dataclass(frozen=True, slots=True)
class Actor:
    """The person a service acts for, with their roles; `person_id` None means sislink itself."""

    person_id: int | None
    roles: frozenset[Role]

    @classmethod
    def of(cls, person: Person) -> Actor:
        return cls(person.id, person.roles)

    @classmethod
    def system(cls) -> Actor:
        """sislink's own jobs (roster import, scheduled exports): may do what an admin may."""
        return cls(None, frozenset({Role.ADMIN}))

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles


def require_admin(actor: Actor, doing: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"Only an administrator may {doing}.")


def teaches(session: Session, person_id: int, class_id: int) -> bool:
    """True if the person is the class's primary teacher or an active co-teacher."""
    co_teacher = exists().where(
        Enrolment.class_id == class_id,
        Enrolment.person_id == person_id,
        Enrolment.role == EnrolmentRole.TEACHER,
        Enrolment.active.is_(True),
    )
    statement = select(Class.id).where(
        Class.id == class_id, or_(Class.primary_teacher_id == person_id, co_teacher)
    )
    return session.execute(statement).first() is not None


def class_for_editing(session: Session, actor: Actor, class_id: int) -> Class:
    """The class, if the actor may change it (an admin, or someone who teaches it)."""
    found = session.get(Class, class_id)
    if found is None:
        raise NotFound(f"There is no class with id {class_id}; it may have been deleted.")
    if actor.is_admin:
        return found
    if actor.person_id is not None and teaches(session, actor.person_id, class_id):
        return found
    # Another teacher's class is named only by its id: its title is not this actor's to read.
    raise PermissionDenied(
        f"You do not teach the class with id {class_id}, so you cannot change it. "
        "Ask its teacher or an administrator to add you as a co-teacher."
    )


def class_for_primary_teacher(session: Session, actor: Actor, class_id: int, doing: str) -> Class:
    """The class, if the actor is its primary teacher or an administrator: the rule for what
    only the class's owner decides (its SIS link, its mark export choices). `doing` ends the
    refusal's sentence: "Only the primary teacher of 'X' can {doing}; ..."."""
    found = session.get(Class, class_id)
    if found is None:
        raise NotFound(f"There is no class with id {class_id}; it may have been deleted.")
    if actor.is_admin or (
        actor.person_id is not None and found.primary_teacher_id == actor.person_id
    ):
        return found
    # A co-teacher may read the class's title; anyone else learns only its id.
    shown = (
        repr(found.title)
        if actor.person_id is not None and teaches(session, actor.person_id, class_id)
        else f"the class with id {class_id}"
    )
    raise PermissionDenied(
        f"Only the primary teacher of {shown} can {doing}; ask them, or an administrator."
    )


def flush_or_conflict(session: Session, message: str) -> None:
    """Write pending changes; a clash with stored data becomes Conflict(message).

    The IntegrityError is not chained: its text can carry the values that clashed. The
    caller's transaction is rolled back as the Conflict leaves it, so nothing is half-written.
    """
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(message) from None
