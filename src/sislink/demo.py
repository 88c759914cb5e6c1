"""The demo (`make demo`, `sislink demo`): the whole flow of "Connect Classroom to your SIS" on a
fresh classroom (a temporary SISLINK_HOME) against the built-in SIS on loopback.

First a check of the SIS: Google Classroom's OneRoster 1.2 call sequence, one plain HTTP call
(or a few) per step. Then what an administrator and a teacher do, through sislink's own services:
connect (with the Host URL the SIS prints), authorise, import the roster, add coursework and
marks in a few of the SIS's sample teacher's classes, link them, export; disconnect, reconnect,
export again; export once more after forgetting what was sent. After each export the SIS's
lineItem and result counts are printed: they must stay equal (the same derived ids are PUT
again), or the demo exits non-zero.

The local Google Classroom (`sislink google serve`'s, seeded with the SIS's seed: the same
district's people) runs beside the SIS; the administrator connects and authorises it with its key
file, through the same service as `sislink google connect` and `authorise`. The key is never
printed, only its file's path.

Then the same district teaching in Google Classroom (issue 13): the administrator syncs the
roster into Classroom (a job; courses created PROVISIONED); the teacher accepts their courses and,
through Google's client library as the teacher (the service account's delegation, Google's
batches), sets the grade categories (on the course's settings page: the API cannot), makes
published courseWork with points, a due date and a category, and grades it (most returned, some
left as drafts); the teacher pulls the grades and exports them to the SIS; the administrator
disconnects and reconnects both the SIS and Google; the roster is synced again (no writes),
pulled and exported again (nothing sent), and once more after one grade changed (one write).
After every Google run the SIS's lineItem and result counts and Classroom's course count are
printed: equal (from the first pull on), or the demo exits non-zero. The demo's local Classroom
runs with its quotas raised (printed), so that the roster sync takes seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
import httpx
from google.oauth2 import service_account
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, ClassroomError, open_classroom
from sislink.classroom.models import (
    Category,
    Class,
    ConnectionStatus,
    EnrolmentRole,
    GradingPeriod,
    Role,
)
from sislink.classroom.services import coursework as coursework_service
from sislink.classroom.services import marks as mark_service
from sislink.classroom.services import people
from sislink.classroom.services.classes import classes_taught_by, members
from sislink.googleclassroom import SCOPES, ClientSettings
from sislink.googleclassroom import ClassroomError as GoogleClassroomError
from sislink.googleclassroom.emulator.app import ClassroomConfig
from sislink.googleclassroom.emulator.server import RunningClassroom, running_classroom
from sislink.jobs.google_grades import run_grade_pull
from sislink.jobs.google_roster import run_google_roster_sync
from sislink.jobs.mark_export import ExportRun, run_all_exports, run_class_export
from sislink.jobs.roster import run_roster_import
from sislink.oneroster.consumer import OneRosterError
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.oneroster.versions import CLASSROOM_SCOPES, spec_for
from sislink.settings import Settings
from sislink.sync import class_link, connection, google_connection
from sislink.sync.errors import SyncError
from sislink.sync.export_report import Outcome
from sislink.sync.google_grades import PullRefused
from sislink.sync.google_roster import (
    course_links,
    google_connection_for_sync,
    open_google_client,
)
from sislink.sync.mark_export import forget_ledger_for_class
from sislink.sync.preflight import ExportRefused
from sislink.sync.sis_client import open_sis_client

DEFAULT_PROFILE = "generic-1.2"
DEFAULT_STUDENTS = 300
DEFAULT_CLASSES = 3
ADMIN_EMAIL = "demo-admin@sislink.example"
# Coursework the teacher adds to each class: title, max points, category title.
COURSEWORK = (
    ("Reading log", 10, "Homework"),
    ("Unit test", 50, "Tests"),
    ("Project", 20, "Assignments"),
)
# What the teacher makes in Google Classroom in each of those classes: title, max points,
# grade category. Every DRAFT_EVERY-th student's grade stays a draft (not returned).
CLASSROOM_WORK = (
    ("Essay (made in Classroom)", 20, "Assignments"),
    ("Quiz (made in Classroom)", 10, "Tests"),
)
DRAFT_EVERY = 6
# The local Classroom's quotas in the demo (calls a minute, per user and per client), and the
# client's pace to match: Google's are 1,200 per user and 3,000 per client, at which a roster
# sync of the demo district (about 2,500 calls) takes two minutes. Said when the demo starts.
DEMO_QUOTA_PER_MINUTE = 120_000
DEMO_CLIENT = ClientSettings(
    calls_per_minute_per_user=DEMO_QUOTA_PER_MINUTE, calls_per_minute=DEMO_QUOTA_PER_MINUTE
)
GOOGLE_BATCH = 50  # Google's batch endpoint takes at most 50 calls


class StepFailed(Exception):
    """A step of the sequence did not hold; the message says what was expected."""


@dataclass
class _Run:
    sis: RunningProvider
    client: httpx.Client
    found: dict[str, Any] = field(default_factory=dict)

    @property
    def roster(self) -> str:
        return f"{self.sis.base_url}/rostering/v1p2"

    @property
    def gradebook(self) -> str:
        return f"{self.sis.base_url}/gradebook/v1p2"

    def expect(self, response: httpx.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise StepFailed(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}, expected {' or '.join(map(str, statuses))}: {response.text[:300]}"
            )
        return response.json() if response.content else None


def _token(run: _Run) -> str:
    response = run.client.post(
        run.sis.token_url,
        auth=(run.sis.client_id, run.sis.client_secret),
        data={
            "grant_type": "client_credentials",
            "scope": " ".join(spec_for("1.2").scope_uris(CLASSROOM_SCOPES)),
        },
    )
    body = run.expect(response, 200)
    run.client.headers["Authorization"] = f"Bearer {body['access_token']}"
    return f"token issued, expires in {body['expires_in']} s"


def _teachers(run: _Run) -> str:
    body = run.expect(run.client.get(f"{run.roster}/teachers", params={"limit": 1}), 200)
    return f"{len(body['users'])} teacher on the first page"


def _teacher_by_email(run: _Run) -> str:
    params: dict[str, str | int] = {"filter": f"email='{run.sis.teacher_email}'", "limit": 10000}
    users = run.expect(run.client.get(f"{run.roster}/teachers", params=params), 200)["users"]
    if len(users) != 1:
        raise StepFailed(
            f"expected exactly one teacher with email {run.sis.teacher_email}, got {len(users)}"
        )
    run.found["teacher"] = users[0]
    return f"{users[0]['givenName']} {users[0]['familyName']} is {users[0]['sourcedId']}"


def _teacher_classes(run: _Run) -> str:
    url = f"{run.roster}/teachers/{run.found['teacher']['sourcedId']}/classes"
    classes = run.expect(
        run.client.get(url, params={"limit": 10000, "filter": "status='active'"}), 200
    )["classes"]
    if not classes or not all(c["school"]["sourcedId"] and c["terms"] for c in classes):
        raise StepFailed("expected active classes, each with a school and terms")
    run.found["class"] = classes[0]
    return f"{len(classes)} classes, first: {classes[0]['title']}"


def _class_students(run: _Run) -> str:
    url = f"{run.roster}/classes/{run.found['class']['sourcedId']}/students"
    students = run.expect(run.client.get(url, params={"limit": 10000}), 200)["users"]
    if not students or not all(s.get("email") for s in students):
        raise StepFailed("expected students with emails")
    run.found["student"] = students[0]
    return f"{len(students)} students"


def _categories(run: _Run) -> str:
    url = f"{run.gradebook}/classes/{run.found['class']['sourcedId']}/categories"
    categories = run.expect(run.client.get(url, params={"limit": 10000}), 200)["categories"]
    if not categories:
        raise StepFailed("expected at least one category")
    run.found["category"] = categories[0]
    return ", ".join(c["title"] for c in categories)


def _grading_periods(run: _Run) -> str:
    term = run.found["class"]["terms"][0]["sourcedId"]
    periods = run.expect(
        run.client.get(f"{run.roster}/terms/{term}/gradingPeriods", params={"limit": 10000}), 200
    )["academicSessions"]
    if not periods or any(p["type"] != "gradingPeriod" for p in periods):
        raise StepFailed("expected grading periods, each of type gradingPeriod")
    return ", ".join(f"{p['title']} ({p['startDate']}..{p['endDate']})" for p in periods)


def _put_line_item(run: _Run) -> str:
    klass = run.found["class"]
    line_item_id = str(uuid.uuid4())
    run.found["line_item_id"] = line_item_id
    run.found["line_item"] = {
        "lineItem": {
            "title": "Demo essay",
            "description": "Written by sislink demo",
            "assignDate": "2026-09-01T00:00:00Z",
            "dueDate": "2026-09-08T00:00:00Z",
            "resultValueMin": 0,
            "resultValueMax": 100,
            "class": {"sourcedId": klass["sourcedId"]},
            "category": {"sourcedId": run.found["category"]["sourcedId"]},
            "school": {"sourcedId": klass["school"]["sourcedId"]},
        }
    }
    url = f"{run.gradebook}/lineItems/{line_item_id}"
    run.expect(run.client.put(url, json=run.found["line_item"]), 201)
    # Updating: 1EdTech's OpenAPI lists 201; Google's notebook accepts 200 or 201.
    again = run.client.put(url, json=run.found["line_item"])
    run.expect(again, 200, 201)
    return f"lineItem {line_item_id}: 201 created, then {again.status_code} updated"


def _class_line_items(run: _Run) -> str:
    url = f"{run.gradebook}/classes/{run.found['class']['sourcedId']}/lineItems"
    ids = {li["sourcedId"] for li in run.expect(run.client.get(url), 200)["lineItems"]}
    if run.found["line_item_id"] not in ids:
        raise StepFailed("the lineItem just written is not listed for its class")
    run.found["line_item"]["lineItem"]["title"] = "Long title " * 100
    url = f"{run.gradebook}/lineItems/{run.found['line_item_id']}"
    run.expect(run.client.put(url, json=run.found["line_item"]), 200, 201)
    kept = run.expect(run.client.get(url), 200)["lineItem"]["title"]
    return f"listed; a {len(run.found['line_item']['lineItem']['title'])}-character title kept as {len(kept)}"


def _results(run: _Run) -> str:
    result_id = str(uuid.uuid4())
    run.found["result_id"] = result_id
    url = f"{run.gradebook}/results/{result_id}"
    body: dict[str, Any] = {
        "result": {
            "score": 80,
            "scoreStatus": "fully graded",
            "scoreDate": "2026-09-09",
            "lineItem": {"sourcedId": run.found["line_item_id"]},
            "student": {"sourcedId": run.found["student"]["sourcedId"]},
        }
    }
    run.expect(run.client.put(url, json=body), 200, 201)
    body["result"]["score"] = 300
    run.expect(run.client.put(url, json=body), 200, 201)
    if run.expect(run.client.get(url), 200)["result"]["score"] != 300:
        raise StepFailed("a score of 300 (extra credit) was not kept")
    body["result"]["scoreStatus"] = "exempt"
    run.expect(run.client.put(url, json=body), 200, 201)
    if run.expect(run.client.get(url), 200)["result"]["scoreStatus"] != "exempt":
        raise StepFailed("scoreStatus exempt was not kept")
    return "80 stored; 300 of 100 kept (extra credit); exempt kept"


def _deletes(run: _Run) -> str:
    klass, line_item_id = run.found["class"]["sourcedId"], run.found["line_item_id"]
    run.expect(run.client.delete(f"{run.gradebook}/results/{run.found['result_id']}"), 200, 204)
    results = run.expect(
        run.client.get(f"{run.gradebook}/classes/{klass}/lineItems/{line_item_id}/results"), 200
    )
    if any(r["sourcedId"] == run.found["result_id"] for r in results["results"]):
        raise StepFailed("the deleted result is still listed")
    run.expect(run.client.delete(f"{run.gradebook}/lineItems/{line_item_id}"), 200, 204)
    items = run.expect(run.client.get(f"{run.gradebook}/classes/{klass}/lineItems"), 200)[
        "lineItems"
    ]
    if any(li["sourcedId"] == line_item_id for li in items):
        raise StepFailed("the deleted lineItem is still listed")
    return "result and lineItem deleted and gone"


GOOGLE_SEQUENCE: tuple[tuple[str, Callable[[_Run], str]], ...] = (
    ("token (client credentials, four scopes)", _token),
    ("teachers?limit=1", _teachers),
    ("teacher by email, limit=10000", _teacher_by_email),
    ("the teacher's active classes", _teacher_classes),
    ("the class's students", _class_students),
    ("the class's categories", _categories),
    ("the term's grading periods", _grading_periods),
    ("PUT a lineItem: 201, then 200 or 201", _put_line_item),
    ("the class's lineItems; a long title", _class_line_items),
    ("PUT a result: 80, 300, exempt", _results),
    ("DELETE the result and the lineItem", _deletes),
)


def run_google_sequence(sis: RunningProvider, echo: Callable[[str], None]) -> bool:
    """Google Classroom's OneRoster 1.2 call sequence against `sis`; True when every step held."""
    echo("A first check of the SIS: Google Classroom's OneRoster 1.2 call sequence")
    with httpx.Client(timeout=30, headers=dict(sis.extra_headers)) as client:
        run = _Run(sis, client)
        for number, (title, step) in enumerate(GOOGLE_SEQUENCE, start=1):
            started = time.perf_counter()
            try:
                outcome = step(run)
            except (StepFailed, httpx.HTTPError, KeyError) as error:
                elapsed = (time.perf_counter() - started) * 1000
                echo(f"  {number:>2}. {title}: FAILED ({elapsed:.0f} ms): {error}")
                echo("The sequence stopped at a failed step.")
                return False  # later steps depend on this one
            elapsed = (time.perf_counter() - started) * 1000
            echo(f"  {number:>2}. {title}: ok ({elapsed:.0f} ms): {outcome}")
    echo("Every step held.")
    return True


