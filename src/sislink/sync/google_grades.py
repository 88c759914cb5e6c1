"""Grades back from Google Classroom: each linked course's published courseWork becomes the
class's coursework, its submissions the class's marks; the mark export then sends them to the
SIS as it sends any (derived ids, ledger, pre-flight, reports).

`pull_grades(classroom, actor, class_ids=None)` pulls every linked course the actor may pull
(or those classes'), and answers a `GooglePullReport` (`to_dict()` for JSON). Only courses of
the connected Workspace domain: after a reconnect to another domain, a class whose course is in
the old one is not pulled (said, when asked for) and its page shows no course.

What goes where (decided here, said in the README):
- courseWork `PUBLISHED` with `maxPoints` -> coursework: title, description, maxPoints ->
  max_points, dueDate/dueTime (UTC) -> due_date, creation (or scheduled) time -> assign_date,
  `gradeCategory.name` -> the class's category of that title (case and spaces ignored),
  `gradingPeriodId` -> the class term's grading period with the Classroom period's title, else
  with its start and end dates. Without a grading period the export picks the one containing
  the due date, as for coursework made in sislink.
- kept out, with a sentence in the class's troubleshoot report: drafts, ungraded work (no
  points), a category the class does not have (the SIS's categories), a grading period the
  class does not have, a Classroom student who is not a student of the class, a title or
  description holding a NUL character (no database sislink writes to can store it).
- a submission's `assignedGrade` (returned) -> a returned mark; else its `draftGrade` -> a draft
  mark (the export sends drafts only when the class's export choices say so); a submission past
  due and not turned in, with no grade, -> a missing mark (Classroom shows the student
  "Missing"), which the export sends as the class's missing-mark choice says; `late` is kept.
  A mark sislink already has with the same values is not touched (the export's ledger then
  sends nothing for it).
- courseWork deleted in Classroom (gone from the list, or `DELETED`) -> the coursework deleted,
  so the export deletes its lineItem and results.

Incremental: a course costs two list calls (courseWork, and every submission of the course with
`courseWorkId="-"`), sent in batches across courses; only courseWork whose `updateTime` changed
and submissions updated since the course's watermark (the greatest `updateTime` seen) are
applied, plus the submissions of work whose due date passed since the last pull (they may have
become missing), and of work with a grade kept out (its student not in the class, above the
limit: taken once that is put right). A pull that sees a change made while it listed keeps
the watermark at the moment it began listing (less the clock skew), so a change on a page it
had already read is looked at again. The course's students and grading periods are asked only when something is to
be applied. `full=True` applies everything again (values that did not change still touch nothing).

The teacher permission "Enable classwork and mark exporting" governs this path too: switched
off, nothing is pulled (for anyone: the pull is the teachers' classwork going to the SIS).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from googleapiclient.discovery import Resource
from googleapiclient.http import HttpRequest
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom, Conflict
from sislink.classroom.errors import NotFound, PermissionDenied
from sislink.classroom.models import (
    Category,
    Class,
    ClassExportSettings,
    ConnectionStatus,
    Coursework,
    CourseworkState,
    Enrolment,
    EnrolmentRole,
    GoogleConnection,
    GoogleCourseLink,
    GoogleCourseworkLink,
    GradingPeriod,
    Job,
    Mark,
    MarkExportReport,
    MarkState,
    Person,
    utc_now,
)
from sislink.classroom.services import connections
from sislink.classroom.services import jobs as job_service
from sislink.classroom.services.access import teaches
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.export_settings import extra_credit_limit
from sislink.googleclassroom import (
    ClassroomClient,
    ClassroomError,
    ClientSettings,
    MalformedAnswer,
    ServiceAccountKey,
)
from sislink.googleclassroom import NotFound as GoogleNotFound
from sislink.operations.metrics import observe_google_call
from sislink.sync.errors import NotConnected, SyncError
from sislink.sync.export_report import CHOSEN_SKIPS, ExportReport, ItemReport, Outcome
from sislink.sync.preflight import Reason

# The troubleshoot report rows a pull keeps say so in their summary (`source`).
PULL_SOURCE = "google_classroom"
# How many reasons a report's `attention` names (the count covers them all).
ATTENTION_REASONS = 5
# Submission states in which the student has not turned the work in.
NOT_TURNED_IN = frozenset({"NEW", "CREATED", "RECLAIMED_BY_STUDENT"})

ListMaker = Callable[[Resource, str | None], HttpRequest]

# Partial responses (Google's standard `fields` parameter): only what the pull reads, so a
# nightly list of every submission of a course does not carry each one's history and links.
WORK_FIELDS = (
    "id,title,description,state,maxPoints,dueDate,dueTime,gradeCategory,gradingPeriodId,"
    "creationTime,scheduledTime,updateTime"
)
COURSE_WORK_FIELDS = f"nextPageToken,courseWork({WORK_FIELDS})"
SUBMISSION_FIELDS = (
    "nextPageToken,studentSubmissions(id,courseWorkId,userId,state,assignedGrade,draftGrade,"
    "late,updateTime)"
)
STUDENT_FIELDS = "nextPageToken,students(userId,profile(emailAddress))"


class PullRefused(SyncError):
    """Nothing was pulled: not connected to Google Classroom, or the permission is off.
    `problem` says which: "not_connected" or "permission_off"."""

    def __init__(self, message: str, problem: str = "not_connected") -> None:
        super().__init__(message)
        self.problem = problem


# ---- the report ---------------------------------------------------------------------------


@dataclass
class CoursePull:
    """What one pull did for one class and its Classroom course."""

    class_id: int
    class_title: str
    course_id: str | None = None
    alternate_link: str | None = None
    refused: str | None = None  # not pulled, and why (not yours, not in Classroom)
    failed: str | None = None  # Classroom could not be asked, and what it said
    coursework: Counter[str] = field(default_factory=Counter)
    marks: Counter[str] = field(default_factory=Counter)
    items: list[ItemReport] = field(default_factory=list)  # what cannot go to the SIS, and why
    report_id: int | None = None  # the troubleshoot report row kept, when one was
    watermark: str | None = None

    @property
    def changed(self) -> bool:
        """True when a coursework or a mark of the class was created, changed or deleted."""
        return any(self.coursework[k] for k in ("created", "updated", "deleted")) or any(
            self.marks[k] for k in ("created", "updated")
        )

    @property
    def outcome(self) -> str:
        if self.refused is not None:
            return "refused"
        if self.failed is not None:
            return "failed"
        if self.attention_items():
            return "needs_attention"
        return "pulled" if self.changed else "unchanged"

    def attention_items(self) -> list[ItemReport]:
        return [i for i in self.items if i.skip_reason not in CHOSEN_SKIPS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "class": self.class_title,
            "course_id": self.course_id,
            "alternate_link": self.alternate_link,
            "outcome": self.outcome,
            "refused": self.refused,
            "failed": self.failed,
            "coursework": _counts(self.coursework, ("created", "updated", "deleted", "unchanged")),
            "marks": _counts(self.marks, ("created", "updated", "unchanged")),
            "not_sent": [item.as_json() for item in self.items],
            "report_id": self.report_id,
        }


def _counts(counter: Counter[str], keys: Iterable[str]) -> dict[str, int]:
    return {key: int(counter[key]) for key in keys}


@dataclass
class GooglePullReport:
    """What one grade pull did, course by course; `exports` when `--export` ran after it."""

    started_at: datetime = field(default_factory=utc_now)
    finished_at: datetime | None = None
    courses: list[CoursePull] = field(default_factory=list)
    refused: str | None = None
    calls: int = 0  # HTTP round trips to Classroom (a batch is one)
    api_calls: int = 0  # Classroom API calls (each call in a batch counts, as Google's quota)
    exports: list[ExportReport] = field(default_factory=list)
    # Asked to stop (its job cancelled, serve stopping) before every class was written: the
    # classes not reached are listed as not pulled, and the next pull takes them.
    stopped: bool = False

    @property
    def changed_class_ids(self) -> list[int]:
        return [c.class_id for c in self.courses if c.changed]

    def attention(self) -> tuple[int, list[str]]:
        """How many things someone must act on, and the first few in words: items that cannot
        go to the SIS, courses not pulled, and (after an export) what the export left out."""
        count = 0
        reasons: list[str] = []

        def add(said: str) -> None:
            if said not in reasons:
                reasons.append(said)

        if self.refused is not None:
            count += 1
            add(self.refused)
        for course in self.courses:
            if course.refused or course.failed:
                count += 1
                add(f"{course.class_title}: {course.refused or course.failed}")
            for item in course.attention_items():
                count += 1
                add(f"{course.class_title}: {item.in_words()}")
        for export in self.exports:
            if export.refused or export.failed:
                count += 1
                add(f"{export.class_title}: not exported: {export.refused or export.failed}")
            for item in export.items:
                if item.outcome is Outcome.FAILED:
                    count += 1
                    add(f"{export.class_title}: not accepted by the SIS: {item.in_words()}")
            entry = export.attention()
            if entry is not None:
                count += int(entry["count"])
                for reason in entry["reasons"]:
                    add(f"{export.class_title}: {reason}")
        return count, reasons[:ATTENTION_REASONS]

    def to_dict(self) -> dict[str, Any]:
        count, reasons = self.attention()
        totals: dict[str, Counter[str]] = {"coursework": Counter(), "marks": Counter()}
        for course in self.courses:
            totals["coursework"].update(course.coursework)
            totals["marks"].update(course.marks)
        return {
            "outcome": "refused"
            if self.refused
            else "stopped"
            if self.stopped
            else ("needs_attention" if count else "succeeded"),
            "refused": self.refused,
            "stopped": self.stopped,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "calls": self.calls,
            "api_calls": self.api_calls,
            "counts": {
                "courses": len(self.courses),
                "changed": len(self.changed_class_ids),
                "coursework": _counts(
                    totals["coursework"], ("created", "updated", "deleted", "unchanged")
                ),
                "marks": _counts(totals["marks"], ("created", "updated", "unchanged")),
            },
            "courses": [c.to_dict() for c in self.courses],
            "exports": [e.summary() | {"report_id": e.report_id} for e in self.exports],
            "writes": sum(e.writes for e in self.exports),
            "attention": {"count": count, "reasons": reasons} if count else None,
        }


# ---- who may pull what ----------------------------------------------------------------------


def _google_connection(session: Session) -> GoogleConnection:
    connection = session.scalars(
        select(GoogleConnection).where(GoogleConnection.current_slot.is_not(None))
    ).first()
    if connection is None or connection.key_sealed is None:
        raise PullRefused(
            "sislink is not connected to Google Classroom, so no grades can be pulled from it; "
            "ask an administrator to connect it."
        )
    if connection.status != ConnectionStatus.AUTHORISED:
        raise PullRefused(
            "The Google Classroom connection is not authorised yet, so no grades can be pulled; "
            "ask an administrator to authorise it."
        )
    return connection


def check_pull_allowed(session: Session) -> GoogleConnection:
    """The Google connection, if grades may be pulled now (connected, permission on)."""
    google = _google_connection(session)
    sis = connections.current_connection(session)
    if sis is not None and not sis.teacher_export_enabled:
        raise PullRefused(
            "Classwork and mark exporting is switched off, so no grades were pulled from "
            "Google Classroom and nothing was sent to the SIS; an administrator can switch on "
            "'Enable classwork and mark exporting'.",
            "permission_off",
        )
    return google


def open_classroom_client(
    classroom: Classroom, settings: ClientSettings | None = None
) -> ClassroomClient:
    """A client for the current, authorised Google connection (its key unsealed in memory)."""
    with classroom.session() as session:
        connection = _google_connection(session)
        sealed, admin, endpoint = (
            connection.key_sealed,
            connection.admin_email,
            connection.api_endpoint,
        )
    if sealed is None:  # pragma: no cover - _google_connection refuses it
        raise NotConnected("The Google connection has no key (disconnected): connect again.")
    key = ServiceAccountKey.from_json(classroom.secret_box.open(sealed))
    client = ClassroomClient(
        key, admin_email=admin, api_endpoint=endpoint, settings=settings or ClientSettings()
    )
    client.call_observers.append(observe_google_call)  # Prometheus (operations/metrics.py)
    return client


def _chosen_links(
    session: Session, actor: Actor, class_ids: Sequence[int] | None, domain: str
) -> tuple[list[GoogleCourseLink], list[CoursePull]]:
    """The links to pull, and a refused CoursePull for each asked-for class that cannot be.
    Only courses of the connected `domain`: after a reconnect to another Workspace domain, a
    course of the old one is not asked for with the new domain's key (a pull of every class
    leaves it out, as it leaves out classes not in Classroom; the roster sync reports them)."""
    refused: list[CoursePull] = []
    if class_ids is None:
        rows = session.execute(
            select(GoogleCourseLink, Class)
            .join(Class, Class.id == GoogleCourseLink.class_id)
            .where(
                GoogleCourseLink.course_id.is_not(None),
                GoogleCourseLink.domain == domain,
                Class.active.is_(True),
            )
            .order_by(Class.id)
        ).all()
        links = [
            link
            for link, klass in rows
            if actor.is_admin
            or (actor.person_id is not None and teaches(session, actor.person_id, klass.id))
        ]
        return links, refused
    links = []
    for class_id in dict.fromkeys(class_ids):
        klass = session.get(Class, class_id)
        if klass is None:
            refused.append(
                CoursePull(class_id, f"class {class_id}", refused="There is no such class.")
            )
            continue
        if not actor.is_admin and (
            actor.person_id is None or not teaches(session, actor.person_id, class_id)
        ):
            refused.append(
                CoursePull(
                    class_id,
                    klass.title,
                    refused="You do not teach this class, so you cannot pull its grades; "
                    "only its teachers (or an administrator) can.",
                )
            )
            continue
        link = session.scalars(
            select(GoogleCourseLink).where(GoogleCourseLink.class_id == class_id)
        ).first()
        if link is None or link.course_id is None:
            refused.append(
                CoursePull(
                    class_id,
                    klass.title,
                    refused="This class is not in Google Classroom yet (the roster sync puts "
                    "it there), so it has no grades there to pull.",
                )
            )
            continue
        if link.domain != domain:
            refused.append(
                CoursePull(
                    class_id,
                    klass.title,
                    refused=f"This class is not in Classroom on the connected domain ({domain}): "
                    f"its course is in {link.domain}, the domain sislink was connected to "
                    "before, so no grades were pulled from it; the roster sync puts the class "
                    "in Classroom on the connected domain.",
                )
            )
            continue
        links.append(link)
    return links, refused


# ---- talking to Classroom -------------------------------------------------------------------


@dataclass
class _Tally:
    """Classroom API calls made (each call in a batch counts, as Google's quota counts them)."""

    calls: int = 0


def _list_many(
    client: ClassroomClient, makers: Sequence[tuple[ListMaker, str]], tally: _Tally
) -> list[list[dict[str, Any]] | ClassroomError]:
    """Every item of each list call (maker, the answer's key for its items), the calls' pages
    sent in batches: round one asks every first page at once, each further round the next
    pages of those that have more."""
    found: list[list[dict[str, Any]] | ClassroomError] = [[] for _ in makers]
    tokens: dict[int, str | None] = {i: None for i in range(len(makers))}
    seen: dict[int, set[str]] = {}  # each list's tokens so far: one given again never ends
    while tokens:
        order = list(tokens)
        tally.calls += len(order)
        outcomes = client.execute_many(
            [_bound(makers[i][0], tokens[i]) for i in order],
        )
        following: dict[int, str | None] = {}
        for index, outcome in zip(order, outcomes, strict=True):
            if outcome.error is not None:
                found[index] = outcome.error
                continue
            held = found[index]
            assert isinstance(held, list)
            held.extend(outcome.result.get(makers[index][1], []) or [])
            token = outcome.result.get("nextPageToken")
            if token:
                if str(token) in seen.setdefault(index, set()):
                    found[index] = MalformedAnswer(
                        f"Google Classroom gave the same nextPageToken twice while listing "
                        f"{makers[index][1]}, so the list never ends; stopped paging. Try "
                        "again later (if it keeps happening, report it to Google Workspace "
                        "support).",
                        status=200,
                    )
                    continue
                seen[index].add(str(token))
                following[index] = str(token)
        tokens = following
    return found


def _bound(maker: ListMaker, token: str | None) -> Callable[[Resource], HttpRequest]:
    return lambda service: maker(service, token)


def _course_work_list(course_id: str) -> ListMaker:
    def make(service: Resource, token: str | None) -> HttpRequest:
        extra = {"pageToken": token} if token else {}
        request: HttpRequest = (
            service.courses()
            .courseWork()
            .list(
                courseId=course_id,
                courseWorkStates=["PUBLISHED", "DRAFT"],
                fields=COURSE_WORK_FIELDS,
                **extra,
            )
        )
        return request

    return make


def _submission_list(course_id: str) -> ListMaker:
    def make(service: Resource, token: str | None) -> HttpRequest:
        extra = {"pageToken": token} if token else {}
        request: HttpRequest = (
            service.courses()
            .courseWork()
            .studentSubmissions()
            .list(courseId=course_id, courseWorkId="-", fields=SUBMISSION_FIELDS, **extra)
        )
        return request

    return make


def _student_list(course_id: str) -> ListMaker:
    def make(service: Resource, token: str | None) -> HttpRequest:
        extra = {"pageToken": token} if token else {}
        request: HttpRequest = (
            service.courses().students().list(courseId=course_id, fields=STUDENT_FIELDS, **extra)
        )
        return request

    return make


def _course_work_get(course_id: str, work_id: str) -> Callable[[Resource], HttpRequest]:
    def make(service: Resource) -> HttpRequest:
        request: HttpRequest = (
            service.courses().courseWork().get(courseId=course_id, id=work_id, fields=WORK_FIELDS)
        )
        return request

    return make


def _grading_periods(course_id: str) -> Callable[[Resource], HttpRequest]:
    def make(service: Resource) -> HttpRequest:
        request: HttpRequest = service.courses().getGradingPeriodSettings(courseId=course_id)
        return request

    return make


# ---- reading Classroom's values ---------------------------------------------------------------

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as Google writes it (any number of fraction digits, `Z`)."""
    if not text:
        return None
    trimmed = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text.strip(), count=1)
    try:
        moment = datetime.fromisoformat(trimmed.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _google_date(value: dict[str, Any] | None) -> date | None:
    if not value or not value.get("year"):
        return None
    try:
        return date(int(value["year"]), int(value.get("month") or 1), int(value.get("day") or 1))
    except (TypeError, ValueError):
        return None


def due_of(work: dict[str, Any]) -> datetime | None:
    """The courseWork's due moment in UTC (Classroom's dueDate and dueTime are UTC)."""
    day = _google_date(work.get("dueDate"))
    if day is None:
        return None
    clock = work.get("dueTime") or {}
    try:
        hours, minutes = int(clock.get("hours") or 0), int(clock.get("minutes") or 0)
    except (TypeError, ValueError):
        hours = minutes = 0
    if not (0 <= hours <= 23 and 0 <= minutes <= 59) and (hours, minutes) != (24, 0):
        hours = minutes = 0  # not a time of day: the due day itself
    # Google's TimeOfDay may be 24:00 (the end of the day), which datetime.time refuses; on
    # the last day a datetime can hold (9999-12-31) the end of the day is the day itself.
    start = datetime.combine(day, time(0), tzinfo=UTC)
    try:
        return start + timedelta(hours=hours, minutes=minutes)
    except OverflowError:
        return start


def _folded(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def _points(work: dict[str, Any]) -> float | None:
    value = work.get("maxPoints")
    if value is None:
        return None
    try:
        points = float(value)
    except (TypeError, ValueError):
        return None
    return points if points > 0 else None


def _grade(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ---- the pull -------------------------------------------------------------------------------


@dataclass
class _Course:
    """One link being pulled: what the database knew before, what Classroom said."""

    link_id: int
    class_id: int
    course_id: str
    watermark: str | None
    pulled_at: datetime | None
    known: dict[str, tuple[int, str | None]]  # courseWork id -> (coursework id, updateTime)
    deleted_before: set[str]  # courseWork ids whose coursework is deleted already
    pull: CoursePull
    works: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    fresh: set[str] = field(default_factory=set)  # courseWork to apply (new or changed)
    # courseWork that cannot be pulled whatever Classroom says of its submissions (a draft,
    # ungraded, a category the class lacks): reported, and nothing more asked for it.
    quiet: set[str] = field(default_factory=set)
    category_names: frozenset[str] = frozenset()  # the class's categories, folded
    to_apply: list[dict[str, Any]] = field(default_factory=list)  # submissions to apply
    students: dict[str, str] = field(default_factory=dict)  # Classroom userId -> email key
    members: set[str] = field(default_factory=set)  # the course's students' userIds, now
    periods: list[dict[str, Any]] = field(default_factory=list)
    seen_max: datetime | None = None
    seen_text: str | None = None
    listed_from: datetime | None = None  # (sislink's clock) when its lists were first asked

    def see(self, text: str | None) -> None:
        moment = parse_time(text)
        if moment is not None and (self.seen_max is None or moment > self.seen_max):
            self.seen_max, self.seen_text = moment, text


def pull_grades(
    classroom: Classroom,
    actor: Actor,
    *,
    class_ids: Sequence[int] | None = None,
    full: bool = False,
    client: ClassroomClient | None = None,
    job_id: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GooglePullReport:
    """Pull the grades of every linked course the actor may pull (`class_ids` None), or of
    those classes; see the module. Raises PullRefused when nothing may be pulled (not connected
    to Google Classroom, permission off); a class that cannot be pulled is reported, not raised.

    `should_stop` (its job cancelled) is asked before each class is written (asking
    Classroom writes nothing): once it says stop, nothing more is written (`report.stopped`;
    each class is written in a transaction of its own, so a class is pulled wholly or not at
    all)."""
    report = GooglePullReport()
    with classroom.session() as session:
        google = check_pull_allowed(session)
        links, refused = _chosen_links(session, actor, class_ids, google.domain)
        report.courses.extend(refused)
        categories: dict[int, set[str]] = {}
        for class_id, title in session.execute(
            select(Category.class_id, Category.title).where(
                Category.class_id.in_(sorted(link.class_id for link in links)),
                Category.active.is_(True),
            )
        ):
            categories.setdefault(class_id, set()).add(_folded(title))
        courses = [_course_of(session, link, categories) for link in links]
    if not courses:
        report.finished_at = utc_now()
        return report
    own = client is None
    used = client if client is not None else open_classroom_client(classroom)
    calls_before, tally = used.calls_made, _Tally()
    for course in courses:
        course.listed_from = utc_now()

    def stopping() -> bool:
        report.stopped = report.stopped or (should_stop is not None and should_stop())
        return report.stopped

    try:
        _ask_classroom(used, courses, tally, full=full)  # reads only: nothing to stop here
    finally:
        report.calls = used.calls_made - calls_before
        report.api_calls = tally.calls
        if own:
            used.close()
    for course in courses:
        if stopping():
            course.pull.refused = (
                "not pulled: the pull was stopped (its job cancelled) before this class; "
                "the next pull takes it"
            )
        elif course.pull.failed is None:
            busy = _take_class(classroom, job_id, course.class_id)
            if busy is not None:
                course.pull.refused = busy
            else:
                try:
                    _apply(classroom, actor, course, full=full, job_id=job_id)
                finally:
                    _give_back_class(classroom, job_id, course.class_id)
        report.courses.append(course.pull)
    report.courses.sort(key=lambda c: c.class_id)
    report.finished_at = utc_now()
    return report


def class_lock(class_id: int) -> str:
    """The lock a pull of this class holds while it writes (a job pulling only this class holds
    it as its own lock)."""
    return f"google_grades:class:{class_id}"


def _take_class(classroom: Classroom, job_id: int | None, class_id: int) -> str | None:
    """Take the class's pull lock for the job (None once held), so that two pulls never write
    one class at once; else why this job does not pull it. Pulls outside a job take none."""
    if job_id is None:
        return None
    try:
        with classroom.transaction() as session:
            job_service.take_lock(session, job_id, class_lock(class_id))
    except Conflict as busy:
        return f"Not pulled by this job: another grade pull is writing this class. {busy.message}"
    return None


def _give_back_class(classroom: Classroom, job_id: int | None, class_id: int) -> None:
    if job_id is None:
        return
    with classroom.transaction() as session:
        job = session.get(Job, job_id)
        if job is not None and job.lock_key != class_lock(class_id):
            job_service.release_lock(session, job_id, class_lock(class_id))


def _course_of(
    session: Session, link: GoogleCourseLink, categories: dict[int, set[str]]
) -> _Course:
    klass = session.get(Class, link.class_id)
    rows = session.execute(
        select(GoogleCourseworkLink, Coursework.state)
        .outerjoin(Coursework, Coursework.id == GoogleCourseworkLink.coursework_id)
        .where(GoogleCourseworkLink.link_id == link.id)
    ).all()
    known = {row.course_work_id: (row.coursework_id, row.update_time) for row, _ in rows}
    deleted_before = {
        row.course_work_id for row, state in rows if state in (None, CourseworkState.DELETED)
    }
    assert link.course_id is not None
    return _Course(
        link_id=link.id,
        class_id=link.class_id,
        course_id=link.course_id,
        watermark=link.grades_watermark,
        pulled_at=link.grades_pulled_at,
        known=known,
        deleted_before=deleted_before,
        category_names=frozenset(categories.get(link.class_id, ())),
        pull=CoursePull(
            link.class_id,
            klass.title if klass is not None else f"class {link.class_id}",
            course_id=link.course_id,
            alternate_link=link.alternate_link,
            watermark=link.grades_watermark,
        ),
    )


def _ask_classroom(
    client: ClassroomClient, courses: list[_Course], tally: _Tally, *, full: bool
) -> None:
    """Round one: every course's courseWork and submissions (batched across courses); round
    two, only for courses with something to apply: their students and grading periods."""
    makers: list[tuple[ListMaker, str]] = []
    for course in courses:
        makers.append((_course_work_list(course.course_id), "courseWork"))
        makers.append((_submission_list(course.course_id), "studentSubmissions"))
    listed = _list_many(client, makers, tally)
    for index, course in enumerate(courses):
        works, submissions = listed[2 * index], listed[2 * index + 1]
        for answer in (works, submissions):
            if isinstance(answer, ClassroomError):
                course.pull.failed = (
                    f"Google Classroom could not be asked for the course's classwork, so "
                    f"nothing was pulled for this class: {answer}"
                )
        if course.pull.failed is not None:
            continue
        assert isinstance(works, list) and isinstance(submissions, list)
        course.works, course.submissions = _unique(works), _unique(submissions)
    _confirm_absent(client, courses, tally)
    for course in courses:
        if course.pull.failed is None:
            _choose(course, full=full)
    needing_students = [c for c in courses if c.pull.failed is None and c.to_apply]
    needing_periods = [
        c
        for c in courses
        if c.pull.failed is None
        and any(
            w.get("gradingPeriodId")
            for w in c.works
            if str(w.get("id")) in c.fresh and str(w.get("id")) not in c.quiet
        )
    ]
    students = _list_many(
        client, [(_student_list(c.course_id), "students") for c in needing_students], tally
    )
    for course, answer in zip(needing_students, students, strict=True):
        if isinstance(answer, ClassroomError):
            course.pull.failed = (
                f"Google Classroom could not be asked for the course's students, so nothing "
                f"was pulled for this class: {answer}"
            )
            continue
        for member in answer:
            if member.get("userId"):
                course.members.add(str(member["userId"]))
            email = (member.get("profile") or {}).get("emailAddress")
            if member.get("userId") and email:
                course.students[str(member["userId"])] = str(email).strip().casefold()
    tally.calls += len(needing_periods)
    outcomes = client.execute_many([_grading_periods(c.course_id) for c in needing_periods])
    for course, outcome in zip(needing_periods, outcomes, strict=True):
        if outcome.error is not None:
            course.pull.failed = (
                f"Google Classroom could not be asked for the course's grading periods, so "
                f"nothing was pulled for this class: {outcome.error}"
            )
            continue
        course.periods = list(outcome.result.get("gradingPeriods", []) or [])


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item once (by its courseWork's id and its id, the latest updateTime kept): a list
    read page by page while Classroom changes can give an item on two pages."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        key = (str(item.get("courseWorkId") or ""), str(item.get("id")))
        held = kept.get(key)
        if held is None or (parse_time(item.get("updateTime")) or _EPOCH) > (
            parse_time(held.get("updateTime")) or _EPOCH
        ):
            kept[key] = item
    return list(kept.values())


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _confirm_absent(client: ClassroomClient, courses: list[_Course], tally: _Tally) -> None:
    """Pulled work missing from a course's courseWork list is asked for by itself: only work
    Classroom answers 404 (or DELETED) for is gone. A list is read page by page, newest change
    first, so work changed or deleted meanwhile shifts the pages: an item can be missing from
    one listing though it is still in Classroom (and deleting it would delete its lineItem and
    results from the SIS). Found, it is pulled as if listed."""
    asks: list[tuple[_Course, str]] = []
    for course in courses:
        if course.pull.failed is not None:
            continue
        listed = {str(w.get("id")) for w in course.works if w.get("state") != "DELETED"}
        asks.extend(
            (course, work_id)
            for work_id in course.known
            if work_id not in listed and work_id not in course.deleted_before
        )
    if not asks:
        return
    tally.calls += len(asks)
    outcomes = client.execute_many([_course_work_get(c.course_id, w) for c, w in asks])
    for (course, _), outcome in zip(asks, outcomes, strict=True):
        if outcome.error is not None:
            if not isinstance(outcome.error, GoogleNotFound):
                course.pull.failed = (
                    f"Google Classroom could not be asked whether classwork missing from the "
                    f"course's list was deleted, so nothing was pulled for this class: "
                    f"{outcome.error}"
                )
            continue
        if isinstance(outcome.result, dict) and outcome.result.get("state") != "DELETED":
            course.works.append(outcome.result)


def _choose(course: _Course, *, full: bool) -> None:
    """Which courseWork and submissions to apply: new or changed work (all its submissions),
    submissions updated since the watermark, and the submissions of work that fell due since
    the last pull."""
    now = utc_now()
    watermark = parse_time(course.watermark)
    due_since: set[str] = set()
    for work in course.works:
        work_id = str(work.get("id"))
        course.see(work.get("updateTime"))
        if work.get("state") != "PUBLISHED":
            course.fresh.add(work_id)  # a draft: reported each pull, never linked
            course.quiet.add(work_id)
            continue
        known = course.known.get(work_id)
        if full or known is None or known[1] != work.get("updateTime"):
            course.fresh.add(work_id)
            category = _folded((work.get("gradeCategory") or {}).get("name"))
            if known is None and (
                _points(work) is None or (category and category not in course.category_names)
            ):
                course.quiet.add(work_id)
        due = due_of(work)
        if due is not None and due <= now and (course.pulled_at is None or due > course.pulled_at):
            due_since.add(work_id)
    for submission in course.submissions:
        course.see(submission.get("updateTime"))
        work_id = str(submission.get("courseWorkId"))
        updated = parse_time(submission.get("updateTime"))
        if work_id in course.quiet:
            continue
        if (
            full
            or watermark is None
            or work_id in course.fresh
            or work_id in due_since
            or (updated is not None and updated > watermark)
        ):
            course.to_apply.append(submission)


# Why a grade above the class's extra-credit limit was not taken (no pre-flight Reason says it:
# every other way of setting a mark refuses such a mark before it exists).
ABOVE_LIMIT = "above_extra_credit_limit"
# Why courseWork whose title or description holds a NUL character was not taken: PostgreSQL
# refuses it in text (one such item stopped the whole pull), and the SIS is sent that text.
NUL_CHARACTER = "nul_character"


def _shown(text: str) -> str:
    """Google's text as a report keeps it: a NUL written out as \\x00 (reports are stored)."""
    return text.replace("\x00", "\\x00")


