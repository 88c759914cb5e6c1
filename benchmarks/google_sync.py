"""Benchmark: the bridge SIS -> Google Classroom -> SIS (issue 13) on loopback. Prints JSON.

A district of 2,000 students (about 300 classes, same seed as the local Classroom's domain) in
the built-in SIS, imported into a classroom (SQLite), then:

Roster, into an empty local Classroom with 50 ms latency per HTTP request:
  first       the first sync (every course created, every member added)
  unchanged   the same sync again: target 0 writes
  one_percent after 1% of the student enrolments ended in the SIS and as many new ones made
              (in the SIS's store, then a delta roster import): writes = what changed
The bound of a sync of N API calls is the larger of
  - ceil(N / 50) x latency / concurrency (a batch of up to 50 calls is one round trip), and
  - N / the quota in calls a second: every call is made as the one administrator, so Google's
    per-user quota (1,200 a minute) binds before the per-client one (3,000 a minute).
Target: the first sync within 2x of the bound.

Grades, for every course x `--works` courseWork (published, with points, a due date and a grade
category), each student's grade assigned and returned, then: the first pull with the export to
the SIS, a pull with nothing changed (target 0 writes to the SIS), and a pull after 1% of the
grades were changed in Classroom: target, the results sent to the SIS are exactly the changed
grades (and no lineItem).

The courseWork and grades are made inside the local Classroom's process by its own methods
(the code its API runs, as the courses' owners), not over HTTP: 240,000 grades through the API
would take most of an hour to set up. The courses themselves, their members and grading periods
come from sislink's sync over HTTP. The pulls and exports are sislink's, over HTTP.

Configurations (each a fresh local Classroom in its own process, fresh quota windows):
  google  Google's published quotas (1,200/min per user, 3,000/min per client)
  raised  quotas raised to 1,000,000/min (as a project Google granted more, or the local
          Classroom told other limits): the latency bound binds

The SIS runs in its own process on a file store (as benchmarks/roster_import.py), without added
latency (its latency is benchmarks/mark_export.py's subject).

Run: .venv/bin/python benchmarks/google_sync.py [--config raised|google|both] [--students 2000]
       [--works 20] [--graded N] [--latency-ms 50] [--no-grades]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

CLIENT_ID, CLIENT_SECRET = "bench", "bench-secret"
GOOGLE_PER_USER = 1200
GOOGLE_PER_CLIENT = 3000
RAISED = 1_000_000
CONCURRENCY = 16
BATCH = 50

SIS_SERVER = """
import sys, time
from sislink.oneroster.provider.server import running_provider
from sislink.oneroster.provider.store import ProviderStore
store = ProviderStore(sys.argv[1])
with running_provider(store=store, client_id="bench", client_secret="bench-secret") as sis:
    print(sis.host_url, sis.token_url, flush=True)
    while True:
        time.sleep(3600)
"""

# The local Classroom in its own process; after its first line it takes commands on stdin (one
# JSON object a line) and answers each with one JSON line: what a teacher does in Classroom,
# made by the Classroom's own methods as the course's owner.
CLASSROOM_SERVER = r"""
import json, sys, threading, time
from pathlib import Path
import tempfile
import uvicorn
from sislink.googleclassroom import SCOPES
from sislink.googleclassroom.emulator.app import ClassroomConfig, create_app
from sislink.googleclassroom.emulator.backend import Caller
from sislink.googleclassroom.emulator.keys import Project
from sislink.googleclassroom.emulator.server import MAIN_PROJECT, bind_socket, open_classroom

students, latency, per_user, per_client = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sock = bind_socket("127.0.0.1", 0)
origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
config = ClassroomConfig(latency_ms=latency, per_user_per_minute=per_user, per_client_per_minute=per_client)
classroom, key_file = open_classroom(origin=origin, students=students, config=config,
                                     key_file=Path(tempfile.mkdtemp()) / "key.json")
backend = classroom.backend
directory = backend.directory
server = uvicorn.Server(uvicorn.Config(create_app(classroom), log_level="warning",
                                       access_log=False, lifespan="off"))
threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
while not server.started:
    time.sleep(0.01)
print(json.dumps({"api_url": origin + "/", "key_file": str(key_file),
                  "admin_email": directory.admin.email, "domain": directory.domain}), flush=True)
