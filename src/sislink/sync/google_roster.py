"""The roster into Google Classroom (issue 13): each SIS class of the classroom becomes one
Classroom course, its teachers and students its members, as Google's own "SIS roster import"
and Clever or Elevate Data Sync do it, and without what they lack.

    report = sync_roster(classroom, actor, dry_run=False)   # -> GoogleRosterReport
    report.to_dict()   # counts {courses, teachers, students} x {created, updated, removed,
                       # unchanged, skipped, held}, warnings, calls, courses, held

Rules:
- One course per active SIS-imported class whose primary teacher's email is in the connection's
  domain. The course is found by its domain alias `d:sislink-<UUIDv5>` (`identity.
  google_course_alias`: the installation's namespace and the SIS class's identity, never the
  host URL) and created with `id` set to that alias, so a second create answers 409
  ALREADY_EXISTS and the course is fetched by its alias instead: a retry, a crash, a second
  process, a lost database row, a disconnect and reconnect of either side find the same course.
- The owner is the primary teacher; co-teachers are added as teachers. Name and section come
  from the class's title and section, and are set only when the course is created: a teacher's
  rename is never undone (Google's import behaves so too, and remembering what sislink last set
  would still lose to a teacher who renames a course back to the SIS's words).
- Created PROVISIONED (the teacher accepts or declines), or ACTIVE when the administrator asks.
- Students (and teachers) are added directly as the domain administrator. sislink removes only
  people it added itself (`GoogleCourseMember`): the teacher's own additions stay. A member
  is recorded before the add is sent (and forgotten when Classroom refuses it), so a crash in
  between never leaves a person sislink added looking like the teacher's.
- Courses sislink did not create (no alias of ours) are never read, changed or removed.
- Grading periods: the class's SIS grading periods are set with `courses.
  updateGradingPeriodSettings` when they differ (ids kept for periods of the same title). Grade
  categories are read-only in Google's API: sislink compares them and says which courses lack
  the SIS's categories (the teacher sets them in the course's settings); it cannot set them.
- People outside the domain, classes with no primary teacher, courses the teacher declined
  (and archived or suspended ones) are reported by name with what to do; no account is made. A
  declined, archived or suspended course is a warning once, when a run that finishes first sees
  it in that state (the state is recorded at the run's end); later runs list it as skipped (the
  `courses` entry) without a warning, so a course a teacher declined for good does not make
  every nightly run need attention.
- A course Classroom will not let sislink read (an error for that course only, such as 500
  after every retry, 403 or 404 while reading its members) is skipped with a warning that names
  it, gives Google's words and what to do: nothing of it is written (in Classroom or in the
  database), its members count neither as removals nor in the shrink guard's base, and the next
  sync tries it again. Errors of the whole connection (the key, the token, 401, the quota after
  every retry, the network, the endpoint, the API switch) still stop the run, and so do
  `COURSE_FAILURES_IN_A_ROW` courses failing in a row, more than `COURSE_FAILURE_SHARE` of them
  (at least that many), or every course: a Classroom outage is one error, not a warning per
  course.
- The shrink guard: a sync that would remove more than `shrink_threshold` of the students
  sislink placed in the courses it syncs (not in those of ended classes) is held (its removals only: everything else is applied) for an administrator,
  who approves exactly the listed removals or discards them.
- Classroom is read first (each course by alias, its members, its grading periods) and only
  the differences are written, in batches: an unchanged re-sync makes no writes. A dry run
  only reads: it writes nothing, to Classroom or to the database.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import (
    Category,
    Class,
    ClassLink,
    ConnectionStatus,
    Enrolment,
    GoogleConnection,
    GoogleCourseLink,
    GoogleCourseMember,
    GoogleCourseworkLink,
    GradingPeriod,
    Person,
    SisConnection,
)
from sislink.classroom.services.access import require_admin
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.connections import current_connection
from sislink.classroom.services.organisation import identity_namespace
from sislink.googleclassroom import (
    AlreadyExists,
    CallOutcome,
    ClassroomClient,
    ClassroomError,
    ClassroomUnreachable,
    ClientSettings,
    FailedPrecondition,
    InvalidArgument,
    KeyFileError,
    MalformedAnswer,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
    ServiceAccountKey,
    TokenRefused,
)
from sislink.googleclassroom.errors import ApiError, Unauthenticated
from sislink.operations.logs import redact
from sislink.operations.metrics import observe_google_call
from sislink.sync.errors import NotConnected, SyncError
from sislink.sync.identity import class_identity, google_course_alias

GoogleError = ClassroomError  # Classroom's refusals, for the people layers (no protocol import)

GOOGLE_ROSTER_SYNC = "google_roster_sync"
DEFAULT_SHRINK_THRESHOLD = 0.10  # as the roster import's
TEACHER = "teacher"
STUDENT = "student"
ROLES = {TEACHER: "teachers", STUDENT: "students"}
NOT_MODIFIABLE = ("DECLINED", "ARCHIVED", "SUSPENDED")
PAGE_SIZE = 1000
# Answers that say a write was surely not done (the others may hide one that was).
REFUSED = (
    InvalidArgument,
    PermissionDenied,
    NotFound,
    FailedPrecondition,
    TokenRefused,
    KeyFileError,
)

# Errors that say the connection itself does not work, whichever course answered them.
CONNECTION_WIDE = (
    KeyFileError,
    TokenRefused,
    Unauthenticated,
    QuotaExhausted,
    ClassroomUnreachable,
    MalformedAnswer,
)
CONNECTION_WIDE_REASONS = frozenset({"SERVICE_DISABLED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
CONNECTION_WIDE_TAGS = frozenset({"ClassroomApiDisabled"})
QUOTA_OR_TOKEN = frozenset({"UNAUTHENTICATED", "RESOURCE_EXHAUSTED"})
# Past these, courses that cannot be read are an outage, not one bad course: the run stops.
COURSE_FAILURES_IN_A_ROW = 5
COURSE_FAILURE_SHARE = 0.10
# Google's words about a skipped course as the report keeps them (an answer may be a whole page).
GOOGLE_WORDS_KEPT = 400

Progress = Callable[[str, int, int | None], None]


class GoogleRosterCancelled(SyncError):
    """The sync was asked to stop between two steps; `report` says what was done so far."""

    def __init__(self, report: GoogleRosterReport) -> None:
        super().__init__("The roster sync to Google Classroom was cancelled.")
        self.report = report


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    held: int = 0


@dataclass
class GoogleRosterReport:
    """What one roster sync did (or, in a dry run, would do)."""

    dry_run: bool
    domain: str
    status: str = "applied"  # applied | dry_run | on_hold | cancelled
    counts: dict[str, Counts] = field(
        default_factory=lambda: {k: Counts() for k in ("courses", "teachers", "students")}
    )
    warnings: list[str] = field(default_factory=list)
    courses: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, str]] = field(default_factory=list)
    hold_reason: str | None = None
    categories_not_in_classroom: list[dict[str, Any]] = field(default_factory=list)
    # Courses whose grading periods Classroom would not let sislink read (e.g. a licence or
    # setting Google requires for grading periods): not set, said here, not an error.
    grading_periods_not_read: list[dict[str, Any]] = field(default_factory=list)
    reads: int = 0
    writes: int = 0
    http_requests: int = 0
    started_at: str = ""
    finished_at: str = ""

    @property
    def attention(self) -> list[str]:
        """The warnings a person must act on (the job ends needs_attention with them)."""
        return list(self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "domain": self.domain,
            "status": self.status,
            "counts": {name: asdict(c) for name, c in self.counts.items()},
            "warnings": list(self.warnings),
            "calls": {
                "reads": self.reads,
                "writes": self.writes,
                "http_requests": self.http_requests,
            },
            "courses": list(self.courses),
            "held": list(self.held),
            "hold_reason": self.hold_reason,
            "categories_not_in_classroom": list(self.categories_not_in_classroom),
            "grading_periods_not_read": list(self.grading_periods_not_read),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GoogleRosterReport:
        report = cls(dry_run=bool(data.get("dry_run")), domain=str(data.get("domain") or ""))
        report.status = str(data.get("status") or "applied")
        for name, values in (data.get("counts") or {}).items():
            report.counts[name] = Counts(**values)
        report.warnings = list(data.get("warnings") or [])
        calls = data.get("calls") or {}
        report.reads = int(calls.get("reads", 0))
        report.writes = int(calls.get("writes", 0))
        report.http_requests = int(calls.get("http_requests", 0))
        report.courses = list(data.get("courses") or [])
        report.held = list(data.get("held") or [])
        report.hold_reason = data.get("hold_reason")
        report.categories_not_in_classroom = list(data.get("categories_not_in_classroom") or [])
        report.grading_periods_not_read = list(data.get("grading_periods_not_read") or [])
        report.started_at = str(data.get("started_at") or "")
        report.finished_at = str(data.get("finished_at") or "")
        return report


# ---- what the classroom says ------------------------------------------------------------------


@dataclass
class Wanted:
    """One class as a course: who should be in it, and what to set."""

    class_id: int
    title: str
    section: str | None
    alias: str  # without "d:"
    owner: str  # email key
    owner_name: str
    teachers: dict[str, str]  # email key -> name (the owner included)
    students: dict[str, str]
    grading_periods: list[tuple[str, date, date]]
    categories: list[str]


@dataclass
class Known:
    """What the database remembers of a class's course."""

    link_id: int
    domain: str
    alias: str
    course_id: str | None
    members: set[tuple[str, str]]  # (email key, role)
    course_state: str | None = None  # as the last sync that wrote saw it