def _item(
    course: _Course,
    reason: Reason | str,
    message: str,
    title: str,
    *,
    kind: str = "lineItem",
    coursework_id: int = 0,
    student: str | None = None,
) -> ItemReport:
    return ItemReport(
        kind=kind,
        coursework_id=coursework_id,
        coursework_title=_shown(title),
        outcome=Outcome.SKIPPED,
        sourced_id="",
        at=utc_now(),
        student=student,
        reason=message,
        skip_reason=reason.value if isinstance(reason, Reason) else reason,
    )


@dataclass(frozen=True)
class _Fields:
    title: str
    description: str
    max_points: float
    due_date: datetime | None
    assign_date: datetime | None
    category_id: int | None
    grading_period_id: int | None


def _work_fields(
    course: _Course,
    work: dict[str, Any],
    categories: dict[str, int],
    titles: dict[int, str],
    periods: list[GradingPeriod],
) -> _Fields | ItemReport:
    """The coursework's fields from a published courseWork, or why it cannot go to the SIS."""
    title = str(work.get("title") or "(untitled)")
    odd = [name for name in ("title", "description") if "\x00" in str(work.get(name) or "")]
    if odd:
        return _item(
            course,
            NUL_CHARACTER,
            f"Its {' and '.join(odd)} in Google Classroom hold{'s' if len(odd) == 1 else ''} a "
            "NUL character (invisible, often pasted from a PDF), which neither sislink nor the "
            f"SIS can store: retype the {' and '.join(odd)} in Classroom.",
            title,
        )
    points = _points(work)
    if points is None:
        return _item(
            course,
            Reason.NO_POINTS,
            "It is ungraded in Google Classroom (no points), so the SIS has nothing to record: "
            "give it points in Classroom if it should count.",
            title,
        )
    category_id: int | None = None
    category = work.get("gradeCategory") or {}
    if category.get("name"):
        category_id = categories.get(_folded(category["name"]))
        if category_id is None:
            names = ", ".join(sorted(titles.values())) or "none"
            return _item(
                course,
                Reason.CATEGORY_NOT_IN_SIS,
                f"Its grade category {category['name']!r} in Google Classroom is not one of the "
                f"class's SIS categories ({names}): choose one of those in Classroom, or ask "
                "the SIS administrator to add it.",
                title,
            )
    period_id: int | None = None
    if work.get("gradingPeriodId"):
        chosen = next(
            (p for p in course.periods if str(p.get("id")) == str(work["gradingPeriodId"])), None
        )
        found = _period_for(chosen, periods) if chosen is not None else None
        if found is None:
            named = repr(chosen.get("title")) if chosen else f"(id {work['gradingPeriodId']})"
            spans = (
                "; ".join(f"{p.title} {p.start_date} to {p.end_date}" for p in periods)
                or "the class has none"
            )
            return _item(
                course,
                Reason.GRADING_PERIOD_NOT_IN_SIS,
                f"Its grading period {named} in Google Classroom is not one of the class's SIS "
                f"grading periods ({spans}): choose one of those in Classroom.",
                title,
            )
        period_id = found
    creation = parse_time(work.get("scheduledTime")) or parse_time(work.get("creationTime"))
    return _Fields(
        title=title[:500],
        description=str(work.get("description") or ""),
        max_points=points,
        due_date=due_of(work),
        assign_date=creation,
        category_id=category_id,
        grading_period_id=period_id,
    )