# ---- the whole flow, through sislink's services ---------------------------------------------


class DemoFailed(Exception):
    """A step of the whole flow did not hold; the message says what was expected."""


@dataclass(frozen=True)
class SisCounts:
    """How many lineItems and results the SIS holds (its own store, every class)."""

    line_items: int
    results: int

    def __str__(self) -> str:
        return f"{self.line_items} lineItems and {self.results} results"


@dataclass(frozen=True)
class GoogleRun:
    """After one Google Classroom run: the SIS's counts, Classroom's course count, and whether
    a grade pull had sent Classroom's grades to the SIS by then."""

    label: str
    sis: SisCounts
    courses: int
    pulled: bool


def google_runs_held(runs: Sequence[GoogleRun], before: SisCounts | None = None) -> bool:
    """True when Classroom held the same, non-zero, number of courses after every run, and the
    SIS the same, non-zero, lineItem and result counts after every run from the first pull on
    (and, before it, what it held before the Google runs: `before`, when given)."""
    courses = {r.courses for r in runs}
    pulled = [r.sis for r in runs if r.pulled]
    earlier = {r.sis for r in runs if not r.pulled}
    return (
        len(courses) == 1
        and min(courses) > 0
        and bool(pulled)
        and nothing_duplicated(pulled)
        and (before is None or earlier <= {before})
    )