def _in_domain(email: str, domain: str) -> bool:
    host = email.rpartition("@")[2].strip().lower()
    return bool(host) and (host == domain or host.endswith("." + domain))


def _plan_classes(
    session: Session, domain: str, report: GoogleRosterReport
) -> tuple[list[Wanted], dict[int, Known]]:
    namespace = identity_namespace(session)
    current = current_connection(session)
    fallback_partner = current.partner if current is not None else None
    if fallback_partner is None:
        fallback_partner = session.scalar(
            select(SisConnection.partner).order_by(SisConnection.id.desc()).limit(1)
        )
    partners = dict(
        session.execute(
            select(ClassLink.class_id, SisConnection.partner).join(
                SisConnection, SisConnection.id == ClassLink.connection_id
            )
        ).all()
    )
    classes = session.scalars(
        select(Class)
        .where(Class.sis_sourced_id.is_not(None), Class.active.is_(True))
        .order_by(Class.title, Class.id)
    ).all()
    people: dict[int, Person] = {
        p.id: p for p in session.scalars(select(Person).where(Person.active.is_(True))).all()
    }
    members: dict[int, list[tuple[str, bool, int]]] = {}
    for class_id, role, is_primary, person_id in session.execute(
        select(Enrolment.class_id, Enrolment.role, Enrolment.is_primary, Enrolment.person_id)
        .join(Class, Class.id == Enrolment.class_id)
        .where(
            Enrolment.active.is_(True), Class.active.is_(True), Class.sis_sourced_id.is_not(None)
        )
    ).all():
        members.setdefault(class_id, []).append((role, is_primary, person_id))
    periods: dict[int, list[tuple[str, date, date]]] = {}
    for period in session.scalars(
        select(GradingPeriod)
        .where(GradingPeriod.active.is_(True), GradingPeriod.term_id.is_not(None))
        .order_by(GradingPeriod.start_date, GradingPeriod.id)
    ).all():
        if period.start_date and period.end_date and period.term_id is not None:
            periods.setdefault(period.term_id, []).append(
                (period.title, period.start_date, period.end_date)
            )
    categories: dict[int, list[str]] = {}
    for class_id, title in session.execute(
        select(Category.class_id, Category.title).where(Category.active.is_(True))
    ).all():
        categories.setdefault(class_id, []).append(title)
    known: dict[int, Known] = {}
    for link in session.scalars(select(GoogleCourseLink)).all():
        known[link.class_id] = Known(
            link.id, link.domain, link.alias, link.course_id, set(), link.course_state
        )
    by_link = {k.link_id: k for k in known.values()}
    for link_id, email_key, role in session.execute(
        select(GoogleCourseMember.link_id, GoogleCourseMember.email_key, GoogleCourseMember.role)
    ).all():
        if link_id in by_link:
            by_link[link_id].members.add((email_key, role))

    wanted: list[Wanted] = []
    outside: dict[str, list[str]] = {}
    for klass in classes:
        name = _class_words(klass)
        partner = partners.get(klass.id) or fallback_partner
        if not partner or not klass.sis_sourced_id:
            continue
        enrolled = members.get(klass.id, [])
        primary_id = klass.primary_teacher_id
        if primary_id is None or primary_id not in people:
            primary_id = next(
                (pid for role, first, pid in enrolled if role == TEACHER and first),
                None,
            )
        primary: Person | None = people.get(primary_id) if primary_id is not None else None
        seen = known.get(klass.id)
        exists = seen is not None and seen.domain == domain and seen.course_id is not None
        if primary is None:
            report.counts["courses"].skipped += 1
            report.warnings.append(
                f"{name} has no primary teacher in the SIS, so its Classroom course was left "
                "as it is (nobody added or removed): give the class a primary teacher in the "
                "SIS (the next sync brings the course up to date)."
                if exists
                else f"{name} has no primary teacher in the SIS, so no Classroom course was "
                "made for it: give the class a primary teacher in the SIS (the next sync "
                "makes it)."
            )
            report.courses.append(
                _entry(klass.id, klass.title, None, "skipped", "no primary teacher")
            )
            continue
        owner = (primary.email_key or "").strip()
        if not owner or not _in_domain(owner, domain):
            report.counts["courses"].skipped += 1
            where = f"{primary.email}" if owner else "no email"
            done = (
                "its Classroom course was left as it is (nobody added or removed)"
                if exists
                else "no Classroom course was made"
            )
            report.warnings.append(
                f"{name}: its primary teacher {primary.name} ({where}) has no Google account "
                f"in {domain}, so {done}: give them their {domain} email in the SIS (sislink "
                "creates no accounts)."
            )
            report.courses.append(
                _entry(klass.id, klass.title, None, "skipped", "primary teacher outside the domain")
            )
            continue
        teachers = {owner: primary.name}
        students: dict[str, str] = {}
        for role, _, person_id in enrolled:
            person = people.get(person_id)
            if person is None or person_id == primary.id:
                continue
            email = (person.email_key or "").strip()
            if not email or not _in_domain(email, domain):
                outside.setdefault(f"{person.name} ({person.email or 'no email'})", []).append(
                    klass.title
                )
                if role == TEACHER:
                    report.counts["teachers"].skipped += 1
                else:
                    report.counts["students"].skipped += 1
                continue
            if role == TEACHER:
                teachers[email] = person.name
            elif role == STUDENT and email not in teachers:
                students[email] = person.name
        for email in teachers:  # a teacher listed as a student too (in either order): teacher
            students.pop(email, None)
        alias = google_course_alias(namespace, class_identity(partner, klass.sis_sourced_id))
        wanted.append(
            Wanted(
                class_id=klass.id,
                title=klass.title,
                section=klass.section,
                alias=alias,
                owner=owner,
                owner_name=primary.name,
                teachers=teachers,
                students=students,
                grading_periods=periods.get(klass.term_id, []) if klass.term_id else [],
                categories=sorted(categories.get(klass.id, [])),
            )
        )
    for who, titles in sorted(outside.items()):
        shown = ", ".join(sorted(set(titles))[:3]) + (" and others" if len(set(titles)) > 3 else "")
        report.warnings.append(
            f"{who} is not in {domain}, so they were not added to {shown}: give them their "
            f"{domain} email in the SIS (sislink creates no accounts)."
        )
    return wanted, known


