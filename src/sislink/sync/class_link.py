"""Linking a classroom class to its SIS class: find the teacher in the SIS by email, list their
active SIS classes, link or unlink (the primary teacher only), and keep what the SIS says of the
linked class (school, terms, grading periods, categories) for mark export.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom
from sislink.classroom.errors import InvalidInput, NotFound, PermissionDenied
from sislink.classroom.models import (
    Class,
    ClassExportSettings,
    Person,
    SisConnection,
    utc_now,
)
from sislink.classroom.services import connections
from sislink.classroom.services.access import class_for_editing, class_for_primary_teacher
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.consumer.exceptions import NotFound as SisNotFound
from sislink.oneroster.consumer.exceptions import OneRosterError
from sislink.oneroster.filters import where
from sislink.oneroster.models import Category as SisCategory
from sislink.oneroster.models import Class as SisClass
from sislink.oneroster.versions import Version
from sislink.partners import catalogue
from sislink.sync.class_facts import (
    facts_confirmed_at,
    offer_categories,
    one_per_title,
    title_key,
)
from sislink.sync.errors import SyncError
from sislink.sync.ledger_check import check_ledger_against_sis
from sislink.sync.sis_client import open_sis_client

# What the SIS said of a class is fetched again on export once it is older than this.
FACTS_STALE_AFTER = timedelta(hours=12)


class TeacherNotInSis(SyncError):
    """The SIS has no teacher with this email, so their SIS classes cannot be listed."""


@dataclass(frozen=True)
class SisClassChoice:
    """One of a teacher's active SIS classes, as offered for linking."""

    sourced_id: str
    title: str
    class_code: str | None
    school_sourced_id: str
    term_sourced_ids: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "sourced_id": self.sourced_id,
            "title": self.title,
            "class_code": self.class_code,
            "school": self.school_sourced_id,
            "terms": list(self.term_sourced_ids),
        }