def _period_for(chosen: dict[str, Any], periods: list[GradingPeriod]) -> int | None:
    """The class term's grading period matching a Classroom one: by title, else by dates."""
    title = _folded(str(chosen.get("title") or ""))
    for period in periods:
        if title and _folded(period.title) == title:
            return period.id
    start, end = _google_date(chosen.get("startDate")), _google_date(chosen.get("endDate"))
    for period in periods:
        if start is not None and period.start_date == start and period.end_date == end:
            return period.id
    return None


def _apply(
    classroom: Classroom, actor: Actor, course: _Course, *, full: bool, job_id: int | None
) -> None:
    """Write what Classroom said into the class, changing only what differs; keep the
    troubleshoot report when something cannot go to the SIS."""
    pull = course.pull
    now = utc_now()
    with classroom.transaction() as session:
        link = session.get(GoogleCourseLink, course.link_id)
        klass = session.get(Class, course.class_id)
        if link is None or klass is None:
            pull.failed = "The class or its Classroom course link was removed during the pull."
            return
        titles = {
            c.id: c.title
            for c in session.scalars(
                select(Category).where(Category.class_id == klass.id, Category.active.is_(True))
            )
        }
        categories = {_folded(title): category_id for category_id, title in titles.items()}
        periods = _class_periods(session, klass)
        work_links = {
            row.course_work_id: row
            for row in session.scalars(
                select(GoogleCourseworkLink).where(GoogleCourseworkLink.link_id == link.id)
            )
        }
        pulled_before = {
            w.id: w
            for w in session.scalars(
                select(Coursework).where(
                    Coursework.id.in_(sorted(r.coursework_id for r in work_links.values()))
                )
            )
        }
        listed: set[str] = set()
        live: dict[str, Coursework] = {}  # published courseWork id -> its coursework
        for work in course.works:
            work_id = str(work.get("id"))
            title = str(work.get("title") or "(untitled)")
            if work.get("state") == "DELETED":
                continue
            listed.add(work_id)
            row = work_links.get(work_id)
            if work.get("state") != "PUBLISHED":
                if row is None:
                    pull.items.append(
                        _item(
                            course,
                            Reason.DRAFT_COURSEWORK,
                            "It is a draft in Google Classroom: publish it there to send it "
                            "to the SIS.",
                            title,
                        )
                    )
                continue
            existing = pulled_before.get(row.coursework_id) if row is not None else None
            if existing is not None:
                live[work_id] = existing
            if work_id not in course.fresh:
                pull.coursework["unchanged"] += 1
                continue
            fields = _work_fields(course, work, categories, titles, periods)
            if isinstance(fields, ItemReport):
                # Kept out: a coursework pulled before stays as it was (the link's updateTime is
                # not advanced, so it is looked at again next time).
                pull.items.append(fields)
                if existing is None:
                    live.pop(work_id, None)
                continue
            if existing is None:
                existing = Coursework(
                    class_id=klass.id,
                    state=CourseworkState.PUBLISHED,
                    export_to_sis=True,
                    **_as_columns(fields),
                )
                session.add(existing)
                session.flush()
                if row is None:
                    row = GoogleCourseworkLink(
                        link_id=link.id, course_work_id=work_id, coursework_id=existing.id
                    )
                    session.add(row)
                else:
                    row.coursework_id = existing.id
                pull.coursework["created"] += 1
            elif _update_work(existing, fields):
                pull.coursework["updated"] += 1
            else:
                pull.coursework["unchanged"] += 1
            assert row is not None  # made above for new work; pulled work has one
            row.update_time = work.get("updateTime")
            work_links[work_id] = row
            live[work_id] = existing
        for work_id, row in work_links.items():
            if work_id in listed:
                continue
            gone = pulled_before.get(row.coursework_id)
            if gone is not None and gone.state != CourseworkState.DELETED:
                gone.state = CourseworkState.DELETED
                pull.coursework["deleted"] += 1
        session.flush()
        for work_id in _apply_marks(session, course, klass, live, now):
            # A grade of it was kept out (its student not in the class, above the limit): the
            # work is looked at again next pull, so the grade is taken once that is put right,
            # though nothing changes in Classroom (the watermark has passed its submission).
            work_links[work_id].update_time = None
        seen = _watermark_seen(course)
        if seen is not None and seen != link.grades_watermark:
            newer = parse_time(seen)
            older = parse_time(link.grades_watermark)
            if older is None or (newer is not None and newer > older):
                link.grades_watermark = seen
        # When Classroom was asked (not now): work falling due since is looked at again.
        link.grades_pulled_at = course.listed_from or now
        if job_id is not None:
            link.last_grade_job_id = job_id
        pull.watermark = link.grades_watermark
        pull.alternate_link = link.alternate_link
        _keep_report(session, actor, klass, pull, job_id)
        if pull.changed:
            record_event(
                session,
                actor,
                "google.grades_pulled",
                f"class:{klass.id}",
                {
                    "course_id": course.course_id,
                    "coursework": dict(pull.coursework),
                    "marks": dict(pull.marks),
                },
            )


