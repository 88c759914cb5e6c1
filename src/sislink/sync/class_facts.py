"""The linked classes' SIS facts (school, terms, grading periods, categories), kept fresh by
the roster import, so that mark export and coursework see what the SIS says now.

`class_link.fetch_sis_class_facts` reads one class's facts from the SIS (when a class is
linked, or when a teacher asks for them again). A roster import knows the same facts for
every class it read: `rebuild_class_facts` writes them, in the import's own transaction, for
each linked class whose facts the import changed (every linked class, in a full import). The
import also confirms, as of its start, the facts it did not change: `facts_confirmed_at` is
when the last roster import applied, and kept facts count as fresh from the later of that and
their own reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sislink.classroom.bulk import insert_new_rows
from sislink.classroom.models import (
    Category,
    Class,
    ClassExportSettings,
    ClassLink,
    GradingPeriod,
    RosterSyncState,
    School,
    Term,
    utc_now,
)


@dataclass
class ClassFactsFromRoster:
    """What one roster import read that the classes' facts are made of (SIS ids throughout)."""

    full: bool
    class_terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # What `classes/{id}/categories` answered, for the classes the import asked.
    class_categories: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    categories_changed: set[str] = field(default_factory=set)  # SIS classes with category rows
    terms_with_new_periods: set[str] = field(default_factory=set)
    categories_known: bool = True  # False when the SIS refused the categories
    # Every active category of the district, when the SIS lists no class's own (1.1, or a 1.2
    # SIS without `classes/{id}/categories`) and this import read them all (a full import):
    # each class is offered them, as `fetch_sis_class_facts` does. None: not known.
    district_categories: list[tuple[str, str]] | None = None
    # The call the SIS answered 404 for although it had just listed the class, if any.
    class_categories_not_served: str | None = None


def facts_confirmed_at(session: Session, connection_id: int) -> datetime | None:
    """When the last applied roster import of this connection started (its facts as of then)."""
    state = session.get(RosterSyncState, connection_id)
    return state.watermark if state is not None else None


