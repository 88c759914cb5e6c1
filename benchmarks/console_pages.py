"""Benchmark: a teacher's gradebook page for 35 students x 40 coursework (1,400 marks), served by
the console app in-process (httpx.ASGITransport: no network, so the time is the server's:
session check, queries, template), signed in through the real sign-in form. Also the class page
and My classes. Prints JSON: median, p95 and max milliseconds per page over N requests.

Target: the gradebook under 300 ms server time (not asserted in tests).

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
        return made.id


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
    app.state.background.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument(
        "--database-url", default=None, help="Default: a SQLite file in a temp dir."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        classroom = open_classroom(url, secret_box=SecretBox.generate())
        try:
            class_id = build_class(classroom)
            figures = asyncio.run(measure(classroom, class_id, args.requests))
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
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
