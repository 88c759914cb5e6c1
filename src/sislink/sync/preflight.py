"""Mark export pre-flight: what stops a class, a coursework or a mark from going to the SIS,
found before anything is sent and said in a teacher's words.

Whole-export refusals (nothing is sent) raise `ExportRefused`; per-item reasons are `Reason`s
with a sentence each, reported as skipped (or, for a long title, as a note on what was sent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from sqlalchemy.orm import Session

from sislink.classroom import Actor
from sislink.classroom.errors import NotFound
from sislink.classroom.models import (
    Category,
    Class,
    ClassLink,
    ConnectionStatus,
    GradingPeriod,
    SisConnection,
)
from sislink.classroom.services import connections
from sislink.classroom.services.access import teaches
from sislink.classroom.services.time_zone import school_time_zone
from sislink.oneroster.models import User
from sislink.partners import profile as partner_profile
from sislink.sync.class_link import (
    CATEGORIES,
    GRADING_PERIODS,
    GradingPeriodFact,
    SisClassFacts,
    kept_sis_class_facts,
)
from sislink.sync.errors import SyncError

# How many characters of a lineItem title the SIS keeps, unless the organisation's settings
# say otherwise (`sis_title_max_length`): longer titles are cut, the full title goes first in
# the description, and the report says so.
DEFAULT_TITLE_LIMIT = 255
TITLE_LIMIT_SETTING = "sis_title_max_length"


class Refusal(StrEnum):
    PERMISSION_OFF = "permission_off"
    DISCONNECTED = "disconnected"
    NOT_CONNECTED = "not_connected"
    NOT_YOUR_CLASS = "not_your_class"
    CLASS_NOT_LINKED = "class_not_linked"


class ExportRefused(SyncError):
    """Nothing was sent: the export is not allowed or not possible now. `reason` says which."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Reason(StrEnum):
    """Why one item was not sent (or, TITLE_TRUNCATED, what was changed on the way)."""

    DRAFT_COURSEWORK = "draft_coursework"
    NOT_FOR_EXPORT = "not_for_export"
    NO_DUE_DATE = "no_due_date"
    DUE_OUTSIDE_PERIODS = "due_date_outside_grading_periods"
    GRADING_PERIOD_NOT_IN_SIS = "grading_period_not_in_sis"
    NO_GRADING_PERIOD = "no_grading_period"
    NO_CATEGORY = "no_category"
    CATEGORY_NOT_IN_SIS = "category_not_in_sis"
    NO_POINTS = "no_points"
    TITLE_TRUNCATED = "title_truncated"
    STUDENT_NOT_IN_SIS = "student_not_in_sis_class"
    SCORE_NOT_A_NUMBER = "score_not_a_number"
    DRAFT_MARK = "draft_mark"
    COURSEWORK_NOT_SENT = "coursework_not_sent"


@dataclass(frozen=True)
class Finding:
    """A pre-flight finding on one item: the reason and the sentence for the teacher."""

    reason: Reason
    message: str

    def __str__(self) -> str:
        return self.message


def check_export_allowed(
    session: Session, actor: Actor, class_id: int
) -> tuple[Class, SisConnection, ClassLink]:
    """The class, connection and link, if `actor` may export this class's marks now."""
    klass = session.get(Class, class_id)
    if klass is None:
        raise NotFound(f"There is no class with id {class_id}; it may have been deleted.")
    if not actor.is_admin and (
        actor.person_id is None or not teaches(session, actor.person_id, class_id)
    ):
        raise ExportRefused(
            Refusal.NOT_YOUR_CLASS,
            f"You do not teach the class with id {class_id}, so you cannot export its marks; "
            "only its teachers (or an administrator) can.",
        )
    connection = connections.current_connection(session)
    if connection is None:
        raise ExportRefused(
            Refusal.NOT_CONNECTED,
            "sislink is not connected to a SIS, so marks cannot be exported; ask an "
            "administrator to connect it.",
        )
    if connection.status == ConnectionStatus.DISCONNECTED:
        raise ExportRefused(
            Refusal.DISCONNECTED,
            "sislink was disconnected from the SIS, so marks cannot be exported; ask an "
            "administrator to reconnect it. Marks already exported stay in the SIS.",
        )
    if connection.status != ConnectionStatus.AUTHORISED:
        raise ExportRefused(
            Refusal.NOT_CONNECTED,
            "The SIS connection is not authorised yet, so marks cannot be exported; ask an "
            "administrator to authorise it.",
        )
    if not actor.is_admin and not connection.teacher_export_enabled:
        raise ExportRefused(
            Refusal.PERMISSION_OFF,
            "Mark export is switched off for teachers; an administrator can switch on "
            "'Enable classwork and mark exporting'.",
        )
    link = connections.class_link(session, class_id)
    if link is None:
        raise ExportRefused(
            Refusal.CLASS_NOT_LINKED,
            f"{klass.title!r} is not linked to a SIS class, so its marks have nowhere to go; "
            "link it first (sislink classes link).",
        )
    linked_through = (
        session.get(SisConnection, link.connection_id)
        if link.connection_id != connection.id
        else connection
    )
    if linked_through is not None and connections.is_another_sis(linked_through, connection):
        # A link made with another SIS is set aside at reconnect: its SIS class belongs to
        # that SIS, and the same sourcedId here may be another class (or another class's).
        raise ExportRefused(
            Refusal.CLASS_NOT_LINKED,
            f"{klass.title!r} is linked to a class of the SIS sislink was connected to before "
            f"({linked_through.partner}), not of the SIS connected now, so its marks have "
            "nowhere to go; link it to one of this SIS's classes (sislink classes link).",
        )
    return klass, connection, link