@dataclass(frozen=True)
class GradingPeriodFact:
    sourced_id: str
    title: str
    start_date: date
    end_date: date

    def contains(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


@dataclass(frozen=True)
class NotServed:
    """A call for the linked SIS class that the SIS answered 404 although it has the class."""

    what: str  # GRADING_PERIODS or CATEGORIES
    call: str  # "GET /ims/oneroster/rostering/v1p2/terms/t1/gradingPeriods"

    def as_json(self) -> dict[str, str]:
        return {"what": self.what, "call": self.call}


GRADING_PERIODS = "grading_periods"
CATEGORIES = "categories"


class SisClassGone(NotFound):
    """The SIS answers 404 for the linked SIS class itself: deleted or ended there."""

    def __init__(self, message: str, sis_class_id: str) -> None:
        super().__init__(message)
        self.sis_class_id = sis_class_id


@dataclass(frozen=True)
class SisClassFacts:
    """What the SIS says of one class: what mark export needs to build lineItems."""

    sis_class_id: str
    school_sourced_id: str | None
    term_sourced_ids: tuple[str, ...]
    grading_periods: tuple[GradingPeriodFact, ...]
    categories: tuple[tuple[str, str], ...]  # (sourcedId, title)
    # OneRoster 1.1 refuses a lineItem without a gradingPeriod; 1.2 does not need one.
    grading_period_required: bool = False
    # The SIS as teachers know it ("Skyward"), for what pre-flight tells them.
    sis_name: str = "the SIS"
    # What the SIS answered 404 for although it has the class (a term's grading periods, the
    # class's categories): those facts are missing, not the class. Pre-flight says so.
    not_served: tuple[NotServed, ...] = ()

    def not_served_call(self, what: str) -> str | None:
        """The call(s) the SIS did not serve for `what` ("grading_periods" or "categories")."""
        calls = [n.call for n in self.not_served if n.what == what]
        return ", ".join(calls) if calls else None

    def has_category(self, sourced_id: str) -> bool:
        return any(s == sourced_id for s, _ in self.categories)

    def grading_period(self, sourced_id: str) -> GradingPeriodFact | None:
        return next((p for p in self.grading_periods if p.sourced_id == sourced_id), None)

    def category_titled(self, title: str) -> str | None:
        """The sourcedId of the SIS category with this title (case and spaces ignored)."""
        wanted = title_key(title)
        for sourced_id, category_title in self.categories:
            if title_key(category_title) == wanted:
                return sourced_id
        return None


def _choice(sis_class: SisClass) -> SisClassChoice:
    return SisClassChoice(
        sourced_id=sis_class.sourced_id,
        title=sis_class.title,
        class_code=sis_class.class_code,
        school_sourced_id=sis_class.school.sourced_id,
        term_sourced_ids=tuple(t.sourced_id for t in sis_class.terms),
    )


async def sis_classes_for_teacher(client: OneRosterClient, email: str) -> list[SisClassChoice]:
    """The teacher's active SIS classes (the teacher is found in the SIS by email)."""
    teacher = await client.find_teacher_by_email(email.strip())
    if teacher is None:
        raise TeacherNotInSis(
            f"The SIS has no teacher with the email {email.strip()}; ask the SIS administrator "
            "to check the teacher's email in the SIS, or link as an administrator."
        )
    classes = await client.classes_for_teacher(teacher.sourced_id, active_only=True)
    return sorted((_choice(c) for c in classes), key=lambda c: (c.title, c.sourced_id))


async def fetch_sis_class_facts(
    client: OneRosterClient, sis_class_id: str, *, sis_name: str = "the SIS"
) -> SisClassFacts:
    """Read the SIS class, its terms' active grading periods and its active categories.

    Only a 404 for the class itself, or the class listed as `tobedeleted`, means the class is
    gone (SisClassGone). Once the SIS has answered for the class, a 404 for a term's grading
    periods (optional in 1.2; a term of type `semester` may have none to serve) or for the
    class's categories (a SIS without that endpoint: the district's categories are offered
    instead, as in 1.1) means the SIS does not serve them: the facts go on without them,
    saying which call it was (`not_served`)."""
    try:
        sis_class = await client.get("class", id=sis_class_id)
    except SisNotFound:
        raise SisClassGone(
            f"The SIS has no class with sourcedId {sis_class_id!r}; choose one of your SIS "
            "classes (sislink classes list --sis).",
            sis_class_id,
        ) from None
    assert isinstance(sis_class, SisClass)
    if sis_class.status != "active":
        # OneRoster's mark of a class deleted in the SIS, still served so consumers learn of it.
        raise SisClassGone(
            f"The SIS lists the class {sis_class_id!r} as {sis_class.status} (deleted there); "
            "choose one of your SIS classes (sislink classes list --sis).",
            sis_class_id,
        )
    terms = tuple(t.sourced_id for t in sis_class.terms)
    periods: dict[str, GradingPeriodFact] = {}
    not_served: list[NotServed] = []
    for term in terms:
        try:
            term_periods = await client.grading_periods_for_term(term)
        except SisNotFound as exc:
            not_served.append(NotServed(GRADING_PERIODS, f"{exc.method} {exc.path}"))
            continue
        for period in term_periods:
            if period.status != "active":
                continue  # a period the SIS is deleting takes no new lineItems
            periods[period.sourced_id] = GradingPeriodFact(
                period.sourced_id, period.title, period.start_date, period.end_date
            )
    try:
        categories = await client.categories_for_class(sis_class_id)
    except SisNotFound as exc:
        not_served.append(NotServed(CATEGORIES, f"{exc.method} {exc.path}"))
        categories = await _district_categories(client)
    return SisClassFacts(
        sis_class_id=sis_class_id,
        school_sourced_id=sis_class.school.sourced_id,
        term_sourced_ids=terms,
        grading_periods=tuple(sorted(periods.values(), key=lambda p: (p.start_date, p.title))),
        categories=tuple(
            one_per_title((c.sourced_id, c.title) for c in categories if c.status == "active")
        ),
        grading_period_required=client.spec.version is Version.V1_1,
        sis_name=sis_name,
        not_served=tuple(not_served),
    )


async def _district_categories(client: OneRosterClient) -> list[SisCategory]:
    """Every active category of the SIS, for a class whose own list the SIS does not serve;
    none when the SIS serves no categories at all (pre-flight then says which call failed)."""
    try:
        return [
            c
            async for c in client.iter_collection(
                "categories", filter=where("status", "=", "active")
            )
            if isinstance(c, SisCategory)
        ]
    except SisNotFound:
        return []


def sis_name(session: Session) -> str:
    """The connected SIS as teachers know it (its profile's display name)."""
    connection = connections.current_connection(session)
    found = catalogue().get(connection.partner) if connection is not None else None
    return found.display_name if found is not None else "the SIS"


def export_settings(session: Session, class_id: int) -> ClassExportSettings:
    """The class's export settings row, made with the defaults on first use."""
    found = session.scalars(
        select(ClassExportSettings).where(ClassExportSettings.class_id == class_id)
    ).first()
    if found is None:
        found = ClassExportSettings(
            class_id=class_id,
            sis_term_sourced_ids=[],
            sis_grading_periods=[],
            sis_categories=[],
        )
        session.add(found)
        session.flush()
    return found


def keep_sis_class_facts(session: Session, class_id: int, facts: SisClassFacts) -> None:
    """Remember what the SIS said of the linked class, and offer its categories to teachers.

    A category whose SIS category the SIS class does not have (any more, or after a relink to
    another SIS class) forgets its SIS sourcedId: it is matched by title again at export.
    """
    row = export_settings(session, class_id)
    row.sis_school_sourced_id = facts.school_sourced_id
    row.sis_term_sourced_ids = list(facts.term_sourced_ids)
    row.sis_grading_periods = [
        {
            "sourcedId": p.sourced_id,
            "title": p.title,
            "startDate": p.start_date.isoformat(),
            "endDate": p.end_date.isoformat(),
        }
        for p in facts.grading_periods
    ]
    row.sis_categories = [{"sourcedId": s, "title": t} for s, t in facts.categories]
    row.sis_not_served = [n.as_json() for n in facts.not_served]
    row.sis_refreshed_at = utc_now()
    offer_categories(session, class_id, list(facts.categories))


def kept_sis_class_facts(session: Session, class_id: int) -> SisClassFacts | None:
    """What the SIS said of the class when it was last read (None if never, or stale)."""
    row = session.scalars(
        select(ClassExportSettings).where(ClassExportSettings.class_id == class_id)
    ).first()
    link = connections.class_link(session, class_id)
    if row is None or link is None or row.sis_refreshed_at is None:
        return None
    # A roster import confirms the facts of every linked class it did not change.
    confirmed = facts_confirmed_at(session, link.connection_id)
    read_at = max(row.sis_refreshed_at, confirmed) if confirmed else row.sis_refreshed_at
    if utc_now() - read_at > FACTS_STALE_AFTER:
        return None
    connection = session.get(SisConnection, link.connection_id)
    return SisClassFacts(
        sis_class_id=link.sis_class_sourced_id,
        school_sourced_id=row.sis_school_sourced_id,
        term_sourced_ids=tuple(row.sis_term_sourced_ids),
        grading_periods=tuple(
            GradingPeriodFact(
                p["sourcedId"],
                p["title"],
                date.fromisoformat(p["startDate"]),
                date.fromisoformat(p["endDate"]),
            )
            for p in row.sis_grading_periods
        ),
        categories=tuple((c["sourcedId"], c["title"]) for c in row.sis_categories),
        grading_period_required=connection is not None and connection.version == "1.1",
        sis_name=sis_name(session),
        not_served=tuple(
            NotServed(str(n.get("what", "")), str(n.get("call", "")))
            for n in row.sis_not_served or []
        ),
    )


def forget_sis_class_facts(session: Session, class_id: int) -> None:
    row = session.scalars(
        select(ClassExportSettings).where(ClassExportSettings.class_id == class_id)
    ).first()
    if row is not None:
        row.sis_refreshed_at = None


def require_primary_teacher(session: Session, actor: Actor, class_id: int, doing: str) -> Class:
    """The class, if the actor is its primary teacher (or an administrator)."""
    return class_for_primary_teacher(session, actor, class_id, doing)


async def link_class(
    classroom: Classroom, client: OneRosterClient, actor: Actor, class_id: int, sis_class_id: str
) -> SisClassFacts:
    """Link a class to one SIS class and keep the SIS class's grading periods and categories.

    Only the primary teacher (or an administrator) links; a teacher may only pick one of their
    own active SIS classes; one SIS class belongs to one classroom class. The permission and
    "already linked" checks are made first, so nothing is asked of the SIS in vain, and made
    again in the transaction that writes the link (the SIS calls take time in between).
    """
    sis_class_id = sis_class_id.strip()
    if not sis_class_id:
        raise InvalidInput("Give the SIS class to link to (its sourcedId).")
    doing = "link it to a SIS class"
    with classroom.transaction() as session:
        klass = require_primary_teacher(session, actor, class_id, doing)
        connection = connections.require_export_allowed(session, actor)
        connections.refuse_if_sis_class_taken(session, connection, sis_class_id, class_id)
        teacher_email = None
        if not actor.is_admin and actor.person_id is not None:
            person = session.get(Person, actor.person_id)
            teacher_email = person.email if person else None
        title = klass.title
        name = sis_name(session)
    if teacher_email is not None:
        offered = {c.sourced_id for c in await sis_classes_for_teacher(client, teacher_email)}
        if sis_class_id not in offered:
            raise PermissionDenied(
                f"The SIS class {sis_class_id} is not one of your active SIS classes, so you "
                f"cannot link {title!r} to it; choose one of your SIS classes "
                "(sislink classes list --sis)."
            )
    facts = await fetch_sis_class_facts(client, sis_class_id, sis_name=name)
    with classroom.transaction() as session:
        require_primary_teacher(session, actor, class_id, doing)
        connections.link_class(session, actor, class_id, sis_class_id)
        keep_sis_class_facts(session, class_id, facts)
    return facts


def unlink_class(classroom: Classroom, actor: Actor, class_id: int) -> bool:
    """Remove the class's SIS link (the primary teacher or an administrator). True if linked."""
    with classroom.transaction() as session:
        require_primary_teacher(session, actor, class_id, "unlink it from its SIS class")
        unlinked = connections.unlink_class(session, actor, class_id)
        forget_sis_class_facts(session, class_id)
        return unlinked


async def refresh_sis_class_facts(
    classroom: Classroom, client: OneRosterClient, class_id: int, *, force: bool = False
) -> SisClassFacts:
    """What the SIS says of the linked class now (read again when stale, or when `force`), kept."""
    with classroom.session() as session:
        kept = None if force else kept_sis_class_facts(session, class_id)
        link = connections.class_link(session, class_id)
        name = sis_name(session)
    if kept is not None:
        # The version that counts is the one the export speaks.
        return replace(kept, grading_period_required=client.spec.version is Version.V1_1)
    if link is None:
        raise InvalidInput("This class is not linked to a SIS class.")
    facts = await fetch_sis_class_facts(client, link.sis_class_sourced_id, sis_name=name)
    with classroom.transaction() as session:
        keep_sis_class_facts(session, class_id, facts)
    return facts


async def refresh_class_facts_for_teacher(
    classroom: Classroom, client: OneRosterClient, actor: Actor, class_id: int
) -> SisClassFacts:
    """Read the linked class's SIS facts again now, for any of its teachers (or an administrator):
    after the SIS changed its categories or grading periods, nobody waits for them to go stale.
    The ledger is checked against the SIS's lineItems and results too: what the SIS lost is
    sent again by the next export (sislink.sync.ledger_check)."""
    with classroom.session() as session:
        class_for_editing(session, actor, class_id)
    facts = await refresh_sis_class_facts(classroom, client, class_id, force=True)
    await check_ledger_against_sis(classroom, client, class_id)
    return facts


async def fresh_facts_before_coursework(classroom: Classroom, class_id: int) -> str | None:
    """Before a teacher adds coursework: read the class's SIS facts if they are stale, so its
    SIS categories are there to choose, with the connection's own client. Returns why they
    could not be read (the SIS is down or not connected, the class is no longer linked) in
    words, or None; a class that is not linked asks nothing. Coursework is added either way."""
    with classroom.session() as session:
        link = connections.class_link(session, class_id)
        if link is None or kept_sis_class_facts(session, class_id) is not None:
            return None
    try:
        async with open_sis_client(classroom) as client:
            await refresh_sis_class_facts(classroom, client, class_id)
    except (OneRosterError, SyncError, NotFound, InvalidInput) as exc:
        return f"The SIS's categories could not be read now ({exc}); those known are offered."
    return None