def _class_words(klass: Class) -> str:
    return f"The class {klass.title}" + (f" ({klass.section})" if klass.section else "")


def _entry(
    class_id: int, title: str, alias: str | None, action: str, reason: str = ""
) -> dict[str, Any]:
    found: dict[str, Any] = {"class_id": class_id, "title": title, "action": action}
    if alias:
        found["alias"] = "d:" + alias
    if reason:
        found["reason"] = reason
    return found


# ---- the client ---------------------------------------------------------------------------------


def google_connection_for_sync(classroom: Classroom) -> GoogleConnection:
    """The current Google connection, authorised (NotConnected, in words, otherwise)."""
    with classroom.session() as session:
        connection = session.scalars(
            select(GoogleConnection).where(GoogleConnection.current_slot == 1)
        ).first()
        if connection is None or connection.key_sealed is None:
            raise NotConnected(
                "sislink is not connected to Google Classroom: an administrator connects and "
                "authorises it on the Google Classroom page first."
            )
        if connection.status != ConnectionStatus.AUTHORISED:
            raise NotConnected(
                "The Google Classroom connection is saved but not authorised: an administrator "
                "authorises it on the Google Classroom page first."
            )
        session.expunge(connection)
        return connection


def open_google_client(
    classroom: Classroom, connection: GoogleConnection, settings: ClientSettings | None = None
) -> ClassroomClient:
    """A Classroom client for the connection (its sealed key opened in memory only)."""
    assert connection.key_sealed is not None
    key = ServiceAccountKey.from_json(classroom.secret_box.open(connection.key_sealed))
    client = ClassroomClient(
        key,
        admin_email=connection.admin_email,
        api_endpoint=connection.api_endpoint,
        settings=settings,
    )
    client.call_observers.append(observe_google_call)  # Prometheus (operations/metrics.py)
    return client


# ---- the sync ----------------------------------------------------------------------------------


@dataclass
class _Course:
    """A course as Classroom has it, with its members (email key -> user id)."""

    wanted: Wanted
    course: dict[str, Any] | None = None
    teachers: dict[str, str] = field(default_factory=dict)
    students: dict[str, str] = field(default_factory=dict)
    periods: dict[str, Any] | None = None
    periods_refused: str | None = None
    created: bool = False
    # Classroom's refusal to read this course (its own, not the connection's): skipped.
    unreadable: ClassroomError | None = None

    @property
    def course_key(self) -> str:
        """The course as the API names it: its id once known, else its alias."""
        if self.course and self.course.get("id"):
            return str(self.course["id"])
        return "d:" + self.wanted.alias

    @property
    def course_state(self) -> str:
        return str((self.course or {}).get("courseState") or "")