@dataclass
class _Flow:
    sis: RunningProvider
    classroom: Classroom
    echo: Callable[[str], None]
    class_count: int
    google: RunningClassroom | None = None  # the local Google Classroom, when it runs
    admin: Actor = field(default_factory=Actor.system)
    teacher: Actor = field(default_factory=Actor.system)
    class_ids: list[int] = field(default_factory=list)
    coursework_ids: list[int] = field(default_factory=list)
    first_marked: tuple[int, int, float] | None = None  # coursework, student, score
    after_exports: list[tuple[str, SisCounts]] = field(default_factory=list)
    number: int = 0
    google_runs: list[GoogleRun] = field(default_factory=list)
    teacher_google: Resource | None = None  # Google's client as the teacher
    teacher_http: Any = None  # the teacher's authorised HTTP (Classroom's own pages)
    classroom_works: int = 0  # courseWork the teacher made in Classroom
    returned_grades: int = 0  # grades the teacher returned (assignedGrade)
    one_grade: tuple[str, str, str, float] | None = None  # course, courseWork, submission, grade

    async def step(self, words: str, action: Callable[[], Awaitable[str]]) -> None:
        """Run one step, print it in the actor's words with its time and result."""
        self.number += 1
        started = time.perf_counter()
        try:
            outcome = await action()
        except (SyncError, ClassroomError, OneRosterError, GoogleClassroomError) as error:
            elapsed = time.perf_counter() - started
            self.echo(f"  {self.number:>2}. {words} ({elapsed:.2f} s): FAILED")
            raise DemoFailed(str(error)) from None
        except DemoFailed as failed:
            elapsed = time.perf_counter() - started
            self.echo(f"  {self.number:>2}. {words} ({elapsed:.2f} s): FAILED")
            raise failed
        elapsed = time.perf_counter() - started
        self.echo(f"  {self.number:>2}. {words} ({elapsed:.2f} s)")
        for line in outcome.splitlines():
            self.echo(f"      {line}")

    # -- the administrator --

    def connect_details(self) -> dict[str, Any]:
        """What the administrator types: the Host URL the SIS printed, the key and secret, the
        token URL where the profile cannot derive it, the vendor key where the SIS wants one."""
        details: dict[str, Any] = {
            "sis": self.sis.profile,
            "host_url": self.sis.host_url,
            "access_key": self.sis.client_id,
            "secret_code": self.sis.client_secret,
            # The built-in SIS listens on 127.0.0.1 over plain HTTP.
            "insecure": True,
            "allow_private": True,
        }
        if self.sis.profile == "generic-1.2":
            details["token_url"] = self.sis.token_url
        if self.sis.extra_headers:
            details["extra_credentials"] = {
                "vendor_key": next(iter(self.sis.extra_headers.values()))
            }
        return details

    async def connect(self) -> str:
        view = connection.connect(self.classroom, self.admin, **self.connect_details())
        return (
            f"Saved as {view.status} ({view.display_name}), secret "
            f"{'stored sealed' if view.secret_stored else 'NOT stored'}; nothing sent to the SIS yet."
        )

    async def authorise(self) -> str:
        report = await connection.authorise(self.classroom, self.admin)
        same = {None: "first SIS", True: "the same SIS as before", False: "a different SIS"}
        lines = [
            f"{report.message}: district {report.district_name!r} ({report.district_sourced_id}), "
            f"{same[report.same_sis_as_before]}.",
            f"Teachers may export marks: {'yes' if report.connection.teacher_export_enabled else 'no'}.",
        ]
        if report.same_sis_as_before is not None:
            lines.append(
                f"Class links resumed: {report.links_resumed}; set aside: {report.links_set_aside}."
            )
            if report.same_sis_as_before is not True or report.links_set_aside:
                raise DemoFailed("the reconnect did not find the same SIS and its class links")
        return "\n".join(lines)

    async def connect_google(self) -> str:
        assert self.google is not None
        view = google_connection.connect(
            self.classroom,
            self.admin,
            key_file_text=self.google.key_file.read_text("utf-8"),
            admin_email=self.google.admin_email,
            api_endpoint=self.google.api_url,
        )
        return (
            f"Saved as {view.status}: {view.client_email} acting as {view.admin_email} in "
            f"{view.domain}, key stored sealed; nothing sent to Google yet."
        )

    async def authorise_google(self) -> str:
        # The client is synchronous (Google's library), so it runs off the event loop.
        view = await asyncio.to_thread(google_connection.authorise, self.classroom, self.admin)
        if view.status != ConnectionStatus.AUTHORISED:
            raise DemoFailed(f"the Google connection ended {view.status}, not authorised")
        return "\n".join(
            [f"Google Classroom connected and authorised ({view.domain})."]
            + [f"{'ok' if c.ok else 'FAILED'} {c.name}: {c.detail}" for c in view.checks]
        )

    async def import_roster(self) -> str:
        outcome = await run_roster_import(self.classroom, self.admin, full=True)
        if not outcome.succeeded:
            raise DemoFailed(f"the roster import ended {outcome.status}: {outcome.error}")
        counts: dict[str, dict[str, int]] = outcome.report.get("counts", {})
        made = ", ".join(
            f"{c['created']} {entity.replace('_', ' ')}"
            for entity, c in counts.items()
            if c.get("created")
        )
        warnings = outcome.report.get("warnings", [])
        return (
            f"Job {outcome.job_id} {outcome.status}, {outcome.report.get('requests', 0)} requests: "
            f"created {made}.\n"
            f"{outcome.report.get('classes_linked', 0)} imported classes came linked to their SIS "
            "class."
            + (f"\n{len(warnings)} kinds of warning (see the job's report)." if warnings else "")
        )

    def disconnect(self) -> str:
        view = connection.disconnect(self.classroom, self.admin)
        return f"Status {view.status}; secret {'still stored' if view.secret_stored else 'erased'}."

    # -- the teacher --

    async def add_coursework_and_marks(self) -> str:
        email = self.sis.teacher_email
        with self.classroom.transaction() as session:
            person = people.find_person_by_email(session, email)
            if person is None:
                raise DemoFailed(f"the roster import brought no teacher with the email {email}")
            self.teacher = Actor.of(person)
            chosen = [
                klass
                for klass in classes_taught_by(session, person.id)
                if klass.sis_sourced_id and members(session, klass.id, EnrolmentRole.STUDENT)
            ][: self.class_count]
            if not chosen:
                raise DemoFailed(f"{email} teaches no class with students")
            lines = []
            marks = 0
            for klass in chosen:
                self.class_ids.append(klass.id)
                made, marked = self._fill_class(session, klass)
                marks += marked
                lines.append(f"{klass.title}: {', '.join(made)}; {marked} marks")
        return (
            f"{email} ({len(chosen)} classes) adds {len(chosen) * len(COURSEWORK)} coursework "
            f"and {marks} marks (one excused, one missing, one extra credit per class):\n"
            + "\n".join(lines)
        )

    def _fill_class(self, session: Any, klass: Class) -> tuple[list[str], int]:
        periods = [
            p
            for p in session.scalars(
                select(GradingPeriod)
                .where(GradingPeriod.term_id == klass.term_id, GradingPeriod.active.is_(True))
                .order_by(GradingPeriod.start_date)
            )
            if p.start_date and p.end_date
        ]
        categories = {
            c.title.casefold(): c.id
            for c in session.scalars(select(Category).where(Category.class_id == klass.id))
        }
        students = list(members(session, klass.id, EnrolmentRole.STUDENT))
        made: list[str] = []
        marked = 0
        for index, (title, points, category) in enumerate(COURSEWORK):
            due = _due_in(periods[index % len(periods)] if periods else None)
            work = coursework_service.create_coursework(
                session,
                self.teacher,
                klass.id,
                title=title,
                max_points=points,
                due_date=due,
                category_id=categories.get(category.casefold()),
                publish=True,
            )
            self.coursework_ids.append(work.id)
            made.append(f"{title} ({points} points, due {due.date().isoformat()})")
            for number, student in enumerate(students):
                values: dict[str, Any]
                if number == 0 and index == 0:
                    values = {"excused": True}
                elif number == 1 and index == 1:
                    values = {"missing": True}
                elif number == 2 and index == 2:
                    values = {"score": points + 2}  # extra credit
                else:
                    values = {"score": round(points * (0.55 + (number * 7 + index * 3) % 45 / 100))}
                mark_service.set_mark(session, self.teacher, work.id, student.id, **values)
                if self.first_marked is None and "score" in values:
                    self.first_marked = (work.id, student.id, float(values["score"]))
                marked += 1
            mark_service.return_marks(session, self.teacher, work.id)
        return made, marked

    async def link_classes(self) -> str:
        lines = []
        async with open_sis_client(self.classroom) as client:
            offered = await class_link.sis_classes_for_teacher(client, self.sis.teacher_email)
            lines.append(f"The SIS offers {len(offered)} active classes of this teacher.")
            for class_id in self.class_ids:
                with self.classroom.session() as session:
                    klass = session.get(Class, class_id)
                    assert klass is not None and klass.sis_sourced_id is not None
                    title, sis_class_id = klass.title, klass.sis_sourced_id
                facts = await class_link.link_class(
                    self.classroom, client, self.teacher, class_id, sis_class_id
                )
                lines.append(
                    f"{title} -> SIS class {sis_class_id}: {len(facts.grading_periods)} grading "
                    f"periods, categories {', '.join(t for _, t in facts.categories)}"
                )
        return "\n".join(lines)

    def sis_counts(self) -> SisCounts:
        return SisCounts(self.sis.store.count("lineItem"), self.sis.store.count("result"))

    async def export(self, label: str, *, expect_writes: int | None = None) -> str:
        run: ExportRun = await run_all_exports(self.classroom, self.teacher)
        if not run.job.succeeded:
            raise DemoFailed(f"the export job ended {run.job.status}: {run.job.error}")
        tally: dict[str, dict[str, int]] = {}
        problems: list[str] = []
        for report in run.reports:
            for kind, outcomes in report.counts().items():
                for outcome, n in outcomes.items():
                    tally.setdefault(kind, {}).setdefault(outcome, 0)
                    tally[kind][outcome] += n
            for item in report.items:
                if item.outcome in (Outcome.SKIPPED, Outcome.FAILED) and len(problems) < 5:
                    who = f" / {item.student}" if item.student else ""
                    problems.append(f"{item.outcome}: {item.coursework_title}{who}: {item.reason}")
        counts = self.sis_counts()
        self.after_exports.append((label, counts))
        described = "; ".join(
            f"{kind}s " + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
            for kind, outcomes in tally.items()
            if outcomes
        )
        lines = [
            f"Job {run.job.job_id} {run.job.status}: {len(run.reports)} classes, "
            f"{_writes(run.writes)} (PUT/DELETE); {described or 'nothing to do'}.",
            *problems,
            f"The SIS now holds {counts}.",
        ]
        if any(item.outcome is Outcome.FAILED for r in run.reports for item in r.items):
            raise DemoFailed("\n".join(lines))
        if expect_writes is not None and run.writes != expect_writes:
            raise DemoFailed(f"expected {expect_writes} writes, the export sent {run.writes}")
        return "\n".join(lines)

    async def refused_while_disconnected(self) -> str:
        try:
            await run_class_export(self.classroom, self.teacher, self.class_ids[0])
        except ExportRefused as refused:
            return f"A teacher's export now is refused before anything is sent: {refused.message}"
        raise DemoFailed("an export was accepted while disconnected")

    async def change_one_mark(self) -> str:
        assert self.first_marked is not None
        coursework_id, student_id, score = self.first_marked
        with self.classroom.transaction() as session:
            mark_service.set_mark(session, self.teacher, coursework_id, student_id, score=score - 1)
        return f"One mark changed from {score:g} to {score - 1:g}."

    async def forget_ledger(self) -> str:
        forgotten = sum(forget_ledger_for_class(self.classroom, c) for c in self.class_ids)
        return f"The ledger forgot {forgotten} records of what was sent (as after a lost database)."

    # -- Google Classroom --

    def sis_and_classroom(self) -> tuple[SisCounts, int]:
        return self.sis_counts(), self.classroom_course_count()

    def classroom_course_count(self) -> int:
        """Every course of the domain, as Classroom lists them to its administrator."""
        assert self.google is not None
        admin, _ = _google_as(self.google, self.google.admin_email)
        count, token = 0, None
        while True:
            page = admin.courses().list(pageSize=1000, pageToken=token).execute(num_retries=3)
            count += len(page.get("courses", []))
            token = page.get("nextPageToken")
            if not token:
                return count

    def note_google_run(self, label: str) -> tuple[SisCounts, int]:
        counts, courses = self.sis_and_classroom()
        pulled = any(r.pulled for r in self.google_runs) or label.startswith("pull")
        self.google_runs.append(GoogleRun(label, counts, courses, pulled))
        return counts, courses

    async def sync_google_roster(self, label: str, *, first: bool) -> str:
        connection_row = google_connection_for_sync(self.classroom)
        with open_google_client(self.classroom, connection_row, DEMO_CLIENT) as client:
            outcome = await run_google_roster_sync(self.classroom, self.admin, client=client)
        if not outcome.succeeded:
            raise DemoFailed(f"the roster sync job ended {outcome.status}: {outcome.error}")
        report = outcome.report
        if report.get("status") != "applied":
            raise DemoFailed(f"the roster sync was {report.get('status')}: {report.get('hold_reason')}")
        counts: dict[str, dict[str, int]] = report["counts"]
        calls: dict[str, int] = report["calls"]
        courses = counts["courses"]
        warnings: list[str] = report.get("warnings", [])
        lacking = report.get("categories_not_in_classroom", [])
        before = self.google_runs[-1].courses if self.google_runs else 0
        sis, in_classroom = self.note_google_run(label)
        lines = [
            f"Job {outcome.job_id} {outcome.status}: courses {_counted(courses)}; teachers "
            f"{_counted(counts['teachers'])}; students {_counted(counts['students'])}.",
            f"{calls['reads']} reads and {_writes(calls['writes'])} (API calls) in "
            f"{calls['http_requests']} HTTP requests (batches of up to {GOOGLE_BATCH}).",
        ]
        if warnings:
            lines.append(f"{len(warnings)} things for a person to act on, e.g.: {warnings[0]}")
        if lacking:
            lines.append(
                f"{len(lacking)} courses lack the SIS's grade categories in Classroom (Google's "
                "API cannot set them: the teacher sets them in the course's settings)."
            )
        lines.append(f"Google Classroom holds {in_classroom} courses; the SIS {sis}.")
        text = "\n".join(lines)
        if first:
            if courses["created"] == 0 or in_classroom != before + courses["created"]:
                raise DemoFailed(
                    f"{text}\nexpected {courses['created']} new courses in Classroom "
                    f"(it held {before}), it holds {in_classroom}"
                )
            states = {c.get("state") for c in report.get("courses", []) if c.get("action") == "created"}
            if states != {"PROVISIONED"}:
                raise DemoFailed(f"{text}\nnew courses should be PROVISIONED, they are {states}")
        elif calls["writes"] or courses["created"] or in_classroom != before:
            raise DemoFailed(
                f"{text}\nexpected no writes and no new course after an unchanged sync "
                f"(Classroom held {before} courses)"
            )
        return text

    @property
    def google_url(self) -> str:
        assert self.google is not None
        return self.google.api_url

    def teacher_in_google(self) -> Resource:
        """Google's client as the teacher, built afresh for each step: the local Classroom
        (like Google's front ends) closes idle connections, and the library does not send a
        POST again on a connection the server closed."""
        assert self.google is not None
        self.teacher_google, self.teacher_http = _google_as(self.google, self.sis.teacher_email)
        return self.teacher_google

    async def teacher_accepts(self) -> str:
        service = self.teacher_in_google()
        offered = (
            service.courses()
            .list(teacherId="me", courseStates=["PROVISIONED"], pageSize=1000)
            .execute(num_retries=3)
            .get("courses", [])
        )
        if not offered:
            raise DemoFailed(f"{self.sis.teacher_email} has no course to accept in Classroom")
        accepted = _send_as_teacher(
            self.google_url,
            [
                service.courses().patch(
                    id=course["id"], updateMask="courseState", body={"courseState": "ACTIVE"}
                )
                for course in offered
            ],
        )
        states = {str(course.get("courseState")) for course in accepted}
        if states != {"ACTIVE"}:
            raise DemoFailed(f"accepted courses are {states}, not ACTIVE")
        names = ", ".join(sorted(str(c.get("name")) for c in accepted))
        return (
            f"{self.sis.teacher_email} accepts {len(accepted)} courses sislink made "
            f"(PROVISIONED -> ACTIVE, as the owner): {names}."
        )

    async def teacher_works_in_classroom(self) -> str:
        assert self.google is not None
        service = self.teacher_in_google()
        links = course_links(self.classroom)
        lines: list[str] = []
        submissions_of: list[tuple[str, str, float]] = []  # course, courseWork, max points
        for class_id in self.class_ids:
            link = links.get(class_id)
            if link is None or not link.get("course_id"):
                raise DemoFailed(f"class {class_id} has no Classroom course after the sync")
            course_id = str(link["course_id"])
            with self.classroom.session() as session:
                titles = [
                    c.title
                    for c in session.scalars(
                        select(Category).where(Category.class_id == class_id).order_by(Category.id)
                    )
                ]
            categories = self.set_grade_categories(course_id, titles)
            periods = (
                service.courses()
                .getGradingPeriodSettings(courseId=course_id)
                .execute(num_retries=3)
                .get("gradingPeriods", [])
            )
            due = _due_ahead(periods)
            made = _send_as_teacher(
                self.google_url,
                [
                    service.courses()
                    .courseWork()
                    .create(
                        courseId=course_id,
                        body={
                            "title": title,
                            "description": "Made in Google Classroom by the teacher.",
                            "workType": "ASSIGNMENT",
                            "state": "PUBLISHED",
                            "maxPoints": points,
                            "dueDate": {"year": due.year, "month": due.month, "day": due.day},
                            "dueTime": {"hours": 23, "minutes": 59},
                            "gradeCategory": {"id": categories[category.casefold()]},
                        },
                    )
                    for title, points, category in CLASSROOM_WORK
                ],
            )
            self.classroom_works += len(made)
            submissions_of.extend(
                (course_id, str(work["id"]), float(work["maxPoints"])) for work in made
            )
            lines.append(
                f"{link.get('link')}: grade categories {', '.join(titles)}; "
                + ", ".join(
                    f"{w['title']} ({w['maxPoints']:g} points, {w['gradeCategory']['name']}, "
                    f"due {due.isoformat()})"
                    for w in made
                )
            )
        listed = _send_as_teacher(
            self.google_url,
            [
                service.courses()
                .courseWork()
                .studentSubmissions()
                .list(courseId=course_id, courseWorkId=work_id, pageSize=1000)
                for course_id, work_id, _ in submissions_of
            ],
        )
        patches: list[HttpRequest] = []
        returns: list[HttpRequest] = []
        drafts = 0
        subs = service.courses().courseWork().studentSubmissions()
        for k, ((course_id, work_id, points), page) in enumerate(
            zip(submissions_of, listed, strict=True)
        ):
            ordered = sorted(page.get("studentSubmissions", []), key=lambda s: str(s["userId"]))
            for i, submission in enumerate(ordered):
                grade = float(round(points * (0.6 + (i * 7 + k * 3) % 40 / 100)))
                body: dict[str, Any] = {"draftGrade": grade}
                if i % DRAFT_EVERY == DRAFT_EVERY - 1:
                    drafts += 1
                else:
                    body["assignedGrade"] = grade
                    returns.append(
                        subs.return_(
                            courseId=course_id, courseWorkId=work_id, id=submission["id"], body={}
                        )
                    )
                    if self.one_grade is None:
                        self.one_grade = (course_id, work_id, str(submission["id"]), grade)
                patches.append(
                    subs.patch(
                        courseId=course_id,
                        courseWorkId=work_id,
                        id=submission["id"],
                        updateMask=",".join(body),
                        body=body,
                    )
                )
        _send_as_teacher(self.google_url, patches)
        _send_as_teacher(self.google_url, returns)
        self.returned_grades = len(returns)
        return (
            f"{self.sis.teacher_email}, in Classroom (Google's client library as the teacher), "
            f"sets the courses' grade categories, makes {self.classroom_works} courseWork and "
            f"grades {len(patches)} submissions: {len(returns)} returned, {drafts} left as "
            "drafts:\n" + "\n".join(lines)
        )

    def set_grade_categories(self, course_id: str, titles: list[str]) -> dict[str, str]:
        """What the teacher sets on the course's settings page (Google's API only reads grade
        categories; the local Classroom takes the page's form at /local/...): name -> id."""
        assert self.google is not None
        url = f"{self.google.api_url}local/v1/courses/{course_id}/gradebookSettings"
        body = {"calculationType": "TOTAL_POINTS", "gradeCategories": [{"name": t} for t in titles]}
        response, content = self.teacher_http.request(
            url, "PUT", body=json.dumps(body), headers={"content-type": "application/json"}
        )
        if int(response.status) != 200:
            raise DemoFailed(f"the course's grade categories were refused: {content[:200]!r}")
        settings = json.loads(content)
        return {str(c["name"]).casefold(): str(c["id"]) for c in settings["gradeCategories"]}

    async def pull_and_export(
        self, label: str, *, expect_writes: int | None = None, first: bool = False
    ) -> str:
        before = self.sis_counts()
        run = await run_grade_pull(self.classroom, self.teacher, export=True)
        if not run.job.succeeded:
            raise DemoFailed(f"the grade pull job ended {run.job.status}: {run.job.error}")
        body = run.as_json()
        counts = body["counts"]
        sis, in_classroom = self.note_google_run(label)
        lines = [
            f"Job {run.job.job_id} {run.job.status}: {counts['courses']} courses asked in "
            f"{body['calls']} HTTP requests ({body['api_calls']} API calls); coursework "
            f"{_counted(counts['coursework'])}; marks {_counted(counts['marks'])}.",
            f"The export sent {_writes(body['writes'])} (PUT/DELETE) to the SIS.",
        ]
        attention = body.get("attention") or {}
        for reason in (attention.get("reasons") or [])[:3]:
            lines.append(f"Needs attention: {reason}")
        lines.append(f"The SIS now holds {sis}; Google Classroom {in_classroom} courses.")
        text = "\n".join(lines)
        if first:
            added = (sis.line_items - before.line_items, sis.results - before.results)
            wanted = (self.classroom_works, self.returned_grades)
            if added != wanted:
                raise DemoFailed(
                    f"{text}\nexpected the SIS to gain {wanted[0]} lineItems and {wanted[1]} "
                    f"results (the courseWork and the returned grades), it gained {added}"
                )
            text += (
                f"\nThe SIS gained {added[0]} lineItems and {added[1]} results: one per courseWork "
                "and one per returned grade (drafts stay in Classroom)."
            )
        if expect_writes is not None and body["writes"] != expect_writes:
            raise DemoFailed(f"{text}\nexpected {_writes(expect_writes)} to the SIS")
        return text

    async def disconnect_both(self) -> str:
        sis = self.disconnect()
        google = google_connection.disconnect(self.classroom, self.admin)
        lines = [f"SIS: {sis}", f"Google Classroom: status {google.status}; key erased."]
        try:
            google_connection_for_sync(self.classroom)
        except SyncError as refused:
            lines.append(f"A roster sync now is refused: {refused}")
        else:
            raise DemoFailed("a roster sync was allowed while disconnected from Google")
        try:
            await run_grade_pull(self.classroom, self.teacher, export=True)
        except PullRefused as refused:
            lines.append(f"A grade pull now is refused: {refused}")
        else:
            raise DemoFailed("a grade pull was allowed while disconnected from Google")
        return "\n".join(lines)

    async def reconnect_both(self) -> str:
        return "\n".join(
            [
                await self.connect(),
                await self.authorise(),
                await self.connect_google(),
                await self.authorise_google(),
            ]
        )

    async def teacher_changes_one_grade(self) -> str:
        assert self.one_grade is not None
        course_id, work_id, submission_id, grade = self.one_grade
        service = self.teacher_in_google()
        subs = service.courses().courseWork().studentSubmissions()
        new = grade - 1
        _send_as_teacher(
            self.google_url,
            [
                subs.patch(
                    courseId=course_id,
                    courseWorkId=work_id,
                    id=submission_id,
                    updateMask="draftGrade,assignedGrade",
                    body={"draftGrade": new, "assignedGrade": new},
                )
            ],
        )
        _send_as_teacher(
            self.google_url,
            [subs.return_(courseId=course_id, courseWorkId=work_id, id=submission_id, body={})],
        )
        self.one_grade = (course_id, work_id, submission_id, new)
        return f"In Classroom the teacher changes one returned grade from {grade:g} to {new:g}."