def rebuild_class_facts(session: Session, connection_id: int, read: ClassFactsFromRoster) -> int:
    """Write the SIS facts of the linked classes this import changed; returns how many."""
    # Light columns first: a delta that changed nothing loads no settings row at all.
    links = session.execute(
        select(
            ClassLink.class_id,
            ClassLink.sis_class_sourced_id,
            ClassExportSettings.sis_refreshed_at,
            ClassExportSettings.id,
        )
        .join(Class, Class.id == ClassLink.class_id)
        .outerjoin(ClassExportSettings, ClassExportSettings.class_id == ClassLink.class_id)
        .where(ClassLink.connection_id == connection_id, Class.active.is_(True))
    ).all()
    changed = read.class_terms.keys() | read.class_categories.keys() | read.categories_changed
    chosen = [
        (class_id, sis_class)
        for class_id, sis_class, refreshed_at, _ in links
        if read.full or refreshed_at is None or sis_class in changed
    ]
    # Only the classes that have a settings row are loaded (none, in a district's first import).
    with_settings = {class_id for class_id, _, _, settings_id in links if settings_id is not None}
    if read.terms_with_new_periods:
        picked = {class_id for class_id, _ in chosen}
        terms_of = dict(
            session.execute(
                select(ClassExportSettings.class_id, ClassExportSettings.sis_term_sourced_ids)
            ).all()
        )
        chosen += [
            (class_id, sis_class)
            for class_id, sis_class, _, _ in links
            if class_id not in picked
            and read.terms_with_new_periods.intersection(terms_of.get(class_id) or ())
        ]
    if not chosen:
        _forget_facts_of_deleted_sis_classes(session, connection_id)
        return 0
    loaded = [class_id for class_id, _ in chosen if class_id in with_settings]
    settings = {
        row.class_id: row
        for start in range(0, len(loaded), 5000)
        for row in session.scalars(
            select(ClassExportSettings).where(
                ClassExportSettings.class_id.in_(loaded[start : start + 5000])
            )
        )
    }
    wanted_sis = {sis_class for _, sis_class in chosen}
    imported = {
        sis_id: (class_id, school, own_term)
        for sis_id, class_id, school, own_term in session.execute(
            select(Class.sis_sourced_id, Class.id, School.sis_sourced_id, Term.sis_sourced_id)
            .outerjoin(School, School.id == Class.school_id)
            .outerjoin(Term, Term.id == Class.term_id)
            .where(Class.sis_sourced_id.in_(wanted_sis))
        )
    }
    categories_of = _sis_categories_of(session, [v[0] for v in imported.values()])
    gone = _deactivated_sis_categories(
        session,
        {
            str(c.get("sourcedId"))
            for row in settings.values()
            for c in row.sis_categories or []
            if c.get("sourcedId")
        },
    )
    now = utc_now()
    periods_of = _periods_of_terms(session)
    periods_by_terms: dict[tuple[str, ...], list[dict[str, str]]] = {}
    refreshed = 0
    # Classes linked since the last import have no settings row yet (every class, in a
    # district's first import): theirs are inserted together at the end, one statement for
    # all, not flushed one ORM object at a time (8,000 classes: most of this function's time).
    new_rows: list[_NewSettings] = []
    for class_id, sis_class in chosen:
        if sis_class not in imported:
            continue  # a SIS class the roster does not hold: its link keeps its own facts
        imported_id, school, own_term = imported[sis_class]
        row: ClassExportSettings | _NewSettings
        found = settings.get(class_id)
        if found is not None:
            row = found
        else:
            row = _NewSettings(class_id)
            new_rows.append(row)
        terms = read.class_terms.get(sis_class) or tuple(row.sis_term_sourced_ids or ())
        if not terms and own_term is not None:
            terms = (own_term,)
        row.sis_school_sourced_id = school
        row.sis_term_sourced_ids = list(terms)
        periods = periods_by_terms.get(terms)
        if periods is None:
            # Classes share their terms: each set of terms is sorted once, then copied for
            # each row (a row's periods are its own, as an ORM row's JSON may be changed).
            periods = periods_by_terms[terms] = sorted(
                (p for term in terms for p in periods_of.get(term, [])),
                key=lambda p: (p["startDate"], p["title"]),
            )
        row.sis_grading_periods = [dict(period) for period in periods]
        asked = sis_class in read.class_categories
        if asked:
            offered = one_per_title(read.class_categories[sis_class])
        else:
            kept = row.sis_categories or []
            offered = _categories_not_asked(read, kept, categories_of.get(imported_id, []), gone)
        row.sis_categories = [{"sourcedId": s, "title": t} for s, t in offered]
        if read.class_categories_not_served is not None:
            row.sis_not_served = [
                n for n in row.sis_not_served or [] if n.get("what") != "categories"
            ] + [{"what": "categories", "call": read.class_categories_not_served}]
        row.sis_refreshed_at = now
        if asked or read.district_categories is not None or class_id != imported_id:
            offer_categories(session, class_id, offered)
        refreshed += 1
    session.flush()
    if new_rows:
        # Inserted by the bulk writer (one COPY on PostgreSQL), not one ORM object each, nor
        # Core's executemany: serialising the JSON columns row by row was most of its cost.
        names = [f.name for f in fields(_NewSettings)]
        insert_new_rows(
            session,
            ClassExportSettings,
            names,
            [tuple(getattr(row, name) for name in names) for row in new_rows],
        )
    _forget_facts_of_deleted_sis_classes(session, connection_id)
    return refreshed


def _forget_facts_of_deleted_sis_classes(session: Session, connection_id: int) -> None:
    """The linked classes whose SIS class this import found deleted (the classroom's copy of
    it deactivated: `tobedeleted`, or no longer listed by a full import) keep no facts: the
    import does not vouch for them (`facts_confirmed_at`), and the next export reads the SIS
    class again, finds it gone, sends nothing and says to link the class to its current one."""
    deleted = (
        select(ClassLink.class_id)
        .join(Class, Class.sis_sourced_id == ClassLink.sis_class_sourced_id)
        .where(ClassLink.connection_id == connection_id, Class.active.is_(False))
    )
    session.execute(
        update(ClassExportSettings)
        .where(
            ClassExportSettings.class_id.in_(deleted),
            ClassExportSettings.sis_refreshed_at.is_not(None),
        )
        .values(sis_refreshed_at=None)
        .execution_options(synchronize_session=False)
    )


def _categories_not_asked(
    read: ClassFactsFromRoster,
    had: list[dict[str, Any]],
    own: list[tuple[str, str]],
    gone: set[str],
) -> list[tuple[str, str]]:
    """A class's SIS categories when the import did not ask the SIS for the class's own list.

    The same rule as `fetch_sis_class_facts`: the categories that name the class (sislink's
    metadata), then the district's when the SIS lists no class's own; otherwise what the class
    had, less the categories the SIS deleted. Never an empty list for lack of asking.
    """
    kept = [(str(c["sourcedId"]), str(c["title"])) for c in had]
    if not read.categories_known:
        return kept
    base = read.district_categories if read.district_categories is not None else kept
    own_ids = {sourced_id for sourced_id, _ in own}
    return one_per_title(own + [(s, t) for s, t in base if s not in own_ids and s not in gone])