class _Calls:
    """Counts reads and writes (single API calls, batched or not)."""

    def __init__(self, client: ClassroomClient, report: GoogleRosterReport) -> None:
        self.client = client
        self.report = report
        self.lock = threading.Lock()

    def many(self, makes: Sequence[Callable[[Any], Any]], *, write: bool) -> list[CallOutcome]:
        if not makes:
            return []
        outcomes = self.client.execute_many(makes)
        if write:
            self.report.writes += len(makes)
        else:
            self.report.reads += len(makes)
        return outcomes

    def pages(self, make: Callable[[Any, str | None], Any], items: str) -> list[dict[str, Any]]:
        before = self.client.calls_made
        try:
            return list(self.client.pages(make, items))
        finally:  # counted when a page fails too (the course is then skipped, the run goes on)
            self.report.reads += self.client.calls_made - before


def sync_roster(
    classroom: Classroom,
    actor: Actor,
    *,
    dry_run: bool = False,
    activate: bool = False,
    shrink_threshold: float = DEFAULT_SHRINK_THRESHOLD,
    approved_removals: Iterable[Sequence[str]] | None = None,
    client: ClassroomClient | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
) -> GoogleRosterReport:
    """Push the classroom's SIS classes into Google Classroom (see the module). `activate`
    creates new courses ACTIVE instead of PROVISIONED; `approved_removals` are (alias with
    "d:", email, role) triples an administrator approved past the shrink guard. Raises
    NotConnected without an authorised Google connection, ClassroomError when Classroom cannot
    be read (nothing written then), GoogleRosterCancelled when `should_stop()` says so."""
    require_admin(actor, "sync the roster to Google Classroom")
    connection = google_connection_for_sync(classroom)
    domain = connection.domain
    report = GoogleRosterReport(dry_run=dry_run, domain=domain)
    report.started_at = _now()
    owned = client is None
    used = client or open_google_client(classroom, connection)
    http_before = used.calls_made
    try:
        _sync(
            classroom,
            used,
            report,
            domain=domain,
            activate=activate,
            threshold=shrink_threshold,
            approved={(a, e.lower(), r) for a, e, r in (approved_removals or [])},
            should_stop=should_stop or (lambda: False),
            progress=progress or (lambda step, done, total: None),
        )
    finally:
        report.http_requests = used.calls_made - http_before
        report.finished_at = _now()
        if owned:
            used.close()
    if not dry_run:
        with classroom.transaction() as session:
            record_event(
                session,
                actor,
                "google.roster_synced" if report.status != "on_hold" else "google.roster_held",
                f"google_connection:{connection.id}",
                {name: asdict(c) for name, c in report.counts.items()},
            )
    return report


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sync(
    classroom: Classroom,
    client: ClassroomClient,
    report: GoogleRosterReport,
    *,
    domain: str,
    activate: bool,
    threshold: float,
    approved: set[tuple[str, str, str]],
    should_stop: Callable[[], bool],
    progress: Progress,
) -> None:
    calls = _Calls(client, report)

    def stop_point() -> None:
        if should_stop():
            report.status = "cancelled"
            raise GoogleRosterCancelled(report)

    with classroom.session() as session:
        wanted, known = _plan_classes(session, domain, report)
    progress("classes", len(wanted), len(wanted))
    stop_point()

    # 1. Read: each course by its alias, then the members and grading periods of those found.
    courses = [_Course(w) for w in wanted]
    outcomes = calls.many([_get_course(c.wanted.alias) for c in courses], write=False)
    for course, outcome in zip(courses, outcomes, strict=True):
        if outcome.ok:
            course.course = outcome.result
        elif not isinstance(outcome.error, NotFound):
            assert outcome.error is not None
            _set_aside(course, outcome.error)
    _stop_if_widespread(courses)
    progress("courses read", len(courses), len(courses))
    stop_point()
    _read_members(calls, [c for c in courses if c.course is not None and c.unreadable is None])
    _stop_if_widespread(courses)
    stop_point()

    # 2. Create the missing courses (intent recorded first), found again by alias on 409.
    # A course that could not be read is not made: it may well exist.
    missing = [c for c in courses if c.course is None and c.unreadable is None]
    if report.dry_run:
        for course in missing:
            course.created = True
    elif missing:
        _remember_links(classroom, domain, missing)
        made = calls.many([_create_course(c.wanted, activate) for c in missing], write=True)
        again: list[_Course] = []
        for course, outcome in zip(missing, made, strict=True):
            if outcome.ok:
                course.course, course.created = outcome.result, True
            elif isinstance(outcome.error, AlreadyExists):
                again.append(course)  # made by a run that stopped before it saw the answer
            else:
                course.course = None
                report.counts["courses"].skipped += 1
                report.warnings.append(
                    f"The course for {course.wanted.title} could not be made: {outcome.error}"
                )
        if again:
            fetched = calls.many([_get_course(c.wanted.alias) for c in again], write=False)
            for course, outcome in zip(again, fetched, strict=True):
                if outcome.ok:
                    course.course = outcome.result
                else:
                    report.counts["courses"].skipped += 1
                    report.warnings.append(
                        f"The course for {course.wanted.title} exists but cannot be read: "
                        f"{outcome.error}"
                    )
            _read_members(calls, [c for c in again if c.course is not None])
            _stop_if_widespread(courses)
        progress("courses created", len(missing), len(missing))
    stop_point()

    # 3. Decide each course's differences.
    adds: list[tuple[_Course, str, str]] = []  # course, email, role
    removals: list[tuple[_Course, str, str]] = []
    owner_changes: list[_Course] = []
    period_updates: list[tuple[_Course, dict[str, Any]]] = []
    dropped: list[tuple[int, str, str]] = []  # (class id, email, role): member rows to forget
    placed = 0  # students sislink placed in the courses this sync manages (the guard's base)
    swaps: list[tuple[_Course, str]] = []  # sislink's students who now teach: teachers after
    for course in courses:
        w = course.wanted
        state = str(course.course.get("courseState")) if course.course else "PROVISIONED"
        mine = known.get(w.class_id)
        if mine is not None and (mine.domain != domain or mine.alias != w.alias):
            mine = None  # another domain's or installation's course: says nothing of this one
        if course.unreadable is not None:
            # Nothing decided for it: its members are neither removals nor the guard's base.
            report.counts["courses"].skipped += 1
            report.warnings.append(_unreadable_words(course, course.unreadable, domain))
            entry = _entry(w.class_id, w.title, w.alias, "skipped", "not read")
            entry["error"] = _google_words(course.unreadable)
            report.courses.append(entry)
            continue
        if course.course is None and not course.created:
            report.courses.append(_entry(w.class_id, w.title, w.alias, "skipped", "not made"))
            continue
        if state in NOT_MODIFIABLE:
            report.counts["courses"].skipped += 1
            if mine is None or mine.course_state != state:
                # News once; after that a standing condition, listed as skipped (no warning).
                report.warnings.append(_not_modifiable_words(w, state))
            report.courses.append(_entry(w.class_id, w.title, w.alias, "skipped", state.lower()))
            continue
        ours = mine.members if mine is not None else set()
        placed += sum(1 for _, role in ours if role == STUDENT)
        changed = False
        owner_id = str(course.course.get("ownerId")) if course.course else ""
        current_owner = next((e for e, uid in course.teachers.items() if uid == owner_id), None)
        if course.created:
            report.counts["teachers"].created += 1  # the owner, made with the course
        for email in w.teachers:
            if course.created and email == w.owner:
                continue
            if email in course.teachers:
                report.counts["teachers"].unchanged += 1
            elif email in course.students and (email, STUDENT) in ours and email not in w.students:
                swaps.append((course, email))  # sislink's student: removed below, then added
            elif email in course.students:
                report.counts["teachers"].skipped += 1
                report.warnings.append(
                    f"{w.teachers[email]} ({email}) is a student of the course for {w.title} in "
                    "Classroom, so they were not added as a teacher: remove them as a student "
                    "in Classroom if they teach it."
                )
            else:
                adds.append((course, email, TEACHER))
        for email in w.students:
            if email in course.students:
                report.counts["students"].unchanged += 1
            elif email in course.teachers:
                report.counts["students"].skipped += 1
            else:
                adds.append((course, email, STUDENT))
        if course.course is not None and not course.created and current_owner != w.owner:
            owner_changes.append(course)
            changed = True
        for email, role in sorted(ours):
            present = course.teachers if role == TEACHER else course.students
            still = w.teachers if role == TEACHER else w.students
            if email in still:
                continue
            if email not in present:
                dropped.append((w.class_id, email, role))  # removed by hand already
            elif role == TEACHER and email == w.owner:
                continue
            else:
                removals.append((course, email, role))
        if course.periods_refused:
            report.grading_periods_not_read.append(
                {"class_id": w.class_id, "title": w.title, "reason": course.periods_refused}
            )
        update = _periods_update(course)
        if update is not None:
            period_updates.append((course, update))
            changed = True
        if w.categories and course.course is not None:
            have = {
                str(c.get("name") or "").strip().lower()
                for c in (course.course.get("gradebookSettings") or {}).get("gradeCategories", [])
            }
            lacking = [t for t in w.categories if t.strip().lower() not in have]
            if lacking:
                report.categories_not_in_classroom.append(
                    {"class_id": w.class_id, "title": w.title, "categories": lacking}
                )
        if course.created:
            report.counts["courses"].created += 1
            action = "created"
        elif changed:
            report.counts["courses"].updated += 1
            action = "updated"
        else:
            report.counts["courses"].unchanged += 1
            action = "unchanged"
        entry = _entry(w.class_id, w.title, w.alias, action)
        if course.course is not None:
            entry["course_id"] = course.course.get("id")
            entry["state"] = course.course.get("courseState")
            entry["link"] = course.course.get("alternateLink")
        else:
            entry["state"] = "ACTIVE" if activate else "PROVISIONED"
        report.courses.append(entry)

    # 4. The shrink guard, over the students sislink placed in the courses it manages now (not
    # in courses of classes that ended, declined or archived ones: they would water it down).
    unapproved = [
        r
        for r in removals
        if r[2] == STUDENT and ("d:" + r[0].wanted.alias, r[1], r[2]) not in approved
    ]
    if placed and len(unapproved) / placed > threshold:
        report.status = "on_hold"
        report.hold_reason = (
            f"This sync would remove {len(unapproved)} of the {placed} students sislink placed "
            f"in the courses it syncs ({len(unapproved) / placed:.0%}), more than the {threshold:.0%} "
            "allowed at once: an administrator must approve or discard these removals. "
            "Everything else was synced."
        )
        for course, email, role in removals:
            report.counts[ROLES[role]].held += 1
            report.held.append(
                {"alias": "d:" + course.wanted.alias, "course": course.wanted.title,
                 "email": email, "role": role}
            )  # fmt: skip
        removals = []

    if report.status == "on_hold":
        report.counts["teachers"].held += len(swaps)
        swaps = []  # their removal as students is held: they become teachers once it is approved
    if report.dry_run:
        report.status = "dry_run"
        for _, _, role in adds:
            report.counts[ROLES[role]].created += 1
        report.counts["teachers"].created += len(swaps)
        for _, _, role in removals:
            report.counts[ROLES[role]].removed += 1
        return
    stop_point()

    # 5. Write the differences: members recorded first, then added (teachers before students,
    # so an owner change finds its teacher), owners, removals, grading periods.
    links = _link_ids(classroom, domain, courses)
    _record_members(classroom, links, adds)
    # In chunks that keep every batch slot busy, with a cancel check between them.
    chunk = max(client.settings.batch_size * client.settings.max_concurrency * 2, 1)
    added: list[CallOutcome] = []
    for start in range(0, len(adds), chunk):
        part = adds[start : start + chunk]
        added += calls.many(
            [_add_member(c.course_key, email, role) for c, email, role in part], write=True
        )
        progress("members added", len(added), len(adds))
        if should_stop():
            break
    forget: list[tuple[int, str, str]] = list(dropped)
    # Recorded but not sent (stopped): forgotten, so the record says only what Classroom has.
    forget += [(c.wanted.class_id, email, role) for c, email, role in adds[len(added) :]]
    for (course, email, role), outcome in zip(adds, added, strict=False):
        counts = report.counts[ROLES[role]]
        if outcome.ok:
            counts.created += 1
            (course.teachers if role == TEACHER else course.students)[email] = str(
                (outcome.result or {}).get("userId") or ""
            )
            continue
        if isinstance(outcome.error, AlreadyExists):
            # There already: most often this very add, applied by Classroom and sent again
            # because its answer was lost (the HTTP layer resends a dropped request): sislink's.
            # The member is one the SIS places there, so it stays recorded (its removal when
            # the SIS ends the enrolment is what the SIS says).
            counts.unchanged += 1
            continue
        if isinstance(outcome.error, REFUSED):
            forget.append((course.wanted.class_id, email, role))  # surely not added
        # Else (no answer, 5xx, 429 after retries) it may have been done: the record stays and
        # the next sync settles it (there: kept; not there: added again, or forgotten).
        counts.skipped += 1
        name = (course.wanted.teachers if role == TEACHER else course.wanted.students)[email]
        report.warnings.append(
            f"{name} ({email}) could not be added as a {role} to the course for "
            f"{course.wanted.title}: {outcome.error}"
        )
    if len(added) < len(adds):
        _forget_members(classroom, links, forget)
        stop_point()

    for course in owner_changes:
        w = course.wanted
        if w.owner not in course.teachers:
            report.warnings.append(
                f"The course for {w.title} keeps its owner: {w.owner_name} ({w.owner}) could "
                "not be added as a teacher first."
            )
            continue
        try:
            course.course = client.execute(
                functools.partial(_patch_owner, course.course_key, w.owner)
            )
            report.writes += 1
        except ClassroomError as exc:
            report.writes += 1
            report.warnings.append(
                f"The course for {w.title} could not be given to {w.owner_name} ({w.owner}), "
                f"its primary teacher in the SIS: {exc}"
            )

    removed = calls.many(
        [_remove_member(c.course_key, email, role) for c, email, role in removals], write=True
    )
    gone: set[tuple[int, str]] = set()  # (class id, email) removed as a student
    for (course, email, role), outcome in zip(removals, removed, strict=True):
        counts = report.counts[ROLES[role]]
        if outcome.ok or isinstance(outcome.error, NotFound):
            counts.removed += 1
            forget.append((course.wanted.class_id, email, role))
            if role == STUDENT:
                gone.add((course.wanted.class_id, email))
        else:
            counts.skipped += 1
            report.warnings.append(
                f"{email} could not be removed as a {role} from the course for "
                f"{course.wanted.title}: {outcome.error}"
            )
    _add_teachers_after(calls, classroom, links, report, forget, swaps, gone)
    _forget_members(classroom, links, forget)

    set_periods = calls.many(
        [_update_periods(c.course_key, body) for c, body in period_updates], write=True
    )
    for (course, _), outcome in zip(period_updates, set_periods, strict=True):
        if not outcome.ok:
            report.warnings.append(
                f"The grading periods of the course for {course.wanted.title} could not be "
                f"set: {outcome.error}"
            )
    _save_links(classroom, courses, links)
    progress("done", len(courses), len(courses))