def _google_as(google: RunningClassroom, email: str) -> tuple[Resource, Any]:
    """Google's client library as `email`, as a district's script builds it: the service
    account's key file with domain-wide delegation, the local Classroom's endpoint. Also the
    authorised HTTP (for Classroom's own pages)."""
    info = json.loads(google.key_file.read_text("utf-8"))
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        info, scopes=list(SCOPES)
    ).with_subject(email)
    service = build(
        "classroom",
        "v1",
        credentials=credentials,
        static_discovery=True,
        client_options={"api_endpoint": google.api_url},
    )
    return service, google_auth_httplib2.AuthorizedHttp(credentials)


def _send_as_teacher(
    api_url: str, requests: Sequence[HttpRequest]
) -> list[dict[str, Any]]:
    """Send the calls in Google's batches (up to 50 a batch) to the Classroom at `api_url`
    (the library's batch URI is Google's own whatever the endpoint: it is given here); every
    answer, in order, or DemoFailed naming the first refusal."""
    answers: list[dict[str, Any]] = [{} for _ in requests]
    refused: list[str] = []

    def done(request_id: str, response: Any, exception: Exception | None) -> None:
        if exception is not None:
            refused.append(str(exception))
        else:
            answers[int(request_id)] = dict(response or {})

    for start in range(0, len(requests), GOOGLE_BATCH):
        batch = BatchHttpRequest(callback=done, batch_uri=f"{api_url}batch")
        for index in range(start, min(start + GOOGLE_BATCH, len(requests))):
            batch.add(requests[index], request_id=str(index))
        try:
            batch.execute()
        except HttpError as error:
            raise DemoFailed(f"Google Classroom refused a batch: {error}") from None
        except (httplib2.HttpLib2Error, OSError) as error:
            raise DemoFailed(f"Google Classroom at {api_url} did not answer: {error!r}") from None
    if refused:
        raise DemoFailed(f"Google Classroom refused {len(refused)} calls, first: {refused[0]}")
    return answers