# How far behind sislink's clock Google's may be when it is checked against updateTime.
CLOCK_SKEW = timedelta(seconds=60)


def _watermark_seen(course: _Course) -> str | None:
    """The course's new watermark: the greatest updateTime seen; but when something seen was
    changed after its lists were first asked (changed during the pull), no later than that
    moment less the clock skew. Classroom's lists are read page by page: a submission changed
    after its page was read is seen unchanged, while one changed later on a page read after it
    is seen, and the watermark must not pass the first (it would never be looked at again).
    Everything changed since is looked at again next pull (what did not change touches
    nothing)."""
    if course.seen_max is None or course.listed_from is None:
        return course.seen_text
    if course.seen_max < course.listed_from:
        return course.seen_text
    held = course.listed_from - CLOCK_SKEW
    return held.strftime("%Y-%m-%dT%H:%M:%S.") + f"{held.microsecond:06d}Z"


def _class_periods(session: Session, klass: Class) -> list[GradingPeriod]:
    """The grading periods a Classroom one may be: the class term's, and those of the SIS class
    it is linked to (as the SIS said when it was linked or last exported)."""
    sis_ids = [
        str(p.get("sourcedId"))
        for p in (_sis_periods(session, klass.id) or [])
        if p.get("sourcedId")
    ]
    clauses = []
    if klass.term_id is not None:
        clauses.append(GradingPeriod.term_id == klass.term_id)
    if sis_ids:
        clauses.append(GradingPeriod.sis_sourced_id.in_(sis_ids))
    if not clauses:
        return []
    return list(
        session.scalars(
            select(GradingPeriod)
            .where(or_(*clauses), GradingPeriod.active.is_(True))
            .order_by(GradingPeriod.start_date, GradingPeriod.id)
        )
    )


