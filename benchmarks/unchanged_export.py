"""Benchmark: an export of every class when nothing changed since the last export (issue 15):
8,000 linked classes of 20 students x 10 coursework (200 marks each, 1.6 million in all) on a
SQLite classroom, with the built-in SIS in its own process. Prints JSON: seconds, the SIS
requests sent (must be 0), writes (must be 0), peak RSS.

Target: 8,000 unchanged classes in under 10 s.

Setup (not measured): the first `--exported` classes (default 20) are linked to real SIS
classes with their real students and exported for real (a first export, then a check that a
second export planned in full sends nothing). The other classes are linked to SIS class ids the
SIS does not have: their ledger and export state are written by the same planner and digest
code an export uses (`plan_export`, `current_digests`), as if they had been exported, since
8,000 real first exports would take an hour. The measured run is `export_all_classes` over all
classes with a fresh client, as an administrator's `sislink marks export --all` makes it.

With `--reuse DIR` the classroom (DIR/bench.db) and the SIS's store (DIR/sis.db, a SQLite
file) are kept in DIR: the first run fills them (the setup, ~20 minutes for 8,000 classes on
this machine) and measures; a later run with the same DIR skips the setup and measures only the
exports (the SIS is started again on its store, at the port the connection was saved with).

Run: .venv/bin/python benchmarks/unchanged_export.py [--classes 8000] [--exported 20]
    [--reuse DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import (
    Category,
    Class,
    ClassExportSettings,
    ClassLink,
    Coursework,
    Enrolment,
    ExportKind,
    ExportRecord,
    Mark,
    Person,
    utc_now,
)
from sislink.classroom.services import connections
from sislink.classroom.services.organisation import identity_namespace
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.store import ProviderStore
from sislink.partners import profile as partner_profile
from sislink.settings import Settings
from sislink.sync import export_state, preflight
from sislink.sync.class_link import kept_sis_class_facts
from sislink.sync.export_report import ExportOutcome
from sislink.sync.identity import class_identity
from sislink.sync.mark_export import export_all_classes, export_class_marks
from sislink.sync.mark_export_plan import plan_export, read_class_facts
from sislink.sync.sis_client import settings_for

STUDENTS_PER_CLASS = 20
COURSEWORK_PER_CLASS = 10
DISTRICT_STUDENTS = 3000  # the SIS's district (480 classes), same seed as the SIS process
PARTNER = "generic-1.2"


SERVER_ON_STORE = r"""
import sys, uvicorn
from sislink.oneroster.provider.app import create_app
from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import bind_socket, build_config
from sislink.oneroster.provider.store import ProviderStore
students, path, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = ProviderStore(path)
if not any(True for _ in store.iter_all("org")):
    seed_district(store, seed=7, students=students)
config = build_config(profile_named("generic-1.2"), client_id="bench", client_secret="bench-secret",
                      latency_ms=0)
sock = bind_socket("127.0.0.1", port)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(create_app(store, config), log_level="warning", access_log=False,
                              lifespan="off")).run(sockets=[sock])
"""


def start_kept_sis(store: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """The built-in SIS in its own process on a store kept in a file (seeded when new), at
    `port` (0: any free port); returns it and its origin."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_ON_STORE, str(DISTRICT_STUDENTS), str(store), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    origin = f"http://127.0.0.1:{process.stdout.readline().strip()}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(origin + "/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return process, origin


def bench_classroom(home: Path) -> Classroom:
    """The classroom in `home` (bench.db), its secrets sealed with that home's key, so that a
    later run (`--reuse`) opens them again."""
    return open_classroom(Settings.for_home(home, f"sqlite:///{home}/bench.db"))