def _due_ahead(periods: list[dict[str, Any]]) -> date:
    """A day at least a week ahead inside one of the course's grading periods (else a week into
    the first one): work due then is not yet missing, and has a grading period."""
    spans = []
    for period in periods:
        start, end = period.get("startDate") or {}, period.get("endDate") or {}
        if start.get("year") and end.get("year"):
            spans.append(
                (
                    date(start["year"], start["month"], start["day"]),
                    date(end["year"], end["month"], end["day"]),
                )
            )
    soonest = date.today() + timedelta(days=7)
    for start, end in sorted(spans):
        day = max(soonest, start)
        if day <= end:
            return day
    return min(spans)[0] + timedelta(days=7) if spans else soonest


def _counted(counts: dict[str, int]) -> str:
    """{"created": 3, "unchanged": 0} -> "3 created"."""
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "none"


def _writes(count: int) -> str:
    return f"{count} write" if count == 1 else f"{count} writes"


def _due_in(period: GradingPeriod | None) -> datetime:
    """Noon UTC a week into the grading period (or today when the class has none)."""
    if period is None or period.start_date is None or period.end_date is None:
        day = date.today()
    else:
        day = min(period.start_date + timedelta(days=7), period.end_date)
    return datetime.combine(day, clock(12), tzinfo=UTC)