def _sis_periods(session: Session, class_id: int) -> list[dict[str, Any]] | None:
    row = session.scalars(
        select(ClassExportSettings).where(ClassExportSettings.class_id == class_id)
    ).first()
    return list(row.sis_grading_periods or []) if row is not None else None


def _as_columns(fields: _Fields) -> dict[str, Any]:
    return {
        "title": fields.title,
        "description": fields.description,
        "max_points": fields.max_points,
        "due_date": fields.due_date,
        "assign_date": fields.assign_date,
        "category_id": fields.category_id,
        "grading_period_id": fields.grading_period_id,
    }


def _update_work(work: Coursework, fields: _Fields) -> bool:
    changed = False
    for name, value in _as_columns(fields).items():
        if getattr(work, name) != value:
            setattr(work, name, value)
            changed = True
    if work.state != CourseworkState.PUBLISHED:
        work.state = CourseworkState.PUBLISHED
        changed = True
    return changed


def _apply_marks(
    session: Session,
    course: _Course,
    klass: Class,
    live: dict[str, Coursework],
    now: datetime,
) -> set[str]:
    """Apply the chosen submissions; answers the courseWork ids with a grade kept out."""
    pull = course.pull
    kept_out: set[str] = set()
    wanted = [s for s in course.to_apply if str(s.get("courseWorkId")) in live]
    if not wanted:
        return kept_out
    enrolled = {
        (person.email_key or ""): person
        for person in session.scalars(
            select(Person)
            .join(Enrolment, Enrolment.person_id == Person.id)
            .where(
                Enrolment.class_id == klass.id,
                Enrolment.role == EnrolmentRole.STUDENT,
                Enrolment.active.is_(True),
            )
        )
        if person.email_key
    }
    work_ids = sorted({live[str(s.get("courseWorkId"))].id for s in wanted})
    marks = {
        (m.coursework_id, m.student_id): m
        for m in session.scalars(select(Mark).where(Mark.coursework_id.in_(work_ids)))
    }
    works_by_id = {str(w.get("id")): w for w in course.works}
    limit = extra_credit_limit(session, klass.id)
    for submission in wanted:
        work = live[str(submission.get("courseWorkId"))]
        if work.state == CourseworkState.DELETED:
            continue
        source = works_by_id.get(str(submission.get("courseWorkId")), {})
        values = _mark_values(submission, due_of(source), now)
        if str(submission.get("userId")) not in course.members:
            # Not a student of the course now (removed from it; Classroom still lists their
            # work): nothing to take, and nothing to say about them.
            continue
        email = course.students.get(str(submission.get("userId")))
        student = enrolled.get(email or "")
        if student is None:
            if values["score"] is not None or values["missing"]:
                who = email or f"Classroom user {submission.get('userId')}"
                pull.items.append(
                    _item(
                        course,
                        Reason.STUDENT_NOT_IN_SIS,
                        f"{who} is a student of the Google Classroom course but not of this "
                        "class (its SIS roster), so their grade cannot go to the SIS: ask the "
                        "SIS administrator to enrol them, or remove them from the course.",
                        work.title,
                        kind="result",
                        coursework_id=work.id,
                        student=who,
                    )
                )
                kept_out.add(str(submission.get("courseWorkId")))
            continue
        score = values["score"]
        points = work.max_points
        if score is not None and points is not None and score > points * limit:
            pull.items.append(
                _item(
                    course,
                    ABOVE_LIMIT,
                    f"The grade {score:g} of {points:g} in Google Classroom is above the class's "
                    f"extra-credit limit ({limit:g} times the points), so it was not taken: "
                    "correct it in Classroom, or raise the limit in the class's export choices.",
                    work.title,
                    kind="result",
                    coursework_id=work.id,
                    student=f"{student.name} ({student.email})",
                )
            )
            kept_out.add(str(submission.get("courseWorkId")))
            continue
        mark = marks.get((work.id, student.id))
        if mark is None:
            if values["score"] is None and not values["missing"] and not values["late"]:
                continue  # nothing to say yet: no empty mark rows
            mark = Mark(coursework_id=work.id, student_id=student.id, excused=False, comment="")
            for name, value in values.items():
                setattr(mark, name, value)
            session.add(mark)
            marks[(work.id, student.id)] = mark
            pull.marks["created"] += 1
            continue
        changed = False
        for name, value in values.items():
            if getattr(mark, name) != value:
                setattr(mark, name, value)
                changed = True
        pull.marks["updated" if changed else "unchanged"] += 1
    return kept_out