def fill_classroom(home: Path, origin: str, classes: int, exported: int) -> Classroom:
    """A classroom connected to the SIS with `classes` linked classes full of returned marks;
    the first `exported` are the SIS's own classes with their own students."""
    classroom = bench_classroom(home)
    store = ProviderStore()
    seed_district(store, seed=7, students=DISTRICT_STUDENTS)
    users = {u["sourcedId"]: u for u in store.iter_all("user")}
    rosters: dict[str, list[str]] = {}
    for enrolment in store.iter_all("enrollment"):
        if enrolment["role"] == "student":
            rosters.setdefault(enrolment["class"]["sourcedId"], []).append(
                enrolment["user"]["sourcedId"]
            )
    real = sorted(c for c, r in rosters.items() if len(r) >= STUDENTS_PER_CLASS)[:exported]
    period = next(s for s in store.iter_all("academicSession") if s["type"] == "gradingPeriod")
    start = datetime.fromisoformat(period["startDate"]).date()
    due = datetime.combine(start + timedelta(days=5), day_time(12), tzinfo=UTC)
    everyone = sorted({s for roster in rosters.values() for s in roster})
    rng = random.Random(7)
    with classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            Actor.system(),
            classroom.secret_box,
            partner=PARTNER,
            version="1.2",
            host_url=origin,
            access_key="bench",
            secret_code="bench-secret",
            token_url=f"{origin}/oauth2/token",
        )
        district = next(o["sourcedId"] for o in store.iter_all("org") if o["type"] == "district")
        connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id=district)
        session.execute(
            insert(Person),
            [
                {
                    "name": f"{users[s]['givenName']} {users[s]['familyName']}",
                    "email": users[s]["email"],
                    "email_key": users[s]["email"].lower(),
                    "is_student": True,
                    "sis_sourced_id": s,
                }
                for s in everyone
            ],
        )
        person_of = dict(
            session.execute(
                select(Person.sis_sourced_id, Person.id).where(Person.is_student.is_(True))
            ).all()
        )
        session.execute(
            insert(Class),
            [{"title": f"Class {n + 1}", "hand_edited_fields": []} for n in range(classes)],
        )
        class_ids = list(session.scalars(select(Class.id).order_by(Class.id)))
        sis_class_of = {
            class_id: real[n] if n < len(real) else f"bench-class-{n + 1}"
            for n, class_id in enumerate(class_ids)
        }
        students_of = {
            class_id: (
                [person_of[s] for s in rosters[sis_class_of[class_id]][:STUDENTS_PER_CLASS]]
                if n < len(real)
                else [person_of[s] for s in rng.sample(everyone, STUDENTS_PER_CLASS)]
            )
            for n, class_id in enumerate(class_ids)
        }
        session.execute(
            insert(ClassLink),
            [
                {"class_id": c, "connection_id": saved.id, "sis_class_sourced_id": sis_class_of[c]}
                for c in class_ids
            ],
        )
        session.execute(insert(Category), [{"class_id": c, "title": "Homework"} for c in class_ids])
        category_of = dict(session.execute(select(Category.class_id, Category.id)).all())
        session.execute(
            insert(Enrolment),
            [
                {"class_id": c, "person_id": p, "role": "student"}
                for c in class_ids
                for p in students_of[c]
            ],
        )
        session.execute(
            insert(Coursework),
            [
                {
                    "class_id": c,
                    "title": f"Coursework {n + 1}",
                    "description": "",
                    "max_points": 10.0,
                    "due_date": due,
                    "category_id": category_of[c],
                    "state": "published",
                    "export_to_sis": True,
                }
                for c in class_ids
                for n in range(COURSEWORK_PER_CLASS)
            ],
        )
        works: dict[int, list[int]] = {}
        for work_id, class_id in session.execute(select(Coursework.id, Coursework.class_id)):
            works.setdefault(class_id, []).append(work_id)
        rows = [
            {
                "coursework_id": w,
                "student_id": p,
                "score": float(rng.randint(0, 12)),
                "state": "returned",
                "comment": "",
            }
            for c in class_ids
            for w in works[c]
            for p in students_of[c]
        ]
        for begin in range(0, len(rows), 50_000):
            session.execute(insert(Mark), rows[begin : begin + 50_000])
        # The SIS facts of each class, as a link (or a roster import) keeps them.
        school_of = {c["sourcedId"]: c["school"]["sourcedId"] for c in store.iter_all("class")}
        homework = {
            c["metadata"]["classSourcedId"]: c["sourcedId"]
            for c in store.iter_all("category")
            if c["title"] == "Homework" and (c.get("metadata") or {}).get("classSourcedId")
        }
        periods = [
            {
                "sourcedId": period["sourcedId"],
                "title": period["title"],
                "startDate": period["startDate"],
                "endDate": period["endDate"],
            }
        ]
        session.execute(
            insert(ClassExportSettings),
            [
                {
                    "class_id": c,
                    "missing_as": "zero",
                    "export_drafts": False,
                    "sis_school_sourced_id": school_of.get(sis_class_of[c], "bench-school"),
                    "sis_term_sourced_ids": [],
                    "sis_grading_periods": periods,
                    "sis_categories": [
                        {
                            "sourcedId": homework.get(sis_class_of[c], f"bench-homework-{c}"),
                            "title": "Homework",
                        }
                    ],
                    "sis_not_served": [],
                    "sis_refreshed_at": utc_now(),
                }
                for c in class_ids
            ],
        )
    return classroom