project = Project.from_json(backend.tables["project"][MAIN_PROJECT])
graded = []  # (course id, courseWork id, submission id, grade)

def owner_of(course):
    return Caller(user=directory.by_id[course["ownerId"]], project=project, scopes=frozenset(SCOPES))

def ours():
    return sorted(a["courseId"] for k, a in backend.tables["alias"].items() if k.startswith("d:sislink-"))

def make_grades(works, categories, due, per_work):
    made = 0
    started = time.perf_counter()
    with backend.lock:
        for course_id in ours():
            course = backend.tables["course"][course_id]
            caller = owner_of(course)
            if course["courseState"] == "PROVISIONED":  # the teacher accepts
                backend.courses_patch(caller, {"id": course_id, "updateMask": "courseState"},
                                      {"courseState": "ACTIVE"})
            settings = backend.set_grade_categories(course_id, [{"name": n} for n in categories],
                                                    "TOTAL_POINTS")
            ids = [c["id"] for c in settings["gradeCategories"]]
            for k in range(works):
                points = 10 * (1 + k % 5)
                work = backend.courses_courseWork_create(caller, {"courseId": course_id}, {
                    "title": f"Work {k + 1}", "workType": "ASSIGNMENT", "state": "PUBLISHED",
                    "maxPoints": points, "gradeCategory": {"id": ids[k % len(ids)]},
                    "dueDate": due, "dueTime": {"hours": 23, "minutes": 0}})
                made += 1
                listed = backend.courses_courseWork_studentSubmissions_list(
                    caller, {"courseId": course_id, "courseWorkId": work["id"], "pageSize": 1000}, None)
                subs = sorted(listed.get("studentSubmissions", []), key=lambda s: s["userId"])
                for i, sub in enumerate(subs if per_work <= 0 else subs[:per_work]):
                    grade = float(round(points * (0.5 + ((i * 7 + k * 3) % 50) / 100)))
                    params = {"courseId": course_id, "courseWorkId": work["id"], "id": sub["id"]}
                    backend.courses_courseWork_studentSubmissions_patch(
                        caller, {**params, "updateMask": "assignedGrade,draftGrade"},
                        {"assignedGrade": grade, "draftGrade": grade})
                    backend.courses_courseWork_studentSubmissions_return(caller, params, {})
                    graded.append((course_id, work["id"], sub["id"], grade))
        backend.commit()
    return {"courses": len(ours()), "course_work": made, "grades": len(graded),
            "seconds": round(time.perf_counter() - started, 1)}

def change_grades(every):
    changed = 0
    with backend.lock:
        for n, (course_id, work_id, sub_id, grade) in enumerate(graded):
            if n % every:
                continue
            course = backend.tables["course"][course_id]
            caller = owner_of(course)
            new = grade - 1 if grade >= 1 else grade + 1
            params = {"courseId": course_id, "courseWorkId": work_id, "id": sub_id}
            backend.courses_courseWork_studentSubmissions_patch(
                caller, {**params, "updateMask": "assignedGrade,draftGrade"},
                {"assignedGrade": new, "draftGrade": new})
            backend.courses_courseWork_studentSubmissions_return(caller, params, {})
            graded[n] = (course_id, work_id, sub_id, new)
            changed += 1
        backend.commit()
    return {"changed": changed}

def counts():
    with backend.lock:
        return {"courses": len(backend.tables["course"]), "ours": len(ours()),
                "http_requests": classroom.log.http_requests,
                "refused_for_quota": classroom.log.refused_for_quota}

for line in sys.stdin:
    command = json.loads(line)
    if command["do"] == "grades":
        answer = make_grades(command["works"], command["categories"], command["due"], command["per_work"])
    elif command["do"] == "change":
        answer = change_grades(command["every"])
    else:
        answer = counts()
    print(json.dumps(answer), flush=True)