def due_date_finding(due: datetime | None) -> Finding | None:
    if due is None:
        return Finding(
            Reason.NO_DUE_DATE,
            "It has no due date, and the SIS needs one: give it a due date.",
        )
    return None


def choose_grading_period(
    facts: SisClassFacts, due: datetime, chosen_sourced_id: str | None, zone: tzinfo = UTC
) -> tuple[str | None, Finding | None]:
    """The grading period: the teacher's choice, else the one containing the due date (its
    day in the school's time zone `zone`: 9 PM in Chicago on a period's last day is the next
    day in UTC, but still in that period for the school).

    The choice must be one of the SIS class's grading periods now: after a relink to another
    SIS class, a period of the old one would be refused by the SIS (or land in the wrong class).
    """
    if chosen_sourced_id:
        if facts.grading_period(chosen_sourced_id) is not None:
            return chosen_sourced_id, None
        return None, Finding(
            Reason.GRADING_PERIOD_NOT_IN_SIS,
            f"The grading period chosen for it (SIS id {chosen_sourced_id}) is not one of the "
            f"SIS class's grading periods ({_spans(facts) or 'it has none'}): choose one of "
            "those, or none to use the one containing the due date.",
        )
    unserved = facts.not_served_call(GRADING_PERIODS)
    if not facts.grading_periods:
        if facts.grading_period_required:
            if unserved:
                return None, Finding(
                    Reason.NO_GRADING_PERIOD,
                    f"{facts.sis_name} needs a grading period for every assignment, but it "
                    f"answered 404 Not Found when asked for the grading periods of the class's "
                    f"term ({unserved}): ask the SIS administrator or vendor to serve grading "
                    "periods for that term.",
                )
            return None, Finding(
                Reason.NO_GRADING_PERIOD,
                f"The SIS class has no grading periods, and {facts.sis_name} needs one for "
                "every assignment: ask the SIS administrator to add grading periods to the "
                "class's term.",
            )
        return None, None  # the SIS class has none and the SIS does not ask for one
    day = due.astimezone(zone).date()
    containing: list[GradingPeriodFact] = [p for p in facts.grading_periods if p.contains(day)]
    if containing:
        return containing[0].sourced_id, None
    if unserved and not facts.grading_period_required:
        # Some terms' periods were not served: the due date may be in one of those. The SIS
        # does not need a grading period, so it goes without one rather than not at all.
        return None, None
    return None, Finding(
        Reason.DUE_OUTSIDE_PERIODS,
        f"Its due date {day.isoformat()} is outside every grading period of the SIS class "
        f"({_spans(facts)}): move the due date into one, or choose a grading period.",
    )


def _spans(facts: SisClassFacts) -> str:
    return "; ".join(
        f"{p.title} {p.start_date.isoformat()} to {p.end_date.isoformat()}"
        for p in facts.grading_periods
    )


def choose_category(
    facts: SisClassFacts,
    chosen_title: str | None,
    chosen_sourced_id: str | None,
    default_title: str | None,
) -> tuple[str | None, Finding | None]:
    """The SIS category: the teacher's choice, else the SIS's default category (by title).

    A chosen category's SIS sourcedId is used only if the SIS class has that category now;
    otherwise (e.g. it was the old SIS class's, before a relink) it is found by title.
    """
    if chosen_sourced_id and facts.has_category(chosen_sourced_id):
        return chosen_sourced_id, None
    if chosen_title or chosen_sourced_id:
        found = facts.category_titled(chosen_title) if chosen_title else None
        if found:
            return found, None
        named = repr(chosen_title) if chosen_title else f"(SIS id {chosen_sourced_id})"
        return None, Finding(
            Reason.CATEGORY_NOT_IN_SIS,
            f"Its category {named} is not one of the SIS class's categories: {_choose_one(facts)}.",
        )
    if default_title:
        found = facts.category_titled(default_title)
        if found:
            return found, None
        return None, Finding(
            Reason.NO_CATEGORY,
            f"It has no category, and the SIS class has no category {default_title!r}, the "
            f"default for {facts.sis_name}: {_choose_one(facts)}.",
        )
    return None, Finding(
        Reason.NO_CATEGORY,
        f"It has no category and the SIS has no default category: {_choose_one(facts)}.",
    )


def _titles(facts: SisClassFacts) -> str:
    return ", ".join(title for _, title in facts.categories)