def _mark_values(submission: dict[str, Any], due: datetime | None, now: datetime) -> dict[str, Any]:
    assigned = _grade(submission.get("assignedGrade"))
    draft = _grade(submission.get("draftGrade"))
    state = str(submission.get("state") or "")
    if assigned is not None:
        score, mark_state = assigned, MarkState.RETURNED
    elif draft is not None:
        score, mark_state = draft, MarkState.DRAFT
    else:
        score = None
        mark_state = MarkState.RETURNED if state == "RETURNED" else MarkState.DRAFT
    missing = score is None and state in NOT_TURNED_IN and due is not None and due <= now
    if missing:
        # Classroom shows the student "Missing" once the work is past due: it is returned.
        mark_state = MarkState.RETURNED
    return {
        "score": score,
        "state": mark_state.value,
        "missing": missing,
        "late": bool(submission.get("late")),
    }


def _keep_report(
    session: Session, actor: Actor, klass: Class, pull: CoursePull, job_id: int | None
) -> None:
    """Keep the pull's "cannot go to the SIS" items in the class's troubleshoot report (the
    mark export history), when there are any and they are news: a pull that changed something,
    or with an item the last pull's kept report did not have. An unchanged nightly pull keeps
    none."""
    if not pull.items:
        return
    said = [item.in_words() for item in pull.items]
    if not pull.changed:
        recent = session.scalars(
            select(MarkExportReport)
            .where(MarkExportReport.class_id == klass.id)
            .order_by(MarkExportReport.started_at.desc(), MarkExportReport.id.desc())
            .limit(20)
        ).all()
        last = next((r for r in recent if (r.summary or {}).get("source") == PULL_SOURCE), None)
        if last is not None and set(said) <= set((last.summary or {}).get("said") or []):
            # Nothing new to say (work looked at again says what it said; submissions not
            # looked at again since are still in that report).
            pull.report_id = last.id
            return
    link = connections.class_link(session, klass.id)
    report = ExportReport(
        klass.id, klass.title, link.sis_class_sourced_id if link else None, dry_run=False
    )
    report.items.extend(pull.items)
    report.finished_at = utc_now()
    row = MarkExportReport(
        class_id=klass.id,
        job_id=job_id,
        requested_by_id=actor.person_id,
        dry_run=False,
        outcome=report.outcome.value,
        writes=0,
        started_at=report.started_at,
        finished_at=report.finished_at,
        summary={
            **report.summary(),
            "source": PULL_SOURCE,
            "said": said,
            "pulled": {"coursework": dict(pull.coursework), "marks": dict(pull.marks)},
        },
        items=report.json_items(),
    )
    session.add(row)
    session.flush()
    pull.report_id = row.id