def seed_ledger(classroom: Classroom, class_ids: list[int]) -> int:
    """Write the ledger and export state of classes that were never exported for real, with
    the planner and digest an export uses: as if each had been exported cleanly."""
    written = 0
    for begin in range(0, len(class_ids), 200):
        chunk = class_ids[begin : begin + 200]
        with classroom.transaction() as session:
            connection = connections.current_connection(session)
            assert connection is not None
            namespace = identity_namespace(session)
            default = partner_profile(connection.partner).default_category
            digests = export_state.current_digests(session, chunk)
            ledger: list[dict[str, Any]] = []
            for class_id in chunk:
                link = connections.class_link(session, class_id)
                assert link is not None
                sis_facts = kept_sis_class_facts(session, class_id)
                assert sis_facts is not None
                scope = class_identity(connection.partner, link.sis_class_sourced_id)
                facts = read_class_facts(
                    session,
                    class_id=class_id,
                    title=f"Class {class_id}",
                    sis_class_id=link.sis_class_sourced_id,
                    scope=scope,
                    namespace=namespace,
                    missing_as="zero",
                    export_drafts=False,
                    default_category=default,
                    title_limit=preflight.DEFAULT_TITLE_LIMIT,
                )
                students = {s.sis_sourced_id for s in facts.students.values() if s.sis_sourced_id}
                directory = preflight.StudentDirectory({s: s for s in students}, {}, {})
                plan = plan_export(facts, sis_facts, directory, version_has_school=True)
                assert not plan.kept and not plan.deletes
                puts = [
                    op
                    for li in plan.line_items
                    for op in ([li.put] if li.put else []) + list(li.results)
                ]
                ledger += [
                    {
                        "kind": op.kind.value,
                        "object_id": op.object_id,
                        "sis_identity": scope,
                        "sis_sourced_id": op.sourced_id,
                        "content_hash": op.content_hash,
                        "last_status": "created",
                        "last_message": "",
                    }
                    for op in puts
                ]
                lines = sum(1 for op in puts if op.kind is ExportKind.LINE_ITEM)
                export_state.remember_clean_export(
                    session,
                    class_id,
                    scope,
                    digests[class_id].digest,
                    {"lineItem": {"exported": lines}, "result": {"exported": len(puts) - lines}},
                )
                written += len(puts)
            session.execute(insert(ExportRecord), ledger)
    return written


async def export_for_real(classroom: Classroom, class_ids: list[int]) -> dict[str, Any]:
    """The real classes' first export, then a second one planned in full (the state dropped):
    it must send nothing, which shows the seeded ledger is what a real export writes."""
    with classroom.session() as session:
        connection = connections.current_connection(session)
        assert connection is not None
        settings = settings_for(connection, classroom.secret_box)
    writes = 0
    async with OneRosterClient(settings) as client:
        for class_id in class_ids:
            report = await export_class_marks(classroom, client, Actor.system(), class_id)
            assert report.outcome is ExportOutcome.SUCCEEDED, report.summary()
            writes += report.writes
        with classroom.transaction() as session:
            for class_id in class_ids:
                export_state.forget_state(session, class_id=class_id)
        for class_id in class_ids:
            again = await export_class_marks(classroom, client, Actor.system(), class_id)
            assert again.writes == 0 and again.unchanged_since is None, again.summary()
    return {"classes": len(class_ids), "first_export_writes": writes}