def _add_teachers_after(
    calls: _Calls,
    classroom: Classroom,
    links: dict[int, int],
    report: GoogleRosterReport,
    forget: list[tuple[int, str, str]],
    swaps: list[tuple[_Course, str]],
    removed: set[tuple[int, str]],
) -> None:
    """sislink's students whom the SIS now lists as teachers of the class: added as teachers
    once their removal as students went through (recorded first, as every add)."""
    adds = [(c, e, TEACHER) for c, e in swaps if (c.wanted.class_id, e) in removed]
    if not adds:
        return
    _record_members(classroom, links, adds)
    outcomes = calls.many([_add_member(c.course_key, e, r) for c, e, r in adds], write=True)
    counts = report.counts["teachers"]
    for (course, email, role), outcome in zip(adds, outcomes, strict=True):
        if outcome.ok:
            counts.created += 1
            course.teachers[email] = str((outcome.result or {}).get("userId") or "")
        elif isinstance(outcome.error, AlreadyExists):
            counts.unchanged += 1
        else:
            if isinstance(outcome.error, REFUSED):
                forget.append((course.wanted.class_id, email, role))
            counts.skipped += 1
            report.warnings.append(
                f"{course.wanted.teachers[email]} ({email}) could not be added as a teacher to "
                f"the course for {course.wanted.title}: {outcome.error}"
            )