async def _whole_flow(flow: _Flow) -> None:
    await flow.step(
        f"The administrator connects sislink to the SIS, typing the Host URL it printed "
        f"({flow.sis.host_url})",
        flow.connect,
    )
    await flow.step(
        "The administrator authorises the connection (real calls to the SIS)", flow.authorise
    )
    if flow.google is not None:
        await flow.step(
            "The administrator connects sislink to Google Classroom (the local one: its key "
            "file and an administrator's email)",
            flow.connect_google,
        )
        await flow.step(
            "The administrator authorises the Google connection (real calls to the local "
            "Classroom)",
            flow.authorise_google,
        )
    await flow.step(
        "The administrator imports the roster (a full import, as a job)", flow.import_roster
    )
    await flow.step(
        "The SIS's sample teacher adds coursework and marks in their classes",
        flow.add_coursework_and_marks,
    )
    await flow.step(
        "The teacher checks the SIS class each of those classes is linked to", flow.link_classes
    )
    before = flow.sis_counts()
    flow.echo(f"      (Before the first export the SIS holds {before}.)")

    async def first_export() -> str:
        text = await flow.export("first export")
        after = flow.after_exports[-1][1]
        if after.line_items <= before.line_items or after.results <= before.results:
            raise DemoFailed(f"the first export added nothing to the SIS ({before} -> {after})")
        return text

    await flow.step(
        "The teacher exports marks to the SIS (one job for their linked classes)", first_export
    )

    async def disconnect() -> str:
        return flow.disconnect() + "\n" + await flow.refused_while_disconnected()

    await flow.step("The administrator disconnects sislink from the SIS", disconnect)

    async def reconnect() -> str:
        return await flow.connect() + "\n" + await flow.authorise()

    await flow.step(
        "The administrator connects and authorises again (same SIS, same Host URL)", reconnect
    )

    async def export_after_reconnect() -> str:
        changed = await flow.change_one_mark()
        return changed + "\n" + await flow.export("after the reconnect", expect_writes=1)

    await flow.step("The teacher changes one mark and exports again", export_after_reconnect)

    async def export_everything_again() -> str:
        forgot = await flow.forget_ledger()
        return forgot + "\n" + await flow.export("after the ledger was forgotten")

    await flow.step(
        "Export once more with nothing remembered: every lineItem and result is PUT again",
        export_everything_again,
    )
    if flow.google is not None:
        await _google_story(flow)