def waited_for_cpu_s() -> float | None:
    """Seconds this process's threads have waited, runnable, for a CPU (Linux schedstat: the
    second field). On a loaded machine this is where wall time goes beyond CPU time."""
    total = 0
    try:
        for task in Path("/proc/self/task").iterdir():
            total += int((task / "schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e9


def io_bytes() -> dict[str, int]:
    """This process's storage reads and writes so far (Linux /proc/self/io)."""
    try:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        return {"read": int(fields["read_bytes"]), "written": int(fields["write_bytes"])}
    except (OSError, KeyError, ValueError):
        return {}


async def measure(classroom: Classroom) -> dict[str, Any]:
    with classroom.session() as session:
        connection = connections.current_connection(session)
        assert connection is not None
        settings = settings_for(connection, classroom.secret_box)
    async with OneRosterClient(settings) as client:
        waited = waited_for_cpu_s()
        io_before = io_bytes()
        cpu = time.process_time()
        started = time.perf_counter()
        reports = await export_all_classes(classroom, client, Actor.system())
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        waited_after = waited_for_cpu_s()
        io_after = io_bytes()
        calls = client.calls_made
    return {
        "classes": len(reports),
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        # Wall time beyond CPU time: waiting for a CPU (other processes on the cores) or for
        # storage (the bytes read from and written to the disk, not the page cache).
        "waited_for_cpu_s": (
            round(waited_after - waited, 2)
            if waited is not None and waited_after is not None
            else None
        ),
        "disk_mb": {k: round((io_after[k] - io_before[k]) / 1e6, 1) for k in io_after},
        "ms_per_class": round(seconds * 1000 / max(len(reports), 1), 3),
        "sis_requests": calls,
        "writes": sum(r.writes for r in reports),
        "unchanged": sum(1 for r in reports if r.unchanged_since is not None),
        "outcomes": sorted({r.outcome.value for r in reports}),
    }


def set_up(home: Path, origin: str, classes: int, exported: int) -> dict[str, Any]:
    """Fill the classroom in `home`, export its real classes and seed the others' ledger."""
    started = time.perf_counter()
    classroom = fill_classroom(home, origin, classes, exported)
    with classroom.session() as session:
        class_ids = list(session.scalars(select(Class.id).order_by(Class.id)))
    real = asyncio.run(export_for_real(classroom, class_ids[:exported]))
    seeded = seed_ledger(classroom, class_ids[exported:])
    classroom.close()
    return {
        "classes": classes,
        "setup_s": round(time.perf_counter() - started, 1),
        "exported_for_real": real,
        "seeded_ledger_entries": seeded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--classes", type=int, default=8000)
    parser.add_argument("--exported", type=int, default=20, help="classes exported for real")
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR",
        help="keep the classroom and the SIS's store in DIR; a later run with the same DIR "
        "skips the setup and measures only the exports",
    )
    args = parser.parse_args()
    if not 0 <= args.exported <= min(args.classes, 400):
        parser.error("--exported must be between 0 and min(--classes, 400)")
    load_before = round(os.getloadavg()[0], 2)
    with contextlib.ExitStack() as stack:
        if args.reuse is not None:
            home = args.reuse.resolve()
            home.mkdir(parents=True, exist_ok=True)
        else:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        kept = home / "setup.json"
        setup: dict[str, Any] = json.loads(kept.read_text()) if kept.exists() else {}
        if setup and setup["classes"] != args.classes:
            parser.error(
                f"{home} holds {setup['classes']} classes; ask for as many, or another DIR"
            )
        process, origin = start_kept_sis(home / "sis.db", int(setup.get("sis_port", 0)))
        stack.callback(process.wait, timeout=10)
        stack.callback(process.terminate)
        reused = bool(setup)
        if not reused:
            (home / "bench.db").unlink(missing_ok=True)
            setup = set_up(home, origin, args.classes, args.exported)
            setup["sis_port"] = int(origin.rsplit(":", 1)[1])
            if args.reuse is not None:
                kept.write_text(json.dumps(setup))
        classroom = bench_classroom(home)
        stack.callback(classroom.close)
        load_at_start = round(os.getloadavg()[0], 2)
        figures = asyncio.run(measure(classroom))
        again = asyncio.run(measure(classroom))
    print(
        json.dumps(
            {
                "benchmark": "unchanged_export",
                "classes": args.classes,
                "marks_per_class": STUDENTS_PER_CLASS * COURSEWORK_PER_CLASS,
                "setup_s": setup["setup_s"],
                "setup_reused": reused,
                "exported_for_real": setup["exported_for_real"],
                "seeded_ledger_entries": setup["seeded_ledger_entries"],
                "unchanged_export": figures,
                "unchanged_export_again": again,
                "target_s": 10,
                "target_met": figures["seconds"] < 10 and figures["sis_requests"] == 0,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_1m_before": load_before,
                    "load_average_1m_at_measure": load_at_start,
                    "load_average_1m_after": round(os.getloadavg()[0], 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