# ---- what `--export` exports ------------------------------------------------------------------

# A class whose last export ended so is exported again by `--export` (the export finishes it).
UNFINISHED_EXPORTS = frozenset({"partial", "failed", "stopped"})


def classes_to_export(classroom: Classroom, report: GooglePullReport) -> list[int]:
    """The pulled classes an export would send something for: those the pull changed, and
    those with coursework or marks changed since their last export (an earlier pull without
    `--export`, or marks set in sislink) or whose last export did not finish. A quiet class is
    left out, so a nightly pull over quiet courses asks the SIS nothing."""
    pulled = [c.class_id for c in report.courses if c.refused is None and c.failed is None]
    chosen = set(report.changed_class_ids)
    if not pulled:
        return sorted(chosen)
    with classroom.session() as session:
        latest_work = dict(
            session.execute(
                select(Coursework.class_id, func.max(Coursework.updated_at))
                .where(Coursework.class_id.in_(pulled))
                .group_by(Coursework.class_id)
            ).all()
        )
        latest_mark = dict(
            session.execute(
                select(Coursework.class_id, func.max(Mark.updated_at))
                .join(Mark, Mark.coursework_id == Coursework.id)
                .where(Coursework.class_id.in_(pulled))
                .group_by(Coursework.class_id)
            ).all()
        )
        for class_id in pulled:
            changed_at = max(
                (t for t in (latest_work.get(class_id), latest_mark.get(class_id)) if t),
                default=None,
            )
            if changed_at is None or class_id in chosen:
                continue  # nothing to send, or chosen already
            if changed_at.tzinfo is None:
                changed_at = changed_at.replace(tzinfo=UTC)
            last = _last_export(session, class_id)
            if last is None or last[1] in UNFINISHED_EXPORTS or changed_at > last[0]:
                chosen.add(class_id)
    return sorted(chosen)