async def _google_story(flow: _Flow) -> None:
    """The Google Classroom district's story: roster in, the teacher accepts and works in
    Classroom, grades back to the SIS; both sides disconnected and reconnected; again."""
    flow.echo("")
    flow.echo("The same district teaching in Google Classroom:")
    await flow.step(
        "The administrator syncs the roster into Google Classroom (a job; courses created "
        "PROVISIONED for their teachers to accept)",
        lambda: flow.sync_google_roster("roster sync", first=True),
    )
    await flow.step(
        "The teacher accepts their courses in Classroom (Google's client library as the teacher)",
        flow.teacher_accepts,
    )
    await flow.step(
        "The teacher makes coursework and grades in Classroom", flow.teacher_works_in_classroom
    )
    await flow.step(
        "The teacher pulls Classroom's grades and exports them to the SIS (one job)",
        lambda: flow.pull_and_export("pull and export", first=True),
    )
    await flow.step(
        "The administrator disconnects sislink from the SIS and from Google Classroom",
        flow.disconnect_both,
    )
    await flow.step(
        "The administrator connects and authorises both again", flow.reconnect_both
    )
    await flow.step(
        "The administrator syncs the roster again: nothing to write, no course made twice",
        lambda: flow.sync_google_roster("roster sync after the reconnect", first=False),
    )
    await flow.step(
        "The teacher pulls and exports again: nothing changed, nothing sent",
        lambda: flow.pull_and_export("pull and export again", expect_writes=0),
    )

    async def one_grade() -> str:
        changed = await flow.teacher_changes_one_grade()
        return changed + "\n" + await flow.pull_and_export(
            "pull and export, one grade changed", expect_writes=1
        )

    await flow.step("The teacher changes one grade in Classroom, pulls and exports", one_grade)


