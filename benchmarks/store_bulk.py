"""Benchmark: bulk-upsert a district roster (55,000 people, 400,000 enrolments) into the classroom.

Loads an empty database, then loads the same roster again unchanged, on SQLite and on
PostgreSQL (SISLINK_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test,
skipped with a note when unreachable). Each database runs in its own process so that
peak RSS is its own. Prints one JSON document.

    .venv/bin/python benchmarks/store_bulk.py [--people N] [--enrolments N] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from sislink.classroom.bulk import (
    ClassRow,
    CourseRow,
    EnrolmentRow,
    PersonRow,
    SchoolRow,
    SourcedIdCache,
    TermRow,
    UpsertCounts,
    upsert_classes,
    upsert_courses,
    upsert_enrolments,
    upsert_people,
    upsert_schools,
    upsert_terms,
)
from sislink.classroom.db import Classroom, normalise_database_url, open_classroom
from sislink.classroom.models import EnrolmentRole, Role
from sislink.classroom.secrets import SecretBox

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_FIRST_LOAD_SECONDS = 60
TARGET_RELOAD_SECONDS = 30
RowT = TypeVar("RowT")


def make_roster(people: int, enrolments: int) -> dict[str, list[Any]]:
    """A deterministic district: 1 teacher per 15 people, about 30 students per class."""
    teachers = max(1, people // 15)
    students = people - teachers
    classes = max(1, enrolments // 31)
    schools = max(1, people // 1000)
    courses = max(1, classes // 6)
    roster: dict[str, list[Any]] = {
        "schools": [SchoolRow(f"sch-{i}", f"School {i}") for i in range(schools)],
        "terms": [
            TermRow("term-1", "Autumn", date(2026, 8, 20), date(2026, 12, 20), "2027"),
            TermRow("term-2", "Spring", date(2027, 1, 5), date(2027, 6, 10), "2027"),
        ],
        "courses": [
            CourseRow(f"crs-{i}", f"Course {i}", f"C{i}", f"sch-{i % schools}")
            for i in range(courses)
        ],
        "classes": [
            ClassRow(
                f"cls-{i}",
                f"Class {i}",
                f"S{i % 9}",
                f"sch-{i % schools}",
                f"term-{1 + i % 2}",
                f"crs-{i % courses}",
            )
            for i in range(classes)
        ],
        "people": [
            PersonRow(
                f"tch-{i}",
                f"Teacher {i}",
                f"teacher{i}@district.example",
                roles=frozenset({Role.TEACHER}),
            )
            for i in range(teachers)
        ]
        + [
            PersonRow(
                f"stu-{i}",
                f"Student {i}",
                f"student{i}@district.example",
                identifier=f"ID{i:07d}",
                roles=frozenset({Role.STUDENT}),
            )
            for i in range(students)
        ],
    }
    rows: list[EnrolmentRow] = []
    for class_index in range(classes):
        rows.append(
            EnrolmentRow(
                f"enr-t-{class_index}",
                f"cls-{class_index}",
                f"tch-{class_index % teachers}",
                EnrolmentRole.TEACHER,
                is_primary=True,
            )
        )
    student_enrolments = enrolments - len(rows)
    for i in range(student_enrolments):
        rows.append(
            EnrolmentRow(
                f"enr-s-{i}",
                f"cls-{i % classes}",
                f"stu-{(i * 7919) % students}",
                EnrolmentRole.STUDENT,
            )
        )
    roster["enrolments"] = rows
    return roster


def batches(rows: Sequence[RowT], size: int) -> Iterator[Sequence[RowT]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def load(classroom: Classroom, roster: dict[str, list[Any]], batch_size: int) -> dict[str, Any]:
    """Upsert the roster in batches, one transaction per batch, as the roster import does."""
    cache = SourcedIdCache()
    writers: list[tuple[str, Callable[[Session, Sequence[Any]], UpsertCounts]]] = [
        ("schools", upsert_schools),
        ("terms", upsert_terms),
        ("courses", partial(upsert_courses, cache=cache)),
        ("classes", partial(upsert_classes, cache=cache)),
        ("people", upsert_people),
        ("enrolments", partial(upsert_enrolments, cache=cache)),
    ]
    started = time.perf_counter()
    totals: dict[str, dict[str, int]] = {}
    for kind, writer in writers:
        counts = UpsertCounts()
        for batch in batches(roster[kind], batch_size):
            with classroom.transaction() as session:
                counts = counts + writer(session, batch)
        totals[kind] = {
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "skipped": len(counts.skipped),
        }
    return {"seconds": round(time.perf_counter() - started, 2), "counts": totals}


def run_one(database: str, people: int, enrolments: int, batch_size: int) -> dict[str, Any]:
    roster = make_roster(people, enrolments)
    box = SecretBox.generate()
    cleanup: Any = None
    if database == "sqlite":
        directory = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(directory.name) / 'bench.db'}"
        cleanup = directory.cleanup
    else:
        base = normalise_database_url(
            os.environ.get("SISLINK_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
        )
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))

        def drop_schema() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

        url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
        cleanup = drop_schema
    try:
        classroom = open_classroom(url, secret_box=box)
        first = load(classroom, roster, batch_size)
        again = load(classroom, roster, batch_size)
        classroom.close()
    finally:
        cleanup()
    return {
        "first_load_seconds": first["seconds"],
        "unchanged_reload_seconds": again["seconds"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "first_load_counts": first["counts"],
        "reload_counts": again["counts"],
        "meets_target": first["seconds"] <= TARGET_FIRST_LOAD_SECONDS
        and again["seconds"] <= TARGET_RELOAD_SECONDS,
    }


def postgres_reachable() -> str | None:
    """None if the benchmark PostgreSQL answers, else why not."""
    url = normalise_database_url(
        os.environ.get("SISLINK_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    )
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # any failure to connect means: skip, and say why
        return f"PostgreSQL at {url.render_as_string(hide_password=True)} unreachable: {type(error).__name__}"
    return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=55_000)
    parser.add_argument("--enrolments", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.database:
        print(json.dumps(run_one(args.database, args.people, args.enrolments, args.batch)))
        return
    results: dict[str, Any] = {
        "benchmark": "store_bulk",
        "people": args.people,
        "enrolments": args.enrolments,
        "batch": args.batch,
        "targets": {
            "first_load_seconds": TARGET_FIRST_LOAD_SECONDS,
            "unchanged_reload_seconds": TARGET_RELOAD_SECONDS,
        },
    }
    for database in ("sqlite", "postgresql"):
        if database == "postgresql" and (why := postgres_reachable()) is not None:
            results[database] = {"skipped": why}
            continue
        command = [
            sys.executable,
            __file__,
            "--database",
            database,
            "--people",
            str(args.people),
            "--enrolments",
            str(args.enrolments),
            "--batch",
            str(args.batch),
        ]
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        if finished.returncode != 0:
            results[database] = {"failed": finished.stderr.strip().splitlines()[-1:]}
        else:
            results[database] = json.loads(finished.stdout)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