def _not_modifiable_words(w: Wanted, state: str) -> str:
    if state == "DECLINED":
        return (
            f"{w.owner_name} ({w.owner}) declined the Classroom course for {w.title}: sislink "
            "leaves it as it is. Ask them to accept it (or restore it in Classroom); if the "
            "class is not taught in Classroom, no action is needed."
        )
    return (
        f"The Classroom course for {w.title} is {state.lower()}, so sislink changed nothing in "
        "it: restore it in Classroom if the class is still taught there."
    )


def _connection_wide(error: ClassroomError) -> bool:
    """Whether the error says the connection does not work (not this one course)."""
    if isinstance(error, CONNECTION_WIDE):
        return True
    if not isinstance(error, ApiError):
        return True  # not an answer of Google's about this course
    if error.status in (401, 429) or error.google_status in QUOTA_OR_TOKEN:
        return True  # the token or the quota, whatever status name came with the answer
    reasons = {str(d.get("reason")) for d in error.details if isinstance(d, dict)}
    return bool(reasons & CONNECTION_WIDE_REASONS) or error.tag in CONNECTION_WIDE_TAGS


def _set_aside(course: _Course, error: ClassroomError) -> None:
    """A course Classroom would not let sislink read: skipped this run, unless the error is
    the whole connection's (raised: the run stops as before)."""
    if _connection_wide(error):
        raise error
    course.unreadable = error


def _stop_if_widespread(courses: list[_Course]) -> None:
    """Courses that cannot be read in a row, many or all of them: Classroom (or sislink's
    access to it) is failing, not one course; stop with Google's sentence."""
    failed = [c for c in courses if c.unreadable is not None]
    if not failed:
        return
    longest = run = 0
    for course in courses:
        run = run + 1 if course.unreadable is not None else 0
        longest = max(longest, run)
    allowed = max(COURSE_FAILURES_IN_A_ROW, int(len(courses) * COURSE_FAILURE_SHARE))
    if len(failed) == len(courses) or longest >= COURSE_FAILURES_IN_A_ROW or len(failed) > allowed:
        error = failed[0].unreadable
        assert error is not None
        raise error