def _choose_one(facts: SisClassFacts) -> str:
    unserved = facts.not_served_call(CATEGORIES)
    if not facts.categories and unserved:
        return (
            f"the SIS answered 404 Not Found when asked for the class's categories ({unserved}) "
            "and serves no list of categories, so there is none to choose; ask the SIS "
            "administrator or vendor to serve the class's categories"
        )
    if not facts.categories:
        return "the SIS class has no categories at all; ask the SIS administrator to add one"
    return f"choose one of: {_titles(facts)}"


def fit_title(title: str, description: str, limit: int) -> tuple[str, str, Finding | None]:
    """Title and description as sent: a title over the SIS's limit is cut, and the full title
    goes first in the description."""
    if len(title) <= limit:
        return title, description, None
    cut = title[: max(limit - 1, 1)].rstrip() + "…"
    full = f"Full title: {title}" + (f"\n\n{description}" if description else "")
    return (
        cut,
        full,
        Finding(
            Reason.TITLE_TRUNCATED,
            f"Its title has {len(title)} characters and the SIS keeps {limit}: it was sent "
            "shortened, with the full title at the start of the description.",
        ),
    )


def points_finding(max_points: float | None) -> Finding | None:
    if max_points is None:
        return Finding(
            Reason.NO_POINTS,
            "It is not marked with points, so the SIS has nothing to record: give it max points.",
        )
    return None


def score_finding(score: float | None) -> Finding | None:
    if score is not None and not math.isfinite(score):
        return Finding(
            Reason.SCORE_NOT_A_NUMBER,
            f"The mark {score!r} is not a number: correct it.",
        )
    return None


@dataclass(frozen=True)
class StudentDirectory:
    """The SIS class's students, to find each classroom student's SIS sourcedId."""

    by_sourced_id: dict[str, str]
    by_email: dict[str, str]
    by_identifier: dict[str, str]

    @classmethod
    def of(cls, students: list[User]) -> StudentDirectory:
        """The directory of the SIS's active records: one listed as `tobedeleted` was deleted
        there (a student given a new record keeps their email), so it takes no mark."""
        students = [user for user in students if user.status == "active"]
        by_email: dict[str, str] = {}
        by_identifier: dict[str, str] = {}
        for user in students:
            if user.email:
                by_email.setdefault(user.email.strip().casefold(), user.sourced_id)
            if user.identifier:
                by_identifier.setdefault(user.identifier.strip(), user.sourced_id)
        return cls({u.sourced_id: u.sourced_id for u in students}, by_email, by_identifier)

    def find(
        self, sis_sourced_id: str | None, email: str | None, identifier: str | None
    ) -> str | None:
        """The SIS sourcedId: by the imported sourcedId, then email, then identifier."""
        if sis_sourced_id and sis_sourced_id in self.by_sourced_id:
            return sis_sourced_id
        if email and email.strip().casefold() in self.by_email:
            return self.by_email[email.strip().casefold()]
        if identifier and identifier.strip() in self.by_identifier:
            return self.by_identifier[identifier.strip()]
        return None


def student_finding(name: str, email: str | None) -> Finding:
    return Finding(
        Reason.STUDENT_NOT_IN_SIS,
        f"{name} ({email or 'no email'}) is not a student of the SIS class (looked up by email, "
        "then by identifier): ask the SIS administrator to enrol them, or check their email.",
    )


def coursework_form_problems(
    session: Session,
    class_id: int,
    *,
    max_points: float | None,
    due_date: datetime | None,
    category_id: int | None,
    grading_period_id: int | None,
) -> dict[str, str]:
    """What a coursework of a LINKED class lacks for the SIS, field by field, before it is
    saved (the export would skip it): points, a due date inside one of the SIS class's grading
    periods, one of the SIS class's categories. Empty when the class is not linked or its SIS
    facts were never read (the export then says what it finds)."""
    if connections.class_link(session, class_id) is None:
        return {}
    facts = kept_sis_class_facts(session, class_id)
    if facts is None:
        return {}
    problems: dict[str, str] = {}
    if points_finding(max_points) is not None:
        problems["points"] = (
            "The SIS needs points for every assignment: give the most a student can score."
        )
    period_sourced_id = None
    if grading_period_id is not None:
        period = session.get(GradingPeriod, grading_period_id)
        period_sourced_id = period.sis_sourced_id if period is not None else None
    if due_date is None:
        problems["due"] = (
            "The SIS needs a due date: pick one inside one of the class's grading periods."
        )
    else:
        zone = school_time_zone(session).zone
        _, found = choose_grading_period(facts, due_date, period_sourced_id, zone)
        if found is not None:
            problems["grading_period_id" if period_sourced_id else "due"] = found.message.replace(
                "Its due date", "The due date"
            )
    category = session.get(Category, category_id) if category_id is not None else None
    connection = connections.current_connection(session)
    default = partner_profile(connection.partner).default_category if connection else None
    _, found = choose_category(
        facts,
        category.title if category is not None else None,
        category.sis_sourced_id if category is not None else None,
        default,
    )
    if found is not None:
        problems["category_id"] = found.message.replace("Its category", "The category").replace(
            "It has no category", "No category is chosen"
        )
    return problems
