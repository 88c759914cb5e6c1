"""Roster import: stream the SIS's roster page by page into the classroom, fully or by changes.

`import_roster(classroom, client, connection_id=...)` reads schools, academic sessions (terms
and grading periods), courses, classes, users (teachers and students), enrolments and, when
the connection may, grading categories; converts each page into classroom rows and upserts
them in batches (`sislink.classroom.bulk`), each batch its own transaction, on one database
thread while the next page is fetched. Memory stays bounded by the batch size, plus the
sourcedIds seen (a full import must know them to find what the SIS no longer sends).

Creates and updates are written as they come (they never remove anything). Deactivations
(what a full import no longer sees, what a delta marks `tobedeleted`) are decided at the
end: when they exceed `shrink_threshold` of students, teachers or enrolments, nothing is
deactivated and the report comes back `on_hold` with the complete list, for an administrator
to approve (`roster_holds.approve_hold`) or discard. Otherwise they are applied together with
the delta watermark, in one transaction: a failed or cancelled import leaves the watermark
where it was, so the next run repeats what is needed (every write is idempotent).

A dry run does everything in one transaction that is rolled back: the counts are exact and
nothing stays.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sislink.classroom import Classroom
from sislink.classroom.bulk import (
    ClassRow,
    CourseRow,
    EnrolmentRow,
    GradingPeriodRow,
    ImportedModel,
    PersonRow,
    SchoolRow,
    SourcedIdCache,
    TermRow,
    UpsertCounts,
    deactivate,
    find_missing,
    upsert_classes,
    upsert_courses,
    upsert_enrolments,
    upsert_grading_periods,
    upsert_people,
    upsert_schools,
    upsert_terms,
)
from sislink.classroom.bulk_categories import (
    CategoryRow,
    deactivate_categories,
    find_missing_categories,
    upsert_categories,
)
from sislink.classroom.db import WRITE_OPTIONS
from sislink.classroom.models import (
    Category,
    Class,
    ClassLink,
    Course,
    Enrolment,
    EnrolmentRole,
    GradingPeriod,
    Person,
    Role,
    RosterSyncState,
    School,
    SisConnection,
    Term,
)
from sislink.classroom.services import connections
from sislink.oneroster import models as ors
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.consumer.exceptions import (
    AuthenticationFailed,
    MalformedResponse,
    OneRosterError,
    PagingError,
    PermissionDenied,
)
from sislink.oneroster.filters import where
from sislink.oneroster.models import format_datetime
from sislink.sync.errors import SyncError
from sislink.sync.roster_report import ENTITIES, GUARDED, ClassLeftUnlinked, RosterReport

T = TypeVar("T")

DEFAULT_BATCH_SIZE = 5000
DEFAULT_SHRINK_THRESHOLD = 0.10
# A delta asks for changes since the last import's start minus this: clocks differ, and a
# record saved while the last import ran may carry a time just before it started.
SAFETY_MARGIN = timedelta(minutes=10)
TERM_TYPES = frozenset({"term", "semester"})
CATEGORY_CLASS_KEY = "classSourcedId"

MODELS: dict[str, ImportedModel] = {
    "schools": School,
    "terms": Term,
    "grading_periods": GradingPeriod,
    "courses": Course,
    "classes": Class,
    "enrolments": Enrolment,
}

Progress = Callable[[str, int, int | None], None]
"""Called after each batch with (entity, records read so far, total if the SIS said)."""


class RosterImportFailed(SyncError):
    """The import stopped: the SIS sent something that is not OneRoster, or could not be read."""


class RosterImportCancelled(SyncError):
    """Someone cancelled the import; what was written so far stays (it is all idempotent)."""

    def __init__(self, report: RosterReport) -> None:
        super().__init__("The roster import was cancelled; run it again to finish.")
        self.report = report


@dataclass
class _State:
    """What one import remembers while it runs."""

    report: RosterReport
    full: bool
    cache: SourcedIdCache = field(default_factory=SourcedIdCache)
    seen: dict[str, set[str]] = field(default_factory=lambda: {name: set() for name in ENTITIES})
    deleted: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in ENTITIES})
    # An entity whose stream did not finish (categories refused) must not be deactivated.
    incomplete: set[str] = field(default_factory=set)


async def import_roster(
    classroom: Classroom,
    client: OneRosterClient,
    *,
    connection_id: int,
    full: bool = False,
    dry_run: bool = False,
    shrink_threshold: float = DEFAULT_SHRINK_THRESHOLD,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
) -> RosterReport:
    """Import the roster from `client`'s SIS; a delta when a previous import finished, unless `full`.

    Returns the report (status applied, dry_run or on_hold). Raises RosterImportFailed when
    the SIS sends a page that is not valid OneRoster (the message names the endpoint), and
    RosterImportCancelled when `should_stop()` turns true between batches.
    """
    started = now or datetime.now(UTC)
    watermark = None if full else _watermark(classroom, connection_id)
    report = RosterReport(mode="full" if watermark is None else "delta", dry_run=dry_run)
    report.started_at = format_datetime(started)
    if watermark is not None:
        report.since = format_datetime(watermark - SAFETY_MARGIN)
    state = _State(report, full=watermark is None)
    calls_before = client.calls_made
    with _Database(classroom, dry_run) as database:
        reader = _Reader(client, state, report.since, batch_size, progress, should_stop)
        await _import_everything(reader, database, state)
        deactivations = await database.run(lambda s: _deactivations(s, state))
        report.requests = client.calls_made - calls_before
        for entity, ids in deactivations.items():
            for sourced_id in ids[:5]:
                report.example(entity, "deactivate", sourced_id)
        hold = _shrink_guard(deactivations, await database.run(_active_counts), shrink_threshold)
        if dry_run:
            for entity, ids in deactivations.items():
                report.counts[entity].deactivated = len(ids)
            report.status = "dry_run"
        elif hold is not None:
            report.status = "on_hold"
            report.hold_reason = hold
            report.deactivations = deactivations
        else:

            def finish(session: Session) -> None:
                _apply_deactivations(session, report, deactivations)
                advance_watermark(session, connection_id, started, full=state.full)

            await database.run(finish)
            report.status = "applied"
        if not dry_run:

            def link_and_record(session: Session) -> None:
                report.classes_linked = connections.link_imported_classes(session, connection_id)
                _report_classes_left_unlinked(session, connection_id, report)
                connections.record_activity(session, connection_id, imported=True)

            await database.run(link_and_record)
        await database.run(lambda s: _state_warnings(s, report))
    report.finished_at = format_datetime(datetime.now(UTC))
    return report


def _report_classes_left_unlinked(
    session: Session, connection_id: int, report: RosterReport
) -> None:
    """Tell, class by class, why an imported class is still unlinked after the import linked
    the others: someone unlinked it by hand (imports leave that be), or another class is linked
    to its SIS class already. Without this, a teacher sees only that it is not linked."""
    connection = session.get(SisConnection, connection_id)
    if connection is None:
        return
    unlinked = session.scalars(
        select(Class)
        .outerjoin(ClassLink, ClassLink.class_id == Class.id)
        .where(
            Class.sis_sourced_id.is_not(None),
            Class.active.is_(True),
            ClassLink.id.is_(None),
        )
        .order_by(Class.title, Class.id)
    )
    for klass in unlinked:
        sis_class_id = klass.sis_sourced_id or ""
        holder = connections.sis_class_holder(session, connection, sis_class_id, klass.id)
        if klass.sis_unlinked_at is not None:
            reason, unlinked_at = "unlinked_by_hand", klass.sis_unlinked_at.isoformat()
        elif holder is not None:
            reason, unlinked_at = "sis_class_taken", None
        else:
            continue  # unlinked at this moment by someone else; the next import will say
        report.left_unlinked(
            ClassLeftUnlinked(
                class_id=klass.id,
                class_title=klass.title,
                sis_class_id=sis_class_id,
                reason=reason,
                unlinked_at=unlinked_at,
                holder_id=holder.id if holder is not None else None,
                holder_title=holder.title if holder is not None else None,
            )
        )


# --- the database side: one thread, a transaction per batch (or one rolled back) ----------


class _Database:
    """Runs database work on one thread so that the SIS is read while a batch is written."""

    def __init__(self, classroom: Classroom, dry_run: bool) -> None:
        self.classroom = classroom
        self.dry_run = dry_run
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roster-db")
        self._dry_session: Session | None = None

    def __enter__(self) -> _Database:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dry_session is not None:
            self._executor.submit(self._close_dry).result()
        self._executor.shutdown(wait=True)

    def _close_dry(self) -> None:
        assert self._dry_session is not None
        self._dry_session.rollback()  # a dry run leaves nothing behind
        self._dry_session.close()

    async def run(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    def _call(self, work: Callable[[Session], T]) -> T:
        if self.dry_run:
            if self._dry_session is None:
                self._dry_session = self.classroom.session()
                self._dry_session.connection(execution_options=WRITE_OPTIONS)
            return work(self._dry_session)
        with self.classroom.transaction() as session:
            return work(session)


# --- reading the SIS ----------------------------------------------------------------------


class _Reader:
    """Streams one collection in batches of models; bad records are skipped with a warning."""

    def __init__(
        self,
        client: OneRosterClient,
        state: _State,
        since: str | None,
        batch_size: int,
        progress: Progress | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.client = client
        self.state = state
        self.since = since
        self.batch_size = batch_size
        self.progress = progress
        self.should_stop = should_stop

    async def batches(self, endpoint: str, entity: str, label: str) -> AsyncIterator[list[Any]]:
        flt = where("dateLastModified", ">", self.since) if self.since else None
        total: int | None = None
        with _stopping_on_bad_pages(endpoint):
            if self.progress is not None:
                total = (await self.client.page(endpoint, limit=1, filter=flt)).total_count
            batch: list[Any] = []
            read = 0
            async for record in self.client.iter_records(endpoint, filter=flt):
                read += 1
                try:
                    batch.append(self.client.spec.from_wire(entity, record))
                except ValidationError as exc:
                    self.state.report.counts[label].skipped += 1
                    self.state.report.warn(
                        "invalid_records",
                        label,
                        f"{record.get('sourcedId')!r} from {endpoint}: {_first_problem(exc)}",
                    )
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
                    self._after_batch(label, read, total)
            if batch:
                yield batch
            self._after_batch(label, read, total)

    def _after_batch(self, label: str, read: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(label, read, total)
        if self.should_stop is not None and self.should_stop():
            raise RosterImportCancelled(self.state.report)


@contextlib.contextmanager
def _stopping_on_bad_pages(endpoint: str) -> Iterator[None]:
    try:
        yield
    except (MalformedResponse, PagingError) as exc:
        raise RosterImportFailed(
            f"The roster import stopped: the SIS's {endpoint} endpoint sent a page that is not "
            f"valid OneRoster ({exc}). Nothing past that page was imported; ask the SIS vendor "
            "to fix it, then import again."
        ) from None


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def _write_batch(
    write: Callable[[Session, list[Any]], None], batch: list[Any], session: Session
) -> None:
    write(session, batch)


async def _pipelined(
    batches: AsyncIterator[list[Any]],
    database: _Database,
    write: Callable[[Session, list[Any]], None],
) -> None:
    """Write each batch on the database thread while the next one is being read."""
    pending: asyncio.Future[None] | None = None
    try:
        async for batch in batches:
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(database.run(partial(_write_batch, write, batch)))
    finally:
        if pending is not None:
            await pending


# --- each entity ----------------------------------------------------------------------------


async def _import_everything(reader: _Reader, database: _Database, state: _State) -> None:
    await _pipelined(
        reader.batches("schools", "org", "schools"), database, lambda s, b: _schools(s, b, state)
    )
    sessions: list[ors.AcademicSession] = []
    async for batch in reader.batches("academic_sessions", "academicSession", "terms"):
        sessions.extend(batch)  # a district has tens of sessions: they fit in memory
    await database.run(lambda s: _sessions(s, sessions, state))
    await _pipelined(
        reader.batches("courses", "course", "courses"), database, lambda s, b: _courses(s, b, state)
    )
    await _pipelined(
        reader.batches("classes", "class", "classes"), database, lambda s, b: _classes(s, b, state)
    )
    await _pipelined(
        reader.batches("users", "user", "students"), database, lambda s, b: _users(s, b, state)
    )
    await _pipelined(
        reader.batches("enrollments", "enrollment", "enrolments"),
        database,
        lambda s, b: _enrolments(s, b, state),
    )
    try:
        await _pipelined(
            reader.batches("categories", "category", "categories"),
            database,
            lambda s, b: _categories(s, b, state),
        )
    except (PermissionDenied, AuthenticationFailed) as exc:
        state.incomplete.add("categories")
        state.report.warn("categories_not_permitted", "categories", str(exc)[:300])


def _split_deleted(state: _State, entity: str, records: list[Any]) -> list[Any]:
    """The records still active; `tobedeleted` ones are noted for deactivation at the end."""
    active = []
    for record in records:
        if record.status == "tobedeleted":
            state.deleted[entity].append(record.sourced_id)
        else:
            active.append(record)
    return active


def _record(
    session: Session,
    state: _State,
    entity: str,
    model: Any,
    rows: list[Any],
    upsert: Callable[[], UpsertCounts],
) -> None:
    """Upsert rows of one entity, counting and noting examples and skipped rows."""
    report = state.report
    ids = [row.sourced_id for row in rows]
    if report.wants_examples(entity, "create") and ids:
        existing = state.cache.ids(session, model, ids)
        for sourced_id in ids:
            if sourced_id not in existing:
                report.example(entity, "create", sourced_id)
    before = _snapshot(session, model, ids) if _wants_update_examples(report, entity) else None
    counts = upsert()
    if before is not None and counts.updated:
        after = _snapshot(session, model, ids)
        for sourced_id, values in after.items():
            if sourced_id in before and before[sourced_id] != values:
                report.example(entity, "update", sourced_id)
    tally = report.counts[entity]
    tally.created += counts.created
    tally.updated += counts.updated
    tally.unchanged += counts.unchanged
    tally.skipped += len(counts.skipped)
    for skipped in counts.skipped:
        report.warn(
            _warning_code(entity, skipped.reason),
            entity,
            f"{skipped.sourced_id!r}: {skipped.reason}",
        )
    state.seen[entity].update(ids)


def _wants_update_examples(report: RosterReport, entity: str) -> bool:
    # Examples of updates cost two extra reads per batch: only dry runs show them.
    return report.dry_run and report.wants_examples(entity, "update")


def _snapshot(session: Session, model: Any, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    table = model.__table__
    columns = [c for c in table.columns if c.name not in ("updated_at", "created_at")]
    found: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = session.execute(select(*columns).where(table.c.sis_sourced_id.in_(chunk)))
        for row in rows:
            found[row.sis_sourced_id] = tuple(row)
    return found


def _warning_code(entity: str, reason: str) -> str:
    if reason.startswith("the email"):
        return "duplicate_emails"
    if entity == "enrolments" and reason.startswith("its class"):
        return "enrolments_unknown_class"
    if entity == "enrolments" and reason.startswith("its person"):
        return "enrolments_unknown_user"
    if reason.startswith("the same person is already enrolled"):
        return "duplicate_enrolments"
    return "skipped"


def _schools(session: Session, batch: list[ors.Org], state: _State) -> None:
    rows = [
        SchoolRow(org.sourced_id, org.name, org.identifier or None)
        for org in _split_deleted(state, "schools", batch)
    ]
    _record(session, state, "schools", School, rows, lambda: upsert_schools(session, rows))


def _sessions(session: Session, sessions: list[ors.AcademicSession], state: _State) -> None:
    terms = [s for s in sessions if s.type in TERM_TYPES]
    periods = [s for s in sessions if s.type == "gradingPeriod"]
    term_rows = [
        TermRow(t.sourced_id, t.title, t.start_date, t.end_date, t.school_year)
        for t in _split_deleted(state, "terms", terms)
    ]
    _record(session, state, "terms", Term, term_rows, lambda: upsert_terms(session, term_rows))
    active_periods = _split_deleted(state, "grading_periods", periods)
    gp_rows = [
        GradingPeriodRow(
            p.sourced_id,
            p.title,
            p.parent.sourced_id if p.parent else None,
            p.start_date,
            p.end_date,
        )
        for p in active_periods
    ]
    _record(
        session,
        state,
        "grading_periods",
        GradingPeriod,
        gp_rows,
        lambda: upsert_grading_periods(session, gp_rows, state.cache),
    )
    _warn_periods_outside_terms(session, active_periods, state)


def _warn_periods_outside_terms(
    session: Session, periods: list[ors.AcademicSession], state: _State
) -> None:
    parents = {p.parent.sourced_id for p in periods if p.parent}
    if not parents:
        return
    bounds: dict[str, tuple[date | None, date | None]] = {
        sid: (start, end)
        for sid, start, end in session.execute(
            select(Term.sis_sourced_id, Term.start_date, Term.end_date).where(
                Term.sis_sourced_id.in_(parents)
            )
        )
        if sid is not None
    }
    for period in periods:
        if period.parent is None or period.parent.sourced_id not in bounds:
            continue
        start, end = bounds[period.parent.sourced_id]
        if (start and period.start_date < start) or (end and period.end_date > end):
            state.report.warn(
                "grading_periods_outside_term",
                "grading_periods",
                f"{period.sourced_id!r} ({period.start_date} to {period.end_date}) in term "
                f"{period.parent.sourced_id!r} ({start} to {end})",
            )


def _courses(session: Session, batch: list[ors.Course], state: _State) -> None:
    rows = [
        CourseRow(c.sourced_id, c.title, c.course_code or None, _school_of(session, c, state))
        for c in _split_deleted(state, "courses", batch)
    ]
    _record(
        session, state, "courses", Course, rows, lambda: upsert_courses(session, rows, state.cache)
    )


def _school_of(session: Session, course: ors.Course, state: _State) -> str | None:
    # A course may belong to the district rather than a school: then it has no school here.
    if course.org is None:
        return None
    known = state.cache.ids(session, School, [course.org.sourced_id])
    return course.org.sourced_id if known else None


def _classes(session: Session, batch: list[ors.Class], state: _State) -> None:
    active = _split_deleted(state, "classes", batch)
    term_refs = {ref.sourced_id for cls in active for ref in cls.terms}
    known_terms = state.cache.ids(session, Term, term_refs)
    rows = []
    for cls in active:
        # A class may name the school year and its terms: the first imported term is its term.
        terms = [ref.sourced_id for ref in cls.terms]
        term = next((t for t in terms if t in known_terms), terms[0] if terms else None)
        rows.append(
            ClassRow(
                cls.sourced_id,
                cls.title,
                cls.class_code,
                cls.school.sourced_id,
                term,
                cls.course.sourced_id,
            )
        )
    _record(
        session, state, "classes", Class, rows, lambda: upsert_classes(session, rows, state.cache)
    )


def _users(session: Session, batch: list[ors.User], state: _State) -> None:
    teachers: list[PersonRow] = []
    students: list[PersonRow] = []
    for user in batch:
        is_teacher = user.has_role("teacher")
        is_student = user.has_role("student")
        if not (is_teacher or is_student):
            continue  # parents, guardians, administrators: not imported
        label = "teachers" if is_teacher else "students"
        if user.status == "tobedeleted":
            state.deleted[label].append(user.sourced_id)
            continue
        roles = frozenset(
            role for role, held in ((Role.TEACHER, is_teacher), (Role.STUDENT, is_student)) if held
        )
        given = user.preferred_first_name or user.given_name
        row = PersonRow(
            user.sourced_id,
            f"{given} {user.family_name}".strip() or user.sourced_id,
            user.email,
            user.given_name,
            user.family_name,
            user.identifier,
            roles,
        )
        (teachers if is_teacher else students).append(row)
        if label == "students" and not (user.email or "").strip():
            state.report.warn("students_without_email", "students", repr(user.sourced_id))
    for label, rows in (("teachers", teachers), ("students", students)):
        if rows:
            _record(session, state, label, Person, rows, partial(upsert_people, session, rows))


_ENROLMENT_ROLES = {"teacher": EnrolmentRole.TEACHER, "student": EnrolmentRole.STUDENT}


def _enrolments(session: Session, batch: list[ors.Enrollment], state: _State) -> None:
    rows = []
    for enrolment in _split_deleted(state, "enrolments", batch):
        role = _ENROLMENT_ROLES.get(enrolment.role)
        if role is None:
            state.report.counts["enrolments"].skipped += 1
            state.report.warn(
                "enrolments_other_role",
                "enrolments",
                f"{enrolment.sourced_id!r} (role {enrolment.role})",
            )
            continue
        rows.append(
            EnrolmentRow(
                enrolment.sourced_id,
                enrolment.class_.sourced_id,
                enrolment.user.sourced_id,
                role,
                bool(enrolment.primary),
            )
        )
    _record(
        session,
        state,
        "enrolments",
        Enrolment,
        rows,
        lambda: upsert_enrolments(session, rows, state.cache),
    )


def _categories(session: Session, batch: list[ors.Category], state: _State) -> None:
    rows = []
    for category in _split_deleted(state, "categories", batch):
        class_id = (category.metadata or {}).get(CATEGORY_CLASS_KEY)
        if not class_id:
            state.report.counts["categories"].skipped += 1
            state.report.warn("categories_without_class", "categories", repr(category.sourced_id))
            continue
        rows.append(
            CategoryRow(category.sourced_id, str(class_id), category.title, category.weight)
        )
    _record(
        session,
        state,
        "categories",
        Category,
        rows,
        lambda: upsert_categories(session, rows, state.cache),
    )


# --- deactivations, the shrink guard, the watermark ----------------------------------------


def _deactivations(session: Session, state: _State) -> dict[str, list[str]]:
    """SIS ids of active rows to deactivate, per entity (only those active now)."""
    found: dict[str, list[str]] = {}
    for entity, model in MODELS.items():
        if state.full:
            found[entity] = find_missing(session, model, state.seen[entity])
        else:
            found[entity] = _still_active(session, model, state.deleted[entity])
    if "categories" not in state.incomplete:
        if state.full:
            found["categories"] = find_missing_categories(session, state.seen["categories"])
        else:
            found["categories"] = _still_active(session, Category, state.deleted["categories"])
    if state.full:
        seen_people = state.seen["teachers"] | state.seen["students"]
        gone = find_missing(session, Person, seen_people)
    else:
        gone = state.deleted["teachers"] + state.deleted["students"]
    found.update(_people_by_role(session, gone, state.report))
    return {entity: ids for entity, ids in found.items() if ids}


def _still_active(session: Session, model: Any, sourced_ids: list[str]) -> list[str]:
    table = model.__table__
    active: list[str] = []
    for start in range(0, len(sourced_ids), 1000):
        chunk = sourced_ids[start : start + 1000]
        statement = select(table.c.sis_sourced_id).where(
            table.c.sis_sourced_id.in_(chunk), table.c.active.is_(True)
        )
        active.extend(session.execute(statement).scalars())
    return active


def _people_by_role(
    session: Session, sourced_ids: list[str], report: RosterReport
) -> dict[str, list[str]]:
    teachers: list[str] = []
    students: list[str] = []
    for start in range(0, len(sourced_ids), 1000):
        chunk = sourced_ids[start : start + 1000]
        statement = select(
            Person.sis_sourced_id, Person.is_teacher, Person.is_student, Person.is_admin
        ).where(Person.sis_sourced_id.in_(chunk), Person.active.is_(True))
        for sid, is_teacher, _is_student, is_admin in session.execute(statement):
            if sid is None:
                continue
            if is_admin:
                report.warn("admins_not_deactivated", "teachers", repr(sid))
            elif is_teacher:
                teachers.append(sid)
            else:
                students.append(sid)
    return {"teachers": teachers, "students": students}


def _active_counts(session: Session) -> dict[str, int]:
    imported = Person.sis_sourced_id.is_not(None)
    people = select(func.count()).select_from(Person).where(imported, Person.active.is_(True))
    return {
        "teachers": session.scalar(people.where(Person.is_teacher.is_(True))) or 0,
        "students": session.scalar(
            people.where(Person.is_student.is_(True), Person.is_teacher.is_(False))
        )
        or 0,
        "enrolments": session.scalar(
            select(func.count())
            .select_from(Enrolment)
            .where(Enrolment.sis_sourced_id.is_not(None), Enrolment.active.is_(True))
        )
        or 0,
    }


def _shrink_guard(
    deactivations: dict[str, list[str]], active: dict[str, int], threshold: float
) -> str | None:
    """Why the import must wait for an administrator, or None when it may be applied."""
    too_many = []
    for entity in GUARDED:
        going, now = len(deactivations.get(entity, ())), active.get(entity, 0)
        if now and going / now > threshold:
            too_many.append(f"{going} of {now} {entity} ({going / now:.0%})")
    if not too_many:
        return None
    return (
        f"This import would deactivate {', '.join(too_many)}, more than the "
        f"{threshold:.0%} allowed at once. An administrator must approve it "
        "(sislink roster approve JOB) or discard it (sislink roster discard JOB)."
    )


def _apply_deactivations(
    session: Session, report: RosterReport, deactivations: dict[str, list[str]]
) -> None:
    for entity, ids in deactivations.items():
        if entity == "categories":
            changed = deactivate_categories(session, ids)
        elif entity in ("teachers", "students"):
            changed = deactivate(session, Person, ids)
        else:
            changed = deactivate(session, MODELS[entity], ids)
        report.counts[entity].deactivated += changed


def apply_held_deactivations(
    session: Session, report: RosterReport, connection_id: int, *, started: datetime
) -> None:
    """Apply an approved hold's deactivations and move the watermark as its import would have."""
    _apply_deactivations(session, report, report.deactivations)
    advance_watermark(session, connection_id, started, full=report.mode == "full")