def _deactivated_sis_categories(session: Session, sourced_ids: set[str]) -> set[str]:
    """Of these SIS category ids, those the classroom holds only deactivated (the SIS deleted)."""
    wanted = sorted(sourced_ids)
    active: set[str] = set()
    inactive: set[str] = set()
    for start in range(0, len(wanted), 5000):
        for sourced_id, is_active in session.execute(
            select(Category.sis_sourced_id, Category.active).where(
                Category.sis_sourced_id.in_(wanted[start : start + 5000])
            )
        ):
            if sourced_id is not None:
                (active if is_active else inactive).add(sourced_id)
    return inactive - active


@dataclass
class _NewSettings:
    """The SIS facts of a class that has no settings row yet, inserted with the others at the
    end (the columns not named here take their defaults, as a new ORM row would)."""

    class_id: int
    sis_school_sourced_id: str | None = None
    sis_term_sourced_ids: list[str] = field(default_factory=list)
    sis_grading_periods: list[dict[str, Any]] = field(default_factory=list)
    sis_categories: list[dict[str, Any]] = field(default_factory=list)
    sis_not_served: list[dict[str, Any]] = field(default_factory=list)
    sis_refreshed_at: datetime | None = None


def _sis_categories_of(session: Session, class_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    for start in range(0, len(class_ids), 5000):
        chunk = class_ids[start : start + 5000]
        for class_id, sourced_id, title in session.execute(
            select(Category.class_id, Category.sis_sourced_id, Category.title)
            .where(
                Category.class_id.in_(chunk),
                Category.sis_sourced_id.is_not(None),
                Category.active.is_(True),
            )
            .order_by(Category.id)
        ):
            if sourced_id is not None:
                found.setdefault(class_id, []).append((sourced_id, title))
    return found


def _periods_of_terms(session: Session) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for term, sourced_id, title, start, end in session.execute(
        select(
            Term.sis_sourced_id,
            GradingPeriod.sis_sourced_id,
            GradingPeriod.title,
            GradingPeriod.start_date,
            GradingPeriod.end_date,
        )
        .join(Term, Term.id == GradingPeriod.term_id)
        .where(GradingPeriod.active.is_(True), GradingPeriod.sis_sourced_id.is_not(None))
    ):
        if term is None or sourced_id is None or start is None or end is None:
            continue
        found.setdefault(term, []).append(
            {
                "sourcedId": sourced_id,
                "title": title,
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
            }
        )
    return found


def title_key(title: str) -> str:
    """How category titles are matched: case and runs of spaces ignored."""
    return " ".join(title.split()).casefold()


def one_per_title(categories: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(sourcedId, title) of each category title once: a district's list repeats titles, a
    teacher chooses by title, and the first category of a title is the one sent."""
    seen: dict[str, tuple[str, str]] = {}
    for sourced_id, title in categories:
        seen.setdefault(title_key(title), (sourced_id, title))
    return list(seen.values())


def offer_categories(session: Session, class_id: int, offered: list[tuple[str, str]]) -> None:
    """Make the SIS's categories of a class choosable for its coursework, matched by title.

    A category keeps the SIS's id when no other category holds it: a district-wide category
    (listed by every class) is one SIS id for many classes, so the others match it by title.
    A category whose SIS id the class's SIS categories no longer list forgets it.
    """
    existing = {
        title_key(c.title): c
        for c in session.scalars(select(Category).where(Category.class_id == class_id))
    }
    ids = {sourced_id for sourced_id, _ in offered}
    title_of = {sourced_id: title_key(title) for sourced_id, title in offered}
    for key, held in existing.items():
        if held.sis_sourced_id is not None and title_of.get(held.sis_sourced_id) != key:
            held.sis_sourced_id = None
    session.flush()
    held_elsewhere = set(
        session.scalars(
            select(Category.sis_sourced_id).where(
                Category.sis_sourced_id.in_(ids), Category.class_id != class_id
            )
        )
    )
    for sourced_id, title in offered:
        category = existing.get(title_key(title))
        if category is None:
            category = Category(class_id=class_id, title=title.strip())
            session.add(category)
            existing[title_key(title)] = category
        if sourced_id not in held_elsewhere:
            category.sis_sourced_id = sourced_id
        category.active = True
    session.flush()