def _last_export(session: Session, class_id: int) -> tuple[datetime, str] | None:
    """When the class's last export (not a dry run, not a pull's kept report) started, and how
    it ended."""
    rows = session.execute(
        select(MarkExportReport.started_at, MarkExportReport.outcome, MarkExportReport.summary)
        .where(MarkExportReport.class_id == class_id, MarkExportReport.dry_run.is_(False))
        .order_by(MarkExportReport.started_at.desc(), MarkExportReport.id.desc())
        .limit(20)
    ).all()
    for started, outcome, summary in rows:
        if (summary or {}).get("source") != PULL_SOURCE:
            return started, outcome
    return None


# ---- what the teacher's page shows ------------------------------------------------------------


def course_view(classroom: Classroom, actor: Actor, class_id: int) -> dict[str, Any]:
    """The class's Classroom course (its link) and its last grade pull, for its teachers."""
    with classroom.session() as session:
        klass = session.get(Class, class_id)
        if klass is None:
            raise NotFound(f"There is no class with id {class_id}; it may have been deleted.")
        if not actor.is_admin and (
            actor.person_id is None or not teaches(session, actor.person_id, class_id)
        ):
            raise PermissionDenied(
                f"You do not teach the class with id {class_id}, so you cannot see its "
                "Google Classroom course."
            )
        link = session.scalars(
            select(GoogleCourseLink).where(GoogleCourseLink.class_id == class_id)
        ).first()
        # Only a course of the connected domain is the class's (as google_roster.course_links):
        # after a reconnect to another domain, the old domain's course is not shown.
        domain = session.scalar(
            select(GoogleConnection.domain).where(GoogleConnection.current_slot.is_not(None))
        )
        if link is None or (domain is not None and link.domain != domain):
            return {"class_id": class_id, "class": klass.title, "course": None, "last_pull": None}
        pulled_works = session.scalars(
            select(GoogleCourseworkLink.coursework_id).where(
                GoogleCourseworkLink.link_id == link.id
            )
        ).all()
        last_report = session.scalars(
            select(MarkExportReport)
            .where(MarkExportReport.class_id == class_id)
            .order_by(MarkExportReport.started_at.desc(), MarkExportReport.id.desc())
            .limit(20)
        ).all()
        kept = next(
            (r for r in last_report if (r.summary or {}).get("source") == PULL_SOURCE), None
        )
        job = session.get(Job, link.last_grade_job_id) if link.last_grade_job_id else None
        entry: dict[str, Any] = next(
            (
                c
                for c in ((job.report or {}).get("courses") or [] if job is not None else [])
                if c.get("class_id") == class_id
            ),
            {},
        )
        return {
            "class_id": class_id,
            "class": klass.title,
            "course": {
                "course_id": link.course_id,
                "state": link.course_state,
                "alternate_link": link.alternate_link,
                "owner_email": link.owner_email,
            },
            "last_pull": {
                "at": link.grades_pulled_at.isoformat() if link.grades_pulled_at else None,
                "job_id": link.last_grade_job_id,
                "status": job.status if job is not None else None,
                "outcome": entry.get("outcome"),
                "coursework": entry.get("coursework"),
                "marks": entry.get("marks"),
                "watermark": link.grades_watermark,
                "coursework_pulled": len(pulled_works),
                "report_id": kept.id if kept is not None else None,
                "not_sent": (kept.summary or {}).get("said", []) if kept is not None else [],
            },
        }