def advance_watermark(
    session: Session, connection_id: int, started: datetime, *, full: bool
) -> None:
    state = session.get(RosterSyncState, connection_id)
    if state is None:
        state = RosterSyncState(connection_id=connection_id)
        session.add(state)
    state.watermark = started
    if full:
        state.last_full_at = started


def _watermark(classroom: Classroom, connection_id: int) -> datetime | None:
    with classroom.session() as session:
        state = session.get(RosterSyncState, connection_id)
        return state.watermark if state is not None else None


def _state_warnings(session: Session, report: RosterReport) -> None:
    """Warnings about the roster as it now stands: active classes with no active teacher."""
    teaching = (
        select(Enrolment.class_id)
        .where(Enrolment.role == EnrolmentRole.TEACHER, Enrolment.active.is_(True))
        .distinct()
    )
    statement = (
        select(Class.sis_sourced_id)
        .where(
            Class.sis_sourced_id.is_not(None),
            Class.active.is_(True),
            Class.primary_teacher_id.is_(None),
            Class.id.not_in(teaching),
        )
        .limit(1000)
    )
    for sid in session.execute(statement).scalars():
        report.warn("classes_without_teacher", "classes", repr(sid))


def is_delta_possible(classroom: Classroom, connection_id: int) -> bool:
    """True when an import finished before, so the next one can ask only for changes."""
    return _watermark(classroom, connection_id) is not None


__all__ = [
    "DEFAULT_SHRINK_THRESHOLD",
    "OneRosterError",
    "RosterImportCancelled",
    "RosterImportFailed",
    "RosterReport",
    "advance_watermark",
    "apply_held_deactivations",
    "import_roster",
    "is_delta_possible",
]