"""


class LocalClassroom:
    """The local Classroom's process: its first line, then commands and answers."""

    def __init__(self, students: int, latency_ms: float, per_user: int, per_client: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CLASSROOM_SERVER, str(students), str(latency_ms),
             str(per_user), str(per_client)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the local Classroom did not start")
        self.info: dict[str, str] = json.loads(line)

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def seed_sis(path: Path, students: int) -> None:
    from sislink.oneroster.provider.seed import seed_district
    from sislink.oneroster.provider.store import ProviderStore

    with ProviderStore(path) as store:
        seed_district(store, seed=7, students=students)


def change_one_percent(path: Path) -> dict[str, int]:
    """End 1% of the student enrolments (tobedeleted) and enrol as many students in another
    class of their school, with a fresh dateLastModified: what a SIS's day of changes looks like."""
    from sislink.oneroster.models import format_datetime, utc_now
    from sislink.oneroster.provider.store import ProviderStore

    now = format_datetime(utc_now())
    with ProviderStore(path) as store:
        enrolments = [e for e in store.iter_all("enrollment") if e["role"] == "student"]
        classes_of: dict[str, set[str]] = {}
        by_school: dict[str, list[str]] = {}
        for e in enrolments:
            classes_of.setdefault(e["user"]["sourcedId"], set()).add(e["class"]["sourcedId"])
        for klass in store.iter_all("class"):
            by_school.setdefault(klass["school"]["sourcedId"], []).append(klass["sourcedId"])
        ended, added = [], []
        for i, e in enumerate(enrolments):
            if i % 100 == 0:
                ended.append({**e, "status": "tobedeleted", "dateLastModified": now})
            elif i % 100 == 50:
                student = e["user"]["sourcedId"]
                other = next(
                    (c for c in sorted(by_school[e["school"]["sourcedId"]])
                     if c not in classes_of[student]),
                    None,
                )  # fmt: skip
                if other is None:
                    continue
                classes_of[student].add(other)
                added.append(
                    {**e, "sourcedId": e["sourcedId"] + "-bench", "dateLastModified": now,
                     "class": {**e["class"], "sourcedId": other}}
                )  # fmt: skip
        store.insert_many("enrollment", ended + added)
    return {"enrolments_ended": len(ended), "enrolments_added": len(added)}


def bound(calls: int, latency_ms: float, per_user: int, per_client: int) -> dict[str, Any]:
    latency_bound = math.ceil(calls / BATCH) * latency_ms / 1000 / CONCURRENCY
    # Every call is made as the one administrator: the per-user quota binds, unless the
    # per-client one is lower.
    per_second = min(per_user, per_client) / 60
    quota_bound = calls / per_second
    return {
        "latency_bound_s": round(latency_bound, 2),
        "quota_bound_s": round(quota_bound, 2),
        "bound_s": round(max(latency_bound, quota_bound), 2),
        "binds": "quota" if quota_bound >= latency_bound else "latency",
    }


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, config: str) -> None:
        from sislink.classroom import open_classroom

        self.args = args
        self.config = config
        self.per_user = GOOGLE_PER_USER if config == "google" else RAISED
        self.per_client = GOOGLE_PER_CLIENT if config == "google" else RAISED
        self.store_path = tmp / f"sis-{config}.db"
        seed_sis(self.store_path, args.students)
        self.sis = subprocess.Popen(
            [sys.executable, "-c", SIS_SERVER, str(self.store_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.sis.stdout is not None
        self.host_url, self.token_url = self.sis.stdout.readline().split()
        self.google = LocalClassroom(args.students, args.latency_ms, self.per_user, self.per_client)
        self.classroom = open_classroom(f"sqlite:///{tmp / f'classroom-{config}.db'}")

    def close(self) -> None:
        self.classroom.close()
        self.google.stop()
        self.sis.terminate()
        self.sis.wait(timeout=10)

    def client_settings(self) -> Any:
        from sislink.googleclassroom import ClientSettings

        return ClientSettings(
            max_concurrency=CONCURRENCY,
            calls_per_minute_per_user=self.per_user,
            calls_per_minute=self.per_client,
        )

    async def connect(self) -> dict[str, Any]:
        from sislink.classroom import Actor
        from sislink.sync import connection, google_connection

        admin = Actor.system()
        connection.connect(
            self.classroom,
            admin,
            sis="generic-1.2",
            host_url=self.host_url,
            access_key=CLIENT_ID,
            secret_code=CLIENT_SECRET,
            token_url=self.token_url,
            insecure=True,
            allow_private=True,
        )
        await connection.authorise(self.classroom, admin)
        started = time.perf_counter()
        imported = await self.import_roster(full=True)
        key_file_text = await asyncio.to_thread(Path(self.google.info["key_file"]).read_text)
        google_connection.connect(
            self.classroom,
            admin,
            key_file_text=key_file_text,
            admin_email=self.google.info["admin_email"],
            api_endpoint=self.google.info["api_url"],
        )
        view = await asyncio.to_thread(google_connection.authorise, self.classroom, admin)
        assert str(view.status) == "authorised", view.checks
        return {"roster_import_s": round(time.perf_counter() - started, 1), **imported}

    async def import_roster(self, *, full: bool) -> dict[str, Any]:
        from sislink.classroom.models import Class
        from sislink.sync.roster_import import import_roster
        from sislink.sync.sis_client import open_sis_client

        with self.classroom.session() as session:
            from sislink.classroom.services.connections import current_connection

            current = current_connection(session)
            assert current is not None
            connection_id = current.id
        async with open_sis_client(self.classroom) as client:
            report = await import_roster(
                self.classroom, client, connection_id=connection_id, full=full
            )
        assert report.status == "applied", report.hold_reason
        with self.classroom.session() as session:
            classes = session.scalar(
                select(func.count()).select_from(Class).where(Class.sis_sourced_id.is_not(None))
            )
        counts = report.to_dict()["counts"]
        return {
            "classes": classes,
            "written": {
                entity: {k: v for k, v in c.items() if k != "unchanged" and v}
                for entity, c in counts.items()
                if any(v for k, v in c.items() if k != "unchanged")
            },
        }

    def sync(self) -> dict[str, Any]:
        from sislink.classroom import Actor
        from sislink.sync.google_roster import (
            google_connection_for_sync,
            open_google_client,
            sync_roster,
        )

        connection = google_connection_for_sync(self.classroom)
        before = self.google.ask(do="counts")
        with open_google_client(self.classroom, connection, self.client_settings()) as client:
            started = time.perf_counter()
            report = sync_roster(self.classroom, Actor.system(), client=client)
            seconds = time.perf_counter() - started
            retries = client.retries
        after = self.google.ask(do="counts")
        data = report.to_dict()
        calls = data["calls"]["reads"] + data["calls"]["writes"]
        return {
            "seconds": round(seconds, 2),
            "status": data["status"],
            "api_calls": calls,
            "reads": data["calls"]["reads"],
            "writes": data["calls"]["writes"],
            "http_requests": data["calls"]["http_requests"],
            "retries": retries,
            "refused_for_quota_by_classroom": after["refused_for_quota"]
            - before["refused_for_quota"],
            "counts": {
                name: {k: v for k, v in c.items() if v} for name, c in data["counts"].items()
            },
            "warnings": len(data["warnings"]),
            "classroom_courses": after["courses"],
            **bound(calls, self.args.latency_ms, self.per_user, self.per_client),
        }

    def due(self) -> dict[str, int]:
        """A day at least a week ahead inside a grading period of the district (not missing)."""
        from sislink.classroom.models import GradingPeriod

        soonest = datetime.now(UTC).date() + timedelta(days=7)
        with self.classroom.session() as session:
            spans = sorted(
                (p.start_date, p.end_date)
                for p in session.scalars(select(GradingPeriod))
                if p.start_date and p.end_date
            )
        for start, end in spans:
            day: date = max(soonest, start)
            if day <= end:
                return {"year": day.year, "month": day.month, "day": day.day}
        raise SystemExit("the district has no grading period ahead of today")

    def categories(self) -> list[str]:
        """Category titles every synced class has (what the teachers set in Classroom)."""
        from sislink.classroom.models import Category, GoogleCourseLink

        with self.classroom.session() as session:
            linked = set(session.scalars(select(GoogleCourseLink.class_id)))
            titles: Counter[str] = Counter(
                title
                for class_id, title in session.execute(
                    select(Category.class_id, Category.title).where(Category.active.is_(True))
                )
                if class_id in linked
            )
        return sorted(t for t, n in titles.items() if n == len(linked))

    async def pull(self) -> dict[str, Any]:
        from sislink.classroom import Actor
        from sislink.sync.google_grades import open_classroom_client, pull_grades
        from sislink.sync.mark_export import export_all_classes
        from sislink.sync.sis_client import open_sis_client

        admin = Actor.system()
        started = time.perf_counter()
        with open_classroom_client(self.classroom, self.client_settings()) as client:
            report = await asyncio.to_thread(pull_grades, self.classroom, admin, client=client)
        pulled = time.perf_counter() - started
        changed = report.changed_class_ids
        sent: Counter[str] = Counter()
        writes = 0
        if changed:
            async with open_sis_client(self.classroom) as sis:
                exports = await export_all_classes(self.classroom, sis, admin, class_ids=changed)
            for export in exports:
                writes += export.writes
                for kind, outcomes in export.counts().items():
                    for outcome, n in outcomes.items():
                        if n and outcome != "unchanged":
                            sent[f"{kind} {outcome}"] += n
        seconds = time.perf_counter() - started
        data = report.to_dict()
        return {
            "seconds": round(seconds, 2),
            "pull_seconds": round(pulled, 2),
            "http_requests": data["calls"],
            "api_calls": data["api_calls"],
            "courses": data["counts"]["courses"],
            "courses_changed": len(changed),
            "coursework": {k: v for k, v in data["counts"]["coursework"].items() if v},
            "marks": {k: v for k, v in data["counts"]["marks"].items() if v},
            "attention": (data.get("attention") or {}).get("count", 0),
            "sis_writes": writes,
            "sent": dict(sent),
        }


async def run_config(args: argparse.Namespace, tmp: Path, config: str) -> dict[str, Any]:
    bench = Bench(args, tmp, config)
    try:
        figures: dict[str, Any] = {
            "config": config,
            "quota_per_user_per_minute": bench.per_user,
            "quota_per_client_per_minute": bench.per_client,
        }
        figures["setup"] = await bench.connect()
        roster: dict[str, Any] = {}
        roster["first"] = await asyncio.to_thread(bench.sync)
        roster["first"]["ratio_to_bound"] = round(
            roster["first"]["seconds"] / roster["first"]["bound_s"], 2
        )
        roster["unchanged"] = await asyncio.to_thread(bench.sync)
        changed = change_one_percent(bench.store_path)
        delta = await bench.import_roster(full=False)
        roster["one_percent"] = {"sis_changes": changed, "import": delta["written"]}
        roster["one_percent"] |= await asyncio.to_thread(bench.sync)
        figures["roster"] = roster
        if not args.no_grades:
            grades: dict[str, Any] = {}
            categories = bench.categories()
            grades["setup"] = bench.google.ask(
                do="grades",
                works=args.works,
                categories=categories,
                due=bench.due(),
                per_work=args.graded,
            )
            grades["setup"]["categories"] = categories
            grades["first"] = await bench.pull()
            grades["unchanged"] = await bench.pull()
            grades["changed_in_classroom"] = bench.google.ask(do="change", every=100)["changed"]
            grades["one_percent"] = await bench.pull()
            figures["grades"] = grades
        return figures
    finally:
        bench.close()


def targets(result: dict[str, Any]) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for run in result["runs"]:
        name = run["config"]
        roster = run["roster"]
        found[f"{name}: first sync <= 2x bound"] = roster["first"]["ratio_to_bound"] <= 2
        found[f"{name}: unchanged sync makes 0 writes"] = roster["unchanged"]["writes"] == 0
        one = roster["one_percent"]
        found[f"{name}: 1% roster change writes exactly the changed enrolments"] = one[
            "writes"
        ] == sum(one["sis_changes"].values())
        found[f"{name}: no duplicate course"] = (
            roster["first"]["classroom_courses"]
            == roster["unchanged"]["classroom_courses"]
            == roster["one_percent"]["classroom_courses"]
        )
        grades = run.get("grades")
        if grades:
            found[f"{name}: unchanged pull sends 0 writes"] = grades["unchanged"]["sis_writes"] == 0
            found[f"{name}: 1% grade change sends exactly the changed results"] = grades[
                "one_percent"
            ]["sent"] == {"result exported": grades["changed_in_classroom"]} and (
                grades["one_percent"]["sis_writes"] == grades["changed_in_classroom"]
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["raised", "google", "both"], default="raised")
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--works", type=int, default=20)
    parser.add_argument(
        "--graded", type=int, default=0, help="students graded per courseWork (0: all)"
    )
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--no-grades", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    result: dict[str, Any] = {
        "benchmark": "google_sync",
        "students": args.students,
        "latency_ms": args.latency_ms,
        "concurrency": CONCURRENCY,
        "works_per_course": args.works,
        "graded_per_work": args.graded or "all",
        "runs": [],
    }
    configs = ["raised", "google"] if args.config == "both" else [args.config]
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            result["runs"].append(asyncio.run(run_config(args, Path(tmp), config)))
    result["targets"] = targets(result)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
