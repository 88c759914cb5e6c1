"""Unchanged classes cost nothing: the inputs digest of a class's last clean mark export.

A mark export is a function of its inputs: the class's coursework, marks, categories, students
and enrolments, its export settings, its link, the connection, the organisation's settings, the
SIS facts kept for the class (school, terms, grading periods, categories) and the ledger. After an export that sent everything it planned and left nothing to act
on (outcome succeeded), `remember_clean_export` keeps a digest of those inputs
(`class_export_state`). The next export computes the digest again from a few aggregate queries
(no mark is read one by one, no plan is made); when it is the same, and the class's SIS facts
are within their age (`class_link.FACTS_STALE_AFTER`, confirmed by each roster import), the
export has nothing to send: it asks the SIS nothing, writes nothing to it, and keeps a short
report saying the class was unchanged.

What changes the digest (so the next export plans and sends as before):
- a mark or coursework written (every write moves its `updated_at`: counted by a sum of the
  timestamps, not only their maximum, so a write with an older clock is seen too), added or
  deleted (counts and sums of ids); a category or a student (name, email, SIS ids) changed; an
  enrolment added, ended or removed;
- a re-link (the link's row, SIS class and time), a reconnect (another connection), the class's
  export settings (missing marks, draft marks), the organisation's title limit and time zone
  (the days of due dates and scoreDates), the SIS's default category, the grading periods'
  SIS ids;
- the SIS facts changed (read again on demand, by a roster import, or once older than their
  age: an export of a class whose facts are older plans in full, reading them and the SIS
  class's students again), and any change to the ledger: every writer of the ledger drops the
  state (`forget_state`), so a lost or repaired ledger is planned again; a refresh on demand
  drops it too.

What it cannot see is what only the SIS knows: an object the SIS lost or someone changed there.
Those are found when the facts are refreshed: `refresh_export_facts` reads the class's facts,
checks the ledger against the lineItems and results the SIS has (an entry the SIS lost is sent
again), and drops the state.

`PLAN_VERSION` is part of the digest: change it when what the plan sends for the same inputs
changes, so that every class is planned again once after an upgrade.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, delete, func, select
from sqlalchemy.orm import Session

from sislink.classroom import Actor
from sislink.classroom.models import (
    Category,
    Class,
    ClassExportSettings,
    ClassExportState,
    ClassLink,
    ConnectionStatus,
    Coursework,
    Enrolment,
    EnrolmentRole,
    GradingPeriod,
    JobLock,
    Mark,
    Person,
    SisConnection,
    utc_now,
)
from sislink.classroom.services import connections
from sislink.classroom.services.jobs import lock_key_for
from sislink.classroom.services.organisation import identity_namespace, organisation
from sislink.classroom.services.time_zone import school_time_zone
from sislink.partners import profile as partner_profile
from sislink.sync import preflight
from sislink.sync.class_facts import facts_confirmed_at
from sislink.sync.class_link import FACTS_STALE_AFTER
from sislink.sync.identity import class_identity

# Part of every digest: change it when the plan sends something else for the same inputs.
PLAN_VERSION = "2026-12-06.1"
# Classes whose digests are computed in one set of queries.
CHUNK = 500


def title_limit(settings: dict[str, object]) -> int:
    """How many characters of a lineItem title the SIS keeps (the organisation's setting)."""
    value = settings.get(preflight.TITLE_LIMIT_SETTING)
    if isinstance(value, int) and not isinstance(value, bool) and value > 1:
        return value
    return preflight.DEFAULT_TITLE_LIMIT


def _micros(session: Session, column: Any) -> ColumnElement[int]:
    """A timestamp column as whole microseconds, on SQLite and PostgreSQL, modulo 10**12 (about
    11.6 days): summed over a class's marks it stays far inside 64 bits (9 million marks), and
    any write still moves the sum (the microseconds of a rewrite change with it)."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored as text, "2026-12-05 04:17:22.168719": whole seconds, then the microseconds
        # (julianday() would round them to about a millisecond).
        micros = cast(func.strftime("%s", column), BigInteger) * 1000000 + cast(
            func.substr(column, 21, 6), BigInteger
        )
    else:
        micros = cast(func.extract("epoch", column) * 1000000, BigInteger)
    return micros % 1_000_000_000_000


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


@dataclass(frozen=True)
class Candidate:
    """A class that may be exported without asking the SIS, with its digest now."""

    class_id: int
    scope: str
    digest: str
    facts_fresh: bool


def current_digests(session: Session, class_ids: Sequence[int]) -> dict[int, Candidate]:
    """The inputs digest of each class linked through the current connection (others: none).

    Call it before reading what the export is made of: a write that lands after it changes
    the digest, so the next export plans again."""
    connection = connections.current_connection(session)
    if connection is None or not class_ids:
        return {}
    org = organisation(session)
    chosen = partner_profile(connection.partner)
    periods = hashlib.sha256(
        repr(
            session.execute(
                select(GradingPeriod.id, GradingPeriod.sis_sourced_id).order_by(GradingPeriod.id)
            ).all()
        ).encode()
    ).hexdigest()
    common = repr(
        (
            PLAN_VERSION,
            connection.id,
            connection.partner,
            connection.version,
            connection.district_sourced_id,
            str(identity_namespace(session)),
            title_limit(org.settings or {}),
            chosen.default_category,
            periods,
            school_time_zone(session).name,
        )
    )
    confirmed = facts_confirmed_at(session, connection.id)
    now = utc_now()
    found: dict[int, Candidate] = {}
    for chunk in _chunks(sorted(set(class_ids))):
        found.update(_digests_of(session, chunk, connection, common, confirmed, now))
    return found


def _digests_of(
    session: Session,
    chunk: list[int],
    connection: SisConnection,
    common: str,
    confirmed: datetime | None,
    now: datetime,
) -> dict[int, Candidate]:
    rows = session.execute(
        select(
            ClassLink.class_id,
            ClassLink.id,
            ClassLink.connection_id,
            ClassLink.sis_class_sourced_id,
            ClassLink.linked_at,
        ).where(ClassLink.class_id.in_(chunk))
    ).all()
    # A link made through an earlier connection to the same SIS counts (as in pre-flight); a
    # link made with another SIS does not (pre-flight refuses it).
    through = {connection.id: connection} | {
        c.id: c
        for c in session.scalars(
            select(SisConnection).where(
                SisConnection.id.in_({r[2] for r in rows} - {connection.id})
            )
        )
    }
    links = {
        class_id: (link_id, connection_id, sis_class, linked_at)
        for class_id, link_id, connection_id, sis_class, linked_at in rows
        if connection_id in through
        and not connections.is_another_sis(through[connection_id], connection)
    }
    if not links:
        return {}
    ids = sorted(links)
    parts: dict[int, list[Any]] = {i: [common, links[i]] for i in ids}
    for class_row in session.execute(
        select(Class.id, Class.title, Class.active, Class.updated_at).where(Class.id.in_(ids))
    ):
        parts[class_row[0]].append(tuple(class_row))
    fresh: dict[int, bool] = {}
    for settings_row in session.execute(
        select(
            ClassExportSettings.class_id,
            ClassExportSettings.missing_as,
            ClassExportSettings.export_drafts,
            ClassExportSettings.sis_school_sourced_id,
            ClassExportSettings.sis_term_sourced_ids,
            ClassExportSettings.sis_grading_periods,
            ClassExportSettings.sis_categories,
            ClassExportSettings.sis_not_served,
            ClassExportSettings.sis_refreshed_at,
        ).where(ClassExportSettings.class_id.in_(ids))
    ):
        # What the facts say counts, not when they were read: a full roster import reads every
        # class's facts again, and a class whose facts it found the same stays unchanged.
        parts[settings_row[0]].append(("settings", *settings_row[1:-1]))
        refreshed = settings_row[-1]
        if refreshed is not None:
            read_at = max(refreshed, confirmed) if confirmed is not None else refreshed
            fresh[settings_row[0]] = now - read_at <= FACTS_STALE_AFTER
    for category_row in session.execute(
        select(
            Category.class_id, Category.id, Category.title, Category.sis_sourced_id, Category.active
        )
        .where(Category.class_id.in_(ids))
        .order_by(Category.class_id, Category.id)
    ):
        parts[category_row[0]].append(("category", *category_row[1:]))
    for coursework_row in session.execute(
        select(
            Coursework.class_id,
            func.count(Coursework.id),
            func.sum(Coursework.id),
            func.max(Coursework.updated_at),
            func.sum(_micros(session, Coursework.updated_at)),
        )
        .where(Coursework.class_id.in_(ids))
        .group_by(Coursework.class_id)
    ):
        parts[coursework_row[0]].append(("coursework", *coursework_row[1:]))
    for marks_row in session.execute(
        select(
            Coursework.class_id,
            func.count(Mark.id),
            func.sum(Mark.id),
            func.sum(Mark.student_id),
            func.max(Mark.updated_at),
            func.sum(_micros(session, Mark.updated_at)),
            func.sum(_micros(session, Person.updated_at)),
        )
        .join(Coursework, Coursework.id == Mark.coursework_id)
        .join(Person, Person.id == Mark.student_id)
        .where(Coursework.class_id.in_(ids))
        .group_by(Coursework.class_id)
    ):
        parts[marks_row[0]].append(("marks", *marks_row[1:]))
    for enrolment_row in session.execute(
        select(
            Enrolment.class_id,
            func.count(Enrolment.id),
            func.sum(Enrolment.person_id),
            func.sum(Enrolment.id),
            func.count(Enrolment.id).filter(Enrolment.active.is_(True)),
            func.count(Enrolment.id).filter(Enrolment.role == EnrolmentRole.STUDENT),
        )
        .where(Enrolment.class_id.in_(ids))
        .group_by(Enrolment.class_id)
    ):
        parts[enrolment_row[0]].append(("enrolments", *enrolment_row[1:]))
    found: dict[int, Candidate] = {}
    for class_id in ids:
        scope = class_identity(connection.partner, links[class_id][2])
        digest = hashlib.sha256(repr((scope, parts[class_id])).encode()).hexdigest()
        found[class_id] = Candidate(class_id, scope, digest, fresh.get(class_id, False))
    return found


@dataclass(frozen=True)
class Unchanged:
    """A class whose export has nothing to send: its digest is the last clean export's."""

    class_id: int
    title: str
    sis_class_id: str
    counts: dict[str, dict[str, int]]
    since: datetime


def unchanged_classes(
    session: Session, actor: Actor, class_ids: Sequence[int], *, job_id: int | None = None
) -> dict[int, Unchanged]:
    """Of these classes, those the actor may export now whose export has nothing to send.

    Only the plain case is taken: the current connection authorised (and, for a teacher,
    exports switched on), a class the actor teaches linked through that connection, its SIS
    facts within their age, its digest the last clean export's, and no other job holding it.
    Any other class is exported as before (which refuses, or plans, in its own words)."""
    connection = connections.current_connection(session)
    if connection is None or connection.status != ConnectionStatus.AUTHORISED:
        return {}
    if not actor.is_admin and (actor.person_id is None or not connection.teacher_export_enabled):
        return {}
    wanted = sorted(set(class_ids))
    if not actor.is_admin:
        assert actor.person_id is not None
        taught = set(
            session.scalars(
                select(Class.id).where(
                    Class.id.in_(wanted), Class.primary_teacher_id == actor.person_id
                )
            )
        ) | set(
            session.scalars(
                select(Enrolment.class_id).where(
                    Enrolment.class_id.in_(wanted),
                    Enrolment.person_id == actor.person_id,
                    Enrolment.role == EnrolmentRole.TEACHER,
                    Enrolment.active.is_(True),
                )
            )
        )
        wanted = [c for c in wanted if c in taught]
    states: dict[int, ClassExportState] = {}
    for chunk in _chunks(wanted):
        states.update(
            (s.class_id, s)
            for s in session.scalars(
                select(ClassExportState).where(ClassExportState.class_id.in_(chunk))
            )
        )
    if job_id is not None:
        keys = {lock_key_for(class_id=c): c for c in states}
        for key, holder in session.execute(
            select(JobLock.lock_key, JobLock.job_id).where(JobLock.lock_key.in_(list(keys)))
        ):
            if holder != job_id:
                states.pop(keys[key], None)
    if not states:
        return {}
    digests = current_digests(session, sorted(states))
    named = {
        class_id: (title, sis_class)
        for class_id, title, sis_class in session.execute(
            select(Class.id, Class.title, ClassLink.sis_class_sourced_id)
            .join(ClassLink, ClassLink.class_id == Class.id)
            .where(Class.id.in_(list(digests)))
        )
    }
    found: dict[int, Unchanged] = {}
    for class_id, state in states.items():
        now = digests.get(class_id)
        if (
            now is None
            or class_id not in named
            or not now.facts_fresh
            or now.digest != state.inputs_digest
            or now.scope != state.sis_identity
        ):
            continue
        title, sis_class = named[class_id]
        found[class_id] = Unchanged(
            class_id, title, sis_class, dict(state.counts), state.exported_at
        )
    return found


def unchanged_counts(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """A clean export's counts as an unchanged export reports them: what was exported is
    unchanged now, deletions are gone, skips by the teacher's choice stay skipped."""
    carried: dict[str, dict[str, int]] = {}
    for kind, outcomes in counts.items():
        kept = outcomes.get("exported", 0) + outcomes.get("unchanged", 0)
        row: dict[str, int] = {}
        if kept:
            row["unchanged"] = kept
        if outcomes.get("skipped"):
            row["skipped"] = outcomes["skipped"]
        carried[kind] = row
    return carried


def remember_clean_export(
    session: Session, class_id: int, scope: str, digest: str, counts: dict[str, dict[str, int]]
) -> None:
    """Keep the digest of an export that sent everything it planned (outcome succeeded)."""
    state = session.get(ClassExportState, class_id)
    if state is None:
        state = ClassExportState(class_id=class_id)
        session.add(state)
    state.sis_identity = scope
    state.inputs_digest = digest
    state.counts = unchanged_counts(counts)
    state.exported_at = utc_now()


def forget_state(
    session: Session, *, class_id: int | None = None, scope: str | None = None
) -> None:
    """Drop the digest of a class (or of every class written under a SIS identity): its next
    export plans again. Every change to the ledger calls this."""
    if class_id is not None:
        session.execute(delete(ClassExportState).where(ClassExportState.class_id == class_id))
    if scope is not None:
        session.execute(delete(ClassExportState).where(ClassExportState.sis_identity == scope))