def run_demo(
    echo: Callable[[str], None] = print,
    *,
    students: int = DEFAULT_STUDENTS,
    seed: int = 7,
    profile: str = DEFAULT_PROFILE,
    classes: int = DEFAULT_CLASSES,
    google: bool = True,
    home: Path | None = None,
    serve: bool = False,
    port: int = 8000,
) -> int:
    """Run the whole demo; 0 when every step held and the SIS's counts stayed equal, else 1.

    `home` is the classroom's SISLINK_HOME (a new temporary directory when None; it is kept
    so that the result can be looked at afterwards with the command line, and holds the local
    Google Classroom's key file). With `serve`, the console then runs on 127.0.0.1:`port` over
    the same classroom, SIS and local Google Classroom until Ctrl-C.
    """
    started = time.perf_counter()
    home = home or Path(tempfile.mkdtemp(prefix="sislink-demo-"))
    echo(f"sislink demo: a fresh classroom in SISLINK_HOME={home}")
    with (
        running_provider(profile=profile, students=students, seed=seed) as sis,
        running_classroom(
            seed=seed,
            students=students,
            key_file=home / "google-service-account.json",
            config=ClassroomConfig(
                seed=seed,
                per_user_per_minute=DEMO_QUOTA_PER_MINUTE,
                per_client_per_minute=DEMO_QUOTA_PER_MINUTE,
            ),
        ) as google_classroom,
    ):
        echo(
            f"The built-in OneRoster SIS is up ({sis.profile}, OneRoster {sis.version}, "
            f"a seeded district of {students} students):"
        )
        echo(f"  host_url:      {sis.host_url}")
        echo(f"  base_url:      {sis.base_url}")
        echo(f"  token_url:     {sis.token_url}")
        echo(f"  client_id:     {sis.client_id}")
        echo(f"  client_secret: {sis.client_secret}   (the sandbox's own test credential)")
        echo(f"  teacher_email: {sis.teacher_email}")
        echo("")
        echo(
            f"The local Google Classroom is up (a Google Workspace domain of the same district: "
            f"seed {seed}, {students} students):"
        )
        echo(f"  api_url:       {google_classroom.api_url}")
        echo(f"  key_file:      {google_classroom.key_file}   (a private key: never printed)")
        echo(f"  admin_email:   {google_classroom.admin_email}")
        echo(f"  teacher_email: {google_classroom.teacher_email}")
        echo(f"  domain:        {google_classroom.domain}")
        echo(
            f"  quotas:        {DEMO_QUOTA_PER_MINUTE:,} calls a minute per user and per client "
            "(Google's: 1,200 and 3,000; raised so the demo takes seconds, not minutes)"
        )
        echo("")
        if google and sis.version == "1.2":
            if not run_google_sequence(sis, echo):
                return 1
            echo("")
        elif google:
            echo(f"(Google's sequence is for OneRoster 1.2; {sis.profile} speaks {sis.version}.)")
            echo("")
        echo("The whole flow, as an administrator and a teacher do it:")
        classroom = open_classroom(Settings.for_home(home))
        flow = _Flow(sis, classroom, echo, classes, google=google_classroom)
        try:
            with classroom.transaction() as session:
                people.create_person(
                    session,
                    Actor.system(),
                    name="Demo Admin",
                    email=ADMIN_EMAIL,
                    roles=[Role.ADMIN],
                )
            asyncio.run(_whole_flow(flow))
            verdict = _verdict(flow, echo, home, time.perf_counter() - started)
            if serve and verdict == 0:
                _serve_console(classroom, sis, echo, port)
            return verdict
        except DemoFailed as failed:
            echo(f"      {failed}")
            echo("The demo stopped at a failed step.")
            return 1
        finally:
            classroom.close()


def _serve_console(
    classroom: Classroom, sis: RunningProvider, echo: Callable[[str], None], port: int
) -> None:
    """Keep the console running over the demo's classroom and SIS, with two logins."""
    from sislink.classroom.services import accounts
    from sislink.console.app import serve_console

    logins = {}
    with classroom.transaction() as session:
        for email in (ADMIN_EMAIL, sis.teacher_email):
            person = people.find_person_by_email(session, email)
            assert person is not None
            password = secrets.token_urlsafe(9)  # a fresh demo login, shown once below
            accounts.set_password(session, Actor.system(), person.id, password)
            logins[email] = password
    echo("")
    echo(
        f"The console is at http://127.0.0.1:{port} (Ctrl-C stops it, the SIS and the local "
        "Classroom); the Google connection is on /admin/google. Sign in as:"
    )
    echo(f"  administrator: {ADMIN_EMAIL}  password: {logins[ADMIN_EMAIL]}")
    echo(f"  teacher:       {sis.teacher_email}  password: {logins[sis.teacher_email]}")
    serve_console(classroom, host="127.0.0.1", port=port, allow_private_sis=True)


def nothing_duplicated(after_exports: Sequence[SisCounts]) -> bool:
    """True when the SIS held the same, non-zero, lineItem and result counts after every export."""
    distinct = set(after_exports)
    return len(distinct) == 1 and all(c.line_items > 0 and c.results > 0 for c in distinct)


def _verdict(flow: _Flow, echo: Callable[[str], None], home: Path, seconds: float) -> int:
    echo("")
    echo("The SIS's lineItems and results after each export:")
    for label, counts in flow.after_exports:
        echo(f"  {label + ':':<32} {counts.line_items:>5} lineItems {counts.results:>6} results")
    held = nothing_duplicated([counts for _, counts in flow.after_exports])
    if held:
        echo(
            "Equal after every export: re-exports, the reconnect and a forgotten ledger updated "
            "the same lineItems and results; nothing was duplicated."
        )
    else:
        echo("NOT EQUAL: the SIS holds duplicates (or nothing was exported).")
    if flow.google is not None:
        google_held = _google_verdict(flow, echo)
        held = held and google_held
    echo(f"Done in {seconds:.1f} s. The classroom stays in {home}; look at it with e.g.")
    echo(
        f"  SISLINK_HOME={home} sislink marks report {flow.class_ids[0] if flow.class_ids else 'CLASS'} "
        f"--as {flow.sis.teacher_email}"
    )
    return 0 if held else 1


def _google_verdict(flow: _Flow, echo: Callable[[str], None]) -> bool:
    echo("")
    echo("The SIS's lineItems and results, and Google Classroom's courses, after each Google run:")
    for run in flow.google_runs:
        echo(
            f"  {run.label + ':':<38} {run.sis.line_items:>5} lineItems {run.sis.results:>6} "
            f"results {run.courses:>4} courses"
        )
    before = flow.after_exports[-1][1] if flow.after_exports else None
    held = google_runs_held(flow.google_runs, before)
    if held:
        echo(
            "Equal after every run: the second sync found every course again by its alias, and "
            "the pulls and exports after the reconnect updated the same lineItems and results; "
            "nothing was duplicated (the first sync's row is before any grade was pulled)."
        )
    else:
        echo("NOT EQUAL: Classroom or the SIS holds duplicates (or nothing was made).")
    return held
