"""A class's mark export choices: what a missing mark becomes in the SIS, whether draft marks
are exported too, and how far above a coursework's points a mark may go (extra credit).

Anyone who teaches the class (or an administrator) may read them, since they decide what an
export sends; only the primary teacher (or an administrator) changes them, as with the class's
SIS link. The export reads the same row (`sync.class_link.export_settings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import InvalidInput
from sislink.classroom.models import (
    ClassExportSettings,
    Coursework,
    CourseworkState,
    Mark,
    MissingMarkExport,
    Person,
)
from sislink.classroom.services.access import (
    Actor,
    class_for_editing,
    class_for_primary_teacher,
    flush_or_conflict,
)
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.plain_numbers import read_plain_number

# How many marks a refusal lists (the rest are counted).
NAMED_MARKS = 5

# What a person may type for each choice: "not-submitted" on a command line, "not_submitted"
# as stored and answered, "not submitted" as the SIS's scoreStatus reads.
MISSING_AS_WORDS: dict[str, MissingMarkExport] = {
    "zero": MissingMarkExport.ZERO,
    "0": MissingMarkExport.ZERO,
    "not_submitted": MissingMarkExport.NOT_SUBMITTED,
    "not-submitted": MissingMarkExport.NOT_SUBMITTED,
    "not submitted": MissingMarkExport.NOT_SUBMITTED,
}


# A mark may be up to this many times its coursework's points unless the class says otherwise.
DEFAULT_EXTRA_CREDIT_LIMIT = 2.0
# What a class may choose: 1 (no extra credit) up to this.
MAX_EXTRA_CREDIT_LIMIT = 100.0


def parse_extra_credit_limit(value: float | int | str) -> float:
    """The limit as a multiple of the points: a number from 1 (no extra credit) to 100, typed
    with plain digits (the rule marks are read by: no 1e3, no other scripts' digits, no 1_0)."""
    number = read_plain_number(value, subject=f"An extra-credit limit of {value!r}")
    if not 1 <= number <= MAX_EXTRA_CREDIT_LIMIT:
        raise InvalidInput(
            f"The extra-credit limit is how many times its points a coursework's mark may be, "
            f"from 1 (no extra credit) to {MAX_EXTRA_CREDIT_LIMIT:g}, not {value!r}."
        )
    return number


def extra_credit_limit(session: Session, class_id: int) -> float:
    """How many times its points a coursework of this class may be marked (the class's
    choice, else the default): every way of setting a mark refuses one above it."""
    row = _row(session, class_id)
    if row is None or row.extra_credit_limit is None:
        return DEFAULT_EXTRA_CREDIT_LIMIT
    return float(row.extra_credit_limit)


@dataclass(frozen=True)
class ExportChoices:
    """The class's choices as the export applies them."""

    class_id: int
    missing_as: MissingMarkExport
    export_drafts: bool
    extra_credit_limit: float = DEFAULT_EXTRA_CREDIT_LIMIT

    def as_json(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "missing_as": self.missing_as.value,
            "export_drafts": self.export_drafts,
            "extra_credit_limit": self.extra_credit_limit,
        }

    def describe(self) -> str:
        """The choices in a teacher's words."""
        missing = (
            "a score of 0"
            if self.missing_as == MissingMarkExport.ZERO
            else "'not submitted' (no score)"
        )
        drafts = (
            "draft marks are exported too"
            if self.export_drafts
            else "only returned marks are exported"
        )
        return (
            f"Missing marks go to the SIS as {missing}; {drafts}; a mark may be up to "
            f"{self.extra_credit_limit:g} times the coursework's points (extra credit)."
        )


def parse_missing_as(value: str | MissingMarkExport) -> MissingMarkExport:
    """'zero' or 'not-submitted' (also 'not_submitted', 'not submitted'), any case."""
    if isinstance(value, MissingMarkExport):
        return value
    found = MISSING_AS_WORDS.get(" ".join(value.split()).casefold())
    if found is None:
        raise InvalidInput(
            f"Missing marks can go to the SIS as 'zero' (a score of 0) or 'not-submitted' "
            f"(no score), not {value!r}."
        )
    return found


def export_choices(session: Session, actor: Actor, class_id: int) -> ExportChoices:
    """The class's choices (the defaults until someone changes them): for those who teach it."""
    class_for_editing(session, actor, class_id)
    return _choices(class_id, _row(session, class_id))


def change_export_choices(
    session: Session,
    actor: Actor,
    class_id: int,
    *,
    missing_as: str | MissingMarkExport | None = None,
    export_drafts: bool | None = None,
    extra_credit: float | str | None = None,
) -> ExportChoices:
    """Change what is given (None keeps a choice as it is). Only the class's primary teacher,
    or an administrator, may; the change is in the audit trail."""
    klass = class_for_primary_teacher(session, actor, class_id, "change its mark export choices")
    chosen = None if missing_as is None else parse_missing_as(missing_as)
    limit = None if extra_credit is None else parse_extra_credit_limit(extra_credit)
    row = _row(session, class_id)
    if row is None:
        row = ClassExportSettings(
            class_id=class_id,
            missing_as=MissingMarkExport.ZERO,
            export_drafts=False,
            sis_term_sourced_ids=[],
            sis_grading_periods=[],
            sis_categories=[],
        )
        session.add(row)
    before = _choices(class_id, row)
    if limit is not None and limit < before.extra_credit_limit:
        refuse_marks_above_limit(
            session,
            class_id,
            limit,
            change=f"Lowering the extra-credit limit to {limit:g}",
            keep="the limit as it is",
        )
    if chosen is not None:
        row.missing_as = chosen
    if export_drafts is not None:
        row.export_drafts = export_drafts
    if limit is not None:
        row.extra_credit_limit = limit
    flush_or_conflict(
        session, "The export choices were changed by someone else at the same time; try again."
    )
    after = _choices(class_id, row)
    if after != before:
        record_event(
            session,
            actor,
            "class.export_choices_changed",
            f"class:{class_id}",
            {"title": klass.title, "before": before.as_json(), "after": after.as_json()},
        )
    return after


def refuse_marks_above_limit(
    session: Session,
    class_id: int,
    limit: float,
    *,
    change: str,
    keep: str,
    coursework_id: int | None = None,
    points: float | None = None,
) -> None:
    """InvalidInput, naming them, when marks of the class would be above `limit` times their
    coursework's points (with `points` for `coursework_id`, when its points are changing): a
    change of points or limit must not leave marks that no way of setting a mark would take,
    and that the export would then send."""
    rows = session.execute(
        select(Mark.score, Mark.coursework_id, Coursework.title, Coursework.max_points, Person)
        .join(Coursework, Coursework.id == Mark.coursework_id)
        .join(Person, Person.id == Mark.student_id)
        .where(
            Coursework.class_id == class_id,
            Coursework.state != CourseworkState.DELETED,
            Mark.score.is_not(None),
        )
        .order_by(Coursework.id, Person.name, Person.id)
    ).all()
    above: list[str] = []
    for score, work_id, title, max_points, student in rows:
        held = points if work_id == coursework_id else max_points
        if held is not None and score is not None and score > held * limit:
            who = student.email or student.sis_identifier or student.name
            above.append(f"{title!r} / {student.name} ({who}): {score:g} of {held:g}")
    if not above:
        return
    listed = "; ".join(above[:NAMED_MARKS])
    more = f"; and {len(above) - NAMED_MARKS} more" if len(above) > NAMED_MARKS else ""
    raise InvalidInput(
        f"{change} would leave {len(above)} mark{'s' if len(above) != 1 else ''} above the "
        f"extra-credit limit ({limit:g} times the points): {listed}{more}. Lower those marks "
        f"first, or keep {keep}. Nothing was changed."
    )


def _row(session: Session, class_id: int) -> ClassExportSettings | None:
    return session.scalars(
        select(ClassExportSettings).where(ClassExportSettings.class_id == class_id)
    ).first()


def _choices(class_id: int, row: ClassExportSettings | None) -> ExportChoices:
    if row is None:
        return ExportChoices(class_id, MissingMarkExport.ZERO, False)
    return ExportChoices(
        class_id,
        parse_missing_as(row.missing_as or MissingMarkExport.ZERO),
        bool(row.export_drafts),
        DEFAULT_EXTRA_CREDIT_LIMIT
        if row.extra_credit_limit is None
        else float(row.extra_credit_limit),
    )