def _unreadable_words(course: _Course, error: ClassroomError, domain: str) -> str:
    w = course.wanted
    course_id = (course.course or {}).get("id")
    named = f"d:{w.alias}" + (f", id {course_id}" if course_id else "")
    status = getattr(error, "status", None)
    if isinstance(error, PermissionDenied):
        todo = (
            f"check in Classroom who owns the course (its owner must be an active account of "
            f"{domain}; {w.owner_name} ({w.owner}) is the primary teacher in the SIS) and that "
            "the administrator sislink acts as still has Classroom administrator rights"
        )
    elif isinstance(error, NotFound):
        todo = (
            "it was probably deleted in Classroom while sislink read it; the next sync makes it "
            "again if the class is still in the SIS"
        )
    elif isinstance(status, int) and status >= 500:
        todo = (
            "if it keeps failing night after night, open the course in Classroom as its owner "
            f"{w.owner_name} ({w.owner}), and report the course to Google Workspace support"
        )
    else:
        todo = "check the course in Classroom (does it exist, who owns it)"
    return (
        f"The Classroom course for {w.title} ({named}) could not be read, so sislink "
        f"changed nothing in it (nobody added or removed) and the next sync tries again: "
        f"{_google_words(error)} What to do: {todo}."
    )


def _google_words(error: ClassroomError) -> str:
    """The error's sentence for a report: secret-looking values masked (Google's message is
    whatever the answer said, a URL with a token in it included), and cut short."""
    words = redact(str(error))
    if len(words) > GOOGLE_WORDS_KEPT:
        words = words[: GOOGLE_WORDS_KEPT - 1].rstrip() + "…"
    return words


def _periods_update(course: _Course) -> dict[str, Any] | None:
    w = course.wanted
    if course.created and course.periods is None:
        course.periods = {}  # a new course has none
    if not w.grading_periods or course.periods_refused or course.periods is None:
        return None
    have = course.periods.get("gradingPeriods") or []
    wanted = [(t, s.isoformat(), e.isoformat()) for t, s, e in w.grading_periods]
    seen = [
        (str(p.get("title") or ""), _iso(p.get("startDate")), _iso(p.get("endDate"))) for p in have
    ]
    if seen == wanted:
        return None
    ids = {str(p.get("title") or ""): p.get("id") for p in have if p.get("id")}
    periods = []
    for title, start, end in w.grading_periods:
        period: dict[str, Any] = {
            "title": title,
            "startDate": {"year": start.year, "month": start.month, "day": start.day},
            "endDate": {"year": end.year, "month": end.month, "day": end.day},
        }
        if ids.get(title):
            period["id"] = ids[title]
        periods.append(period)
    return {"gradingPeriods": periods}


def _iso(value: Any) -> str:
    if not isinstance(value, dict) or not value.get("year"):
        return ""
    try:
        return date(
            int(value["year"]), int(value.get("month") or 1), int(value.get("day") or 1)
        ).isoformat()
    except (TypeError, ValueError):
        return ""


def _read_members(calls: _Calls, found: list[_Course]) -> None:
    """Teachers, students and grading periods of the courses found (first pages batched)."""
    readable = [c for c in found if str(c.course_state) not in NOT_MODIFIABLE]
    for role in (TEACHER, STUDENT):
        items = ROLES[role]
        readable = [c for c in readable if c.unreadable is None]
        outcomes = calls.many(
            [_list_members(c.course_key, role, None) for c in readable], write=False
        )
        for course, outcome in zip(readable, outcomes, strict=True):
            if not outcome.ok:
                assert outcome.error is not None
                _set_aside(course, outcome.error)
                continue
            page = outcome.result or {}
            people = list(page.get(items, []))
            if page.get("nextPageToken"):
                try:
                    people = calls.pages(
                        functools.partial(_list_page, course.course_key, role), items
                    )
                except ClassroomError as exc:
                    _set_aside(course, exc)
                    continue
            target = course.teachers if role == TEACHER else course.students
            for person in people:
                email = str((person.get("profile") or {}).get("emailAddress") or "").lower()
                if not email:
                    raise SyncError(
                        "Google Classroom gives members without their email: grant the service "
                        "account the classroom.profile.emails scope (domain-wide delegation)."
                    )
                target[email] = str(person.get("userId") or "")
    with_periods = [c for c in readable if c.wanted.grading_periods and c.unreadable is None]
    outcomes = calls.many([_get_periods(c.course_key) for c in with_periods], write=False)
    for course, outcome in zip(with_periods, outcomes, strict=True):
        if outcome.ok:
            course.periods = outcome.result or {}
        else:
            course.periods_refused = str(outcome.error)


# ---- the calls -----------------------------------------------------------------------------------


def _get_course(alias: str) -> Callable[[Any], Any]:
    return lambda s: s.courses().get(id="d:" + alias)


def _create_course(w: Wanted, activate: bool) -> Callable[[Any], Any]:
    body: dict[str, Any] = {
        "id": "d:" + w.alias,
        "name": w.title,
        "ownerId": w.owner,
        "courseState": "ACTIVE" if activate else "PROVISIONED",
    }
    if w.section:
        body["section"] = w.section
    return lambda s: s.courses().create(body=body)


def _list_members(course_id: str, role: str, token: str | None) -> Callable[[Any], Any]:
    def make(s: Any) -> Any:
        resource = s.courses().teachers() if role == TEACHER else s.courses().students()
        return resource.list(courseId=course_id, pageSize=PAGE_SIZE, pageToken=token)

    return make


def _list_page(course_id: str, role: str, s: Any, token: str | None) -> Any:
    return _list_members(course_id, role, token)(s)


def _get_periods(course_id: str) -> Callable[[Any], Any]:
    return lambda s: s.courses().getGradingPeriodSettings(courseId=course_id)


