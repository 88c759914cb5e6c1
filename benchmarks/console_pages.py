"""Benchmark: a teacher's gradebook page for 35 students x 40 coursework (1,400 marks; the class
linked and exported once, so every cell shows its export state), served by the console app
in-process (httpx.ASGITransport: no network, so the time is the server's:
session check, queries, template), signed in through the real sign-in form. Also the class page
and My classes. Prints JSON: median, p95 and max milliseconds per page over N requests.

With --district (the default; --no-district skips it), also an administrator's People, Classes
and Activity pages over a 50,000-student district (2,500 teachers, 12,500 classes, 6 classes per
student: 300,000 enrolments; 20,000 audit events; 30 days of 2,000 class exports and 4 roster
imports a day for Activity's charts), seeded in bulk: the first page, a search, a
filter (no email) and a page deep in the list (by its keyset link).

Target: each page under 300 ms server time at the median (not asserted in tests).

Run: .venv/bin/python benchmarks/console_pages.py [--requests 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import EnrolmentRole, Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import accounts, classes, coursework, marks, people
from sislink.console.app import create_app

STUDENTS = 35
COURSEWORK = 40
TEACHER = "teacher@school.example"
PASSWORD = "correct horse battery staple"


def build_class(classroom: Classroom) -> int:
    """One teacher (with a password), one class of 35 students, 40 coursework, every mark."""
    system = Actor.system()
    with classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="The Teacher", email=TEACHER, roles=[Role.TEACHER]
        )
        accounts.set_password(session, system, teacher.id, PASSWORD)
        made = classes.create_class(
            session, system, title="Biology 10", primary_teacher_id=teacher.id
        )
        students = []
        for number in range(STUDENTS):
            student = people.create_person(
                session,
                system,
                name=f"Student {number:02d}",
                email=f"s{number:02d}@students.example",
                roles=[Role.STUDENT],
            )
            classes.enrol(session, system, made.id, student.id, EnrolmentRole.STUDENT)
            students.append(student.id)
        start = datetime(2026, 9, 1, 12, tzinfo=UTC)
        for number in range(COURSEWORK):
            work = coursework.create_coursework(
                session,
                system,
                made.id,
                title=f"Assignment {number + 1}",
                max_points=20,
                due_date=start + timedelta(days=number),
                publish=True,
            )
            for index, student_id in enumerate(students):
                marks.set_mark(session, system, work.id, student_id, score=(index + number) % 21)
            if number % 2:
                marks.return_marks(session, system, work.id)
        class_id = made.id
    exported_before(classroom, class_id)
    return class_id


def exported_before(classroom: Classroom, class_id: int) -> None:
    """The class linked and exported once (rows as an export leaves them, inserted in bulk):
    every coursework and returned mark in the ledger, the drafts skipped in the last report,
    and a returned mark in ten changed since, so every cell of the gradebook has a state to
    show."""
    from sqlalchemy import insert, select

    from sislink.classroom.models import ClassLink, Coursework, ExportRecord, Mark
    from sislink.classroom.models import MarkExportReport as Report
    from sislink.classroom.services import connections
    from sislink.sync.identity import class_identity

    system = Actor.system()
    with classroom.transaction() as session:
        connection = connections.save_connection(
            session,
            system,
            classroom.secret_box,
            partner="generic-1.2",
            version="1.2",
            host_url="https://sis.example",
            access_key="key",
            secret_code="secret",
            token_url="https://sis.example/token",
        )
        connections.mark_authorised(session, system, connection.id, district_sourced_id="d-1")
        session.add(
            ClassLink(class_id=class_id, connection_id=connection.id, sis_class_sourced_id="c-1")
        )
        scope = class_identity("generic-1.2", "c-1")
        started = datetime.now(UTC)  # the export began after the marks were written
        sent_at = started + timedelta(seconds=1)
        rows = session.execute(
            select(Mark.id, Mark.coursework_id, Mark.student_id, Mark.state)
            .join(Coursework, Coursework.id == Mark.coursework_id)
            .where(Coursework.class_id == class_id)
        ).all()
        works = sorted({row.coursework_id for row in rows})
        ledger = [("lineItem", work) for work in works] + [
            ("result", row.id) for row in rows if row.state == "returned"
        ]
        session.execute(
            insert(ExportRecord),
            [
                {
                    "kind": kind,
                    "object_id": object_id,
                    "sis_identity": scope,
                    "sis_sourced_id": f"{kind}-{object_id}",
                    "content_hash": f"{object_id:064d}",
                    "last_status": "created",
                    "updated_at": sent_at,
                }
                for kind, object_id in ledger
            ],
        )
        items = [
            {"kind": "lineItem", "coursework_id": work, "outcome": "exported", "reason": ""}
            for work in works
        ] + [
            {
                "kind": "result",
                "coursework_id": row.coursework_id,
                "student_id": row.student_id,
                "outcome": "exported" if row.state == "returned" else "skipped",
                "reason": "" if row.state == "returned" else "The mark is a draft: return it.",
                "skip_reason": None if row.state == "returned" else "draft_mark",
            }
            for row in rows
        ]
        session.execute(
            insert(Report),
            [
                {
                    "class_id": class_id,
                    "dry_run": False,
                    "outcome": "succeeded",
                    "started_at": started,
                    "finished_at": sent_at,
                    "summary": {"counts": {"result": {"exported": len(ledger) - len(works)}}},
                    "items": items,
                }
            ],
        )
        for row in rows[::10]:
            if row.state == "returned":
                session.get_one(Mark, row.id).comment = "changed since"


async def measure(classroom: Classroom, class_id: int, requests: int) -> dict[str, Any]:
    app = create_app(classroom)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        login = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        signed_in = await client.post(
            "/login",
            data={"email": TEACHER, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert signed_in.status_code == 303, signed_in.text
        figures: dict[str, Any] = {}
        pages = {
            "gradebook": f"/classes/{class_id}/gradebook",
            "class_page": f"/classes/{class_id}",
            "my_classes": "/classes",
        }
        for name, path in pages.items():
            first = await client.get(path)  # warm: templates compiled, caches filled
            assert first.status_code == 200, first.text[:500]
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
            timings.sort()
            figures[name] = {
                "requests": requests,
                "median_ms": round(statistics.median(timings), 1),
                "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
                "max_ms": round(timings[-1], 1),
                "bytes": len(first.content),
            }
            if name == "gradebook":
                figures[name]["cells"] = first.text.count('<input name="m')
                figures[name]["cell_states"] = {
                    state: first.text.count(f" x-{state}")
                    for state in ("sent", "changed", "skipped")
                }
    app.state.background.stop()
    return figures


DISTRICT_STUDENTS = 50_000
DISTRICT_TEACHERS = 2_500
CLASSES_PER_TEACHER = 5
CLASSES_PER_STUDENT = 6
AUDIT_EVENTS = 20_000
# Activity's charts sum the last 30 days: a nightly export of 2,000 classes (60,000 export
# reports, one in 7 with skipped items, one in 50 with a failed one) and 4 roster imports a day.
EXPORT_DAYS = 30
EXPORTS_PER_DAY = 2_000
ROSTER_IMPORTS_PER_DAY = 4
ADMIN = "admin@district.example"


def build_district(classroom: Classroom) -> None:
    """The district, inserted in bulk (the services' one-by-one checks would take minutes)."""
    from sqlalchemy import insert, text

    from sislink.classroom.models import (
        AuditEvent,
        Class,
        Enrolment,
        Job,
        JobStatus,
        MarkExportReport,
        Person,
    )

    system = Actor.system()
    with classroom.transaction() as session:
        admin = people.create_person(
            session, system, name="Ada Admin", email=ADMIN, roles=[Role.ADMIN]
        )
        accounts.set_password(session, system, admin.id, PASSWORD)
    with classroom.transaction() as session:
        first = 1_000_000
        session.execute(
            insert(Person),
            [
                {
                    "id": first + n,
                    "name": f"Teacher {n:05d}",
                    "email": f"t{n}@district.example",
                    "email_key": f"t{n}@district.example",
                    "is_teacher": True,
                    "sis_sourced_id": f"t-{n}",
                    "sis_identifier": f"T{n:05d}",
                }
                for n in range(DISTRICT_TEACHERS)
            ],
        )
        students = 2_000_000
        session.execute(
            insert(Person),
            [
                {
                    "id": students + n,
                    "name": f"{('Ana', 'Ben', 'Cho', 'Dev', 'Eve')[n % 5]} Student {n:05d}",
                    # One student in 50 has no email, as SIS exports often do.
                    "email": None if n % 50 == 0 else f"s{n}@pupils.example",
                    "email_key": None if n % 50 == 0 else f"s{n}@pupils.example",
                    "is_student": True,
                    "sis_sourced_id": f"s-{n}",
                    "sis_identifier": f"S{n:05d}",
                }
                for n in range(DISTRICT_STUDENTS)
            ],
        )
        classes_total = DISTRICT_TEACHERS * CLASSES_PER_TEACHER
        session.execute(
            insert(Class),
            [
                {
                    "id": first + c,
                    "title": f"{('Algebra', 'Biology', 'Chemistry', 'History', 'English')[c % 5]}"
                    f" {c:05d}",
                    "primary_teacher_id": first + c // CLASSES_PER_TEACHER,
                    "sis_sourced_id": f"c-{c}",
                }
                for c in range(classes_total)
            ],
        )
        rows = []
        for n in range(DISTRICT_STUDENTS):
            for k in range(CLASSES_PER_STUDENT):
                c = (n * CLASSES_PER_STUDENT + k * 997) % classes_total
                rows.append(
                    {
                        "class_id": first + c,
                        "person_id": students + n,
                        "role": EnrolmentRole.STUDENT.value,
                        "sis_sourced_id": f"e-{n}-{k}",
                    }
                )
        for chunk in range(0, len(rows), 50_000):
            session.execute(insert(Enrolment), rows[chunk : chunk + 50_000])
        session.execute(
            insert(AuditEvent),
            [
                {
                    "actor_id": admin.id if n % 3 else None,
                    "action": ("class.linked", "account.invited", "class.enrolled")[n % 3],
                    "subject": f"class:{first + n % classes_total}"
                    if n % 3 != 1
                    else f"person:{first + n % DISTRICT_TEACHERS}",
                    "details": {"person": students + n % DISTRICT_STUDENTS, "role": "student"}
                    if n % 3 == 2
                    else {},
                }
                for n in range(AUDIT_EVENTS)
            ],
        )
        today = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
        for day in range(EXPORT_DAYS):
            night = today - timedelta(days=day)
            reports = []
            for n in range(EXPORTS_PER_DAY):
                skipped, failed = (n % 7 == 0) * 2, (n % 50 == 0) * 1
                at = night + timedelta(seconds=n)
                reports.append(
                    {
                        "class_id": first + (day * EXPORTS_PER_DAY + n) % classes_total,
                        "dry_run": False,
                        "outcome": "partial"
                        if failed
                        else "needs_attention"
                        if skipped
                        else "succeeded",
                        "writes": 1 + n % 9,
                        "started_at": at,
                        "finished_at": at,
                        "summary": {
                            "outcome": "succeeded",
                            "writes": 1 + n % 9,
                            "counts": {
                                "lineItem": {"exported": 1, "skipped": skipped},
                                "result": {"exported": n % 9, "failed": failed},
                            },
                            "attention": {
                                "count": skipped,
                                "reasons": ["Quiz: It has no due date, and the SIS needs one."],
                            }
                            if skipped
                            else None,
                        },
                        "items": [],
                    }
                )
            session.execute(insert(MarkExportReport), reports)
            session.execute(
                insert(Job),
                [
                    {
                        "kind": "roster_import",
                        "status": JobStatus.SUCCEEDED.value,
                        "created_at": night + timedelta(hours=6 * k),
                        "started_at": night + timedelta(hours=6 * k),
                        "finished_at": night + timedelta(hours=6 * k, minutes=3),
                        "report": {
                            "status": "applied",
                            "mode": "delta",
                            "counts": {
                                "students": {"created": k, "updated": 20 + k, "deactivated": 1},
                                "enrolments": {"created": 6 * k, "updated": 0, "deactivated": 6},
                            },
                        },
                    }
                    for k in range(ROSTER_IMPORTS_PER_DAY)
                ],
            )
    if classroom.engine.dialect.name == "postgresql":
        # A bulk load leaves the planner without statistics until autovacuum runs: as a
        # district that has been running a while, with them.
        with classroom.engine.connect() as connection:
            connection.execute(text("ANALYZE")).close()
            connection.commit()


async def measure_district(classroom: Classroom, requests: int) -> dict[str, Any]:
    """The administrator's pages over the district: median, p95 and max milliseconds."""
    app = create_app(classroom)
    transport = httpx.ASGITransport(app=app)
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        login = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        signed_in = await client.post(
            "/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert signed_in.status_code == 303, signed_in.text
        # A page deep in the list: the keyset link of the page after "Eve Student 4...".
        deep = "/admin/people?role=student&after=Eve+Student+40000&after_id=2040000"
        pages = {
            "people": "/admin/people",
            "people_students_deep_page": deep,
            "people_search": "/admin/people?q=student+4321",
            "people_no_email": "/admin/people?role=student&no_email=on",
            "classes_page": "/admin/classes",
            "classes_search_unlinked": "/admin/classes?q=biology&link=unlinked",
            "activity": "/admin/activity",
        }
        for name, path in pages.items():
            first = await client.get(path)
            assert first.status_code == 200, first.text[:500]
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
            timings.sort()
            figures[name] = {
                "requests": requests,
                "median_ms": round(statistics.median(timings), 1),
                "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
                "max_ms": round(timings[-1], 1),
                "rows": first.text.count("<tr") - 1 + first.text.count('<li><span class="hint">'),
            }
    app.state.background.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument(
        "--database-url", default=None, help="Default: a SQLite file in a temp dir."
    )
    parser.add_argument(
        "--district",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also time People, Classes and Activity over a 50,000-student district.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        box = SecretBox.generate()
        classroom = open_classroom(url, secret_box=box)
        try:
            class_id = build_class(classroom)
            figures = asyncio.run(measure(classroom, class_id, args.requests))
        finally:
            classroom.close()
        district: dict[str, Any] = {}
        if args.district:
            url = args.database_url or f"sqlite:///{Path(folder) / 'district.db'}"
            # The same key: with --database-url both parts share one database (its console key).
            classroom = open_classroom(url, secret_box=box)
            try:
                started = time.perf_counter()
                build_district(classroom)
                seeded_s = round(time.perf_counter() - started, 1)
                district = asyncio.run(measure_district(classroom, args.requests))
                district["seeded_in_s"] = seeded_s
            finally:
                classroom.close()
    print(
        json.dumps(
            {
                "benchmark": "console_pages",
                "database": url.split(":")[0],
                "students": STUDENTS,
                "coursework": COURSEWORK,
                "target_gradebook_ms": 300,
                **figures,
                "gradebook_under_target": figures["gradebook"]["median_ms"] < 300,
                **(
                    {
                        "district": {
                            "students": DISTRICT_STUDENTS,
                            "teachers": DISTRICT_TEACHERS,
                            "classes": DISTRICT_TEACHERS * CLASSES_PER_TEACHER,
                            "enrolments": DISTRICT_STUDENTS * CLASSES_PER_STUDENT,
                            "audit_events": AUDIT_EVENTS,
                            "export_reports": EXPORT_DAYS * EXPORTS_PER_DAY,
                            "roster_imports": EXPORT_DAYS * ROSTER_IMPORTS_PER_DAY,
                            **district,
                        },
                        "district_pages_under_target": all(
                            page["median_ms"] < 300
                            for page in district.values()
                            if isinstance(page, dict)
                        ),
                    }
                    if district
                    else {}
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