def _update_periods(course_id: str, body: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda s: s.courses().updateGradingPeriodSettings(
        courseId=course_id, updateMask="gradingPeriods", body=body
    )


def _add_member(course_id: str, email: str, role: str) -> Callable[[Any], Any]:
    def make(s: Any) -> Any:
        resource = s.courses().teachers() if role == TEACHER else s.courses().students()
        return resource.create(courseId=course_id, body={"userId": email})

    return make


def _remove_member(course_id: str, email: str, role: str) -> Callable[[Any], Any]:
    def make(s: Any) -> Any:
        resource = s.courses().teachers() if role == TEACHER else s.courses().students()
        return resource.delete(courseId=course_id, userId=email)

    return make


def _patch_owner(course_id: str, owner: str, s: Any) -> Any:
    return s.courses().patch(id=course_id, updateMask="ownerId", body={"ownerId": owner})


# ---- the database side --------------------------------------------------------------------------


def _remember_links(classroom: Classroom, domain: str, missing: list[_Course]) -> None:
    """Before a course is created, its link (the alias it will have) is written, so a crash
    after the create leaves a row that the next run completes."""
    with classroom.transaction() as session:
        for course in missing:
            link = _upsert_link(session, domain, course.wanted, None)
            _record(session, link.id, course.wanted.owner, TEACHER)


def _record(session: Session, link_id: int, email: str, role: str) -> None:
    exists = session.scalar(
        select(GoogleCourseMember.id).where(
            GoogleCourseMember.link_id == link_id,
            GoogleCourseMember.email_key == email,
            GoogleCourseMember.role == role,
        )
    )
    if exists is None:
        session.add(GoogleCourseMember(link_id=link_id, email_key=email, role=role))


def _upsert_link(
    session: Session,
    domain: str,
    w: Wanted,
    course: dict[str, Any] | None,
    *,
    with_state: bool = True,
) -> GoogleCourseLink:
    link = session.scalars(
        select(GoogleCourseLink).where(GoogleCourseLink.class_id == w.class_id)
    ).first()
    if link is None:
        link = GoogleCourseLink(class_id=w.class_id, domain=domain, alias=w.alias)
        session.add(link)
    elif link.domain != domain or link.alias != w.alias:
        # Another domain (or another installation's namespace): another course. Whom sislink
        # placed in the old one says nothing of the new one.
        session.execute(delete(GoogleCourseMember).where(GoogleCourseMember.link_id == link.id))
        _forget_pulled_work(session, link)
        link.domain, link.alias, link.course_id = domain, w.alias, None
        link.course_state = link.alternate_link = link.owner_email = None
    if course is not None:
        if link.course_id != course.get("id"):
            if link.course_id is not None:
                # A new course for the class (the old one was deleted in Classroom): its
                # courseWork is not the old course's, whose work must not look deleted to the
                # grade pull (that would delete its lineItems and results from the SIS).
                _forget_pulled_work(session, link)
            link.course_id = str(course.get("id"))
        if with_state and link.course_state != course.get("courseState"):
            link.course_state = course.get("courseState")
        if link.alternate_link != course.get("alternateLink"):
            link.alternate_link = course.get("alternateLink")
        if link.owner_email != w.owner:
            link.owner_email = w.owner
    session.flush()
    return link


def _forget_pulled_work(session: Session, link: GoogleCourseLink) -> None:
    """The link's record of the courseWork pulled from its course, and the pull's watermark:
    for a course that is no longer the class's. The coursework pulled stays in the class (and
    what was exported stays in the SIS); nothing of the old course is looked for in the new."""
    session.execute(delete(GoogleCourseworkLink).where(GoogleCourseworkLink.link_id == link.id))
    link.grades_watermark = None
    link.grades_pulled_at = None


def _link_ids(classroom: Classroom, domain: str, courses: list[_Course]) -> dict[int, int]:
    """Class id -> link id for every course that exists now (found again ones get a row)."""
    with classroom.transaction() as session:
        found: dict[int, int] = {}
        for course in courses:
            if course.course is None or course.unreadable is not None:
                continue  # a course not read is left as the database had it
            # The state is written by _save_links, at the end: a run that dies before then
            # has not told anyone of a newly declined or archived course (warned once only).
            found[course.wanted.class_id] = _upsert_link(
                session, domain, course.wanted, course.course, with_state=False
            ).id
        return found


def _record_members(
    classroom: Classroom, links: dict[int, int], adds: list[tuple[_Course, str, str]]
) -> None:
    if not adds:
        return
    wanted = {(links[course.wanted.class_id], email, role) for course, email, role in adds}
    link_ids = sorted({link_id for link_id, _, _ in wanted})
    with classroom.transaction() as session:
        for start in range(0, len(link_ids), 500):  # one read per 500 courses, not per person
            chunk = link_ids[start : start + 500]
            for link_id, email, role in session.execute(
                select(
                    GoogleCourseMember.link_id,
                    GoogleCourseMember.email_key,
                    GoogleCourseMember.role,
                ).where(GoogleCourseMember.link_id.in_(chunk))
            ).all():
                wanted.discard((link_id, email, role))
        session.add_all(
            GoogleCourseMember(link_id=link_id, email_key=email, role=role)
            for link_id, email, role in sorted(wanted)
        )


def _forget_members(
    classroom: Classroom, links: dict[int, int], forget: list[tuple[int, str, str]]
) -> None:
    if not forget:
        return
    with classroom.transaction() as session:
        for class_id, email, role in forget:
            link_id = links.get(class_id)
            if link_id is None:
                continue
            session.execute(
                delete(GoogleCourseMember).where(
                    GoogleCourseMember.link_id == link_id,
                    GoogleCourseMember.email_key == email,
                    GoogleCourseMember.role == role,
                )
            )


def _save_links(classroom: Classroom, courses: list[_Course], links: dict[int, int]) -> None:
    now = datetime.now(UTC)
    with classroom.transaction() as session:
        for course in courses:
            link_id = links.get(course.wanted.class_id)
            if link_id is None or course.course is None:
                continue
            link = session.get(GoogleCourseLink, link_id)
            if link is None:
                continue
            if link.course_state != course.course.get("courseState"):
                link.course_state = course.course.get("courseState")
            link.roster_synced_at = now


# ---- what the people layers ask ----------------------------------------------------------------


def course_links(classroom: Classroom) -> dict[int, dict[str, Any]]:
    """Class id -> its Classroom course as last seen (id, state, link), for pages: only courses
    of the domain sislink is connected to (after a reconnect to another domain, the old
    domain's courses are not the class's any more)."""
    with classroom.session() as session:
        domain = session.scalar(
            select(GoogleConnection.domain).where(GoogleConnection.current_slot == 1)
        )
        return {
            link.class_id: {
                "course_id": link.course_id,
                "alias": "d:" + link.alias,
                "state": link.course_state,
                "link": link.alternate_link,
                "owner": link.owner_email,
                "synced_at": link.roster_synced_at.isoformat() if link.roster_synced_at else None,
            }
            for link in session.scalars(select(GoogleCourseLink)).all()
            if domain is None or link.domain == domain
        }


def namespace_alias(namespace: uuid.UUID, partner: str, sis_class_sourced_id: str) -> str:
    """The `d:` alias a class's course has (for tests, the demo and people who look)."""
    return "d:" + google_course_alias(namespace, class_identity(partner, sis_class_sourced_id))
