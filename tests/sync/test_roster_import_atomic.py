"""A roster import applies all of its changes or none: a SIS that fails mid-walk, a database that
refuses a row, a cancel or a kill -9 leave the classroom exactly as it was. Re-used and
re-numbered enrolment ids are data to report, invalid records are not deletions."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import MetaData, select, text

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Class, Enrolment, JobStatus, Person
from sislink.jobs.roster import run_roster_import
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.roster_import import RosterImportCancelled, RosterImportFailed
from sync.sis_shapes import Shape, shaped_provider
from sync.test_roster_import import (
    bumped,
    classroom_roster,
    client_for,
    connect,
    provider_roster,
    run_import,
)

SNAPSHOT_TABLES = (
    "school", "term", "grading_period", "course", "class", "person", "enrolment", "category",
    "class_link", "roster_sync_state", "class_export_settings",
)  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def snapshot(classroom: Classroom) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of the tables a roster import writes, as it is now (timestamps included)."""
    metadata = MetaData()
    metadata.reflect(classroom.engine, only=list(SNAPSHOT_TABLES))
    with classroom.engine.connect() as connection:
        return {
            name: {
                tuple(json.dumps(v, sort_keys=True, default=str) for v in row)
                for row in connection.execute(select(metadata.tables[name]))
            }
            for name in SNAPSHOT_TABLES
        }


def change_everything(running: RunningProvider) -> None:
    """A change in every kind of record, so that a half-applied import shows somewhere."""
    store = running.store
    for entity in ("org", "course", "class"):
        record = next(r for r in store.iter_all(entity) if r.get("type", "school") == "school")
        field = "name" if entity == "org" else "title"
        store.put(entity, bumped(record, **{field: f"Changed {entity}"}))
    for user in list(store.iter_all("user"))[:5]:
        store.put("user", bumped(user, givenName="Renamed"))
    student = next(u for u in store.iter_all("user") if u["roles"][0]["role"] == "student")
    store.put("user", bumped(student, sourcedId="brand-new-student", email="new@example.org"))


@pytest.mark.anyio
async def test_a_sis_that_fails_at_the_last_collection_changes_nothing(
    classroom: Classroom,
) -> None:
    shape = Shape()
    with shaped_provider(shape, students=80) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        before = snapshot(classroom)
        change_everything(running)
        shape.failing_path, shape.failing_status = "/categories", 500
        with pytest.raises(RosterImportFailed, match="changed nothing"):
            await run_import(classroom, connection_id, full=True)
        assert snapshot(classroom) == before
        # And once the SIS answers again, the same import applies it all.
        shape.failing_path = None
        report = await run_import(classroom, connection_id, full=True)
        assert classroom_roster(classroom) == provider_roster(running.store)
    assert report.status == "applied" and report.counts["students"].created == 1


def refuse_enrolment(classroom: Classroom, sourced_id: str) -> None:
    """A rule in the database itself (a trigger) that refuses one enrolment row."""
    with classroom.engine.begin() as connection:
        if classroom.dialect_name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON enrolment "
                    f"WHEN NEW.sis_sourced_id = '{sourced_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON enrolment FOR EACH ROW "
                    f"WHEN (NEW.sis_sourced_id = '{sourced_id}') EXECUTE FUNCTION refuse_one()"
                )
            )


@pytest.mark.anyio
async def test_a_database_refusal_changes_nothing_and_says_so_without_sql(
    classroom: Classroom, caplog: pytest.LogCaptureFixture
) -> None:
    with running_provider(students=80) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        before = snapshot(classroom)
        change_everything(running)
        last = list(running.store.iter_all("enrollment"))[-1]
        newcomer = {"sourcedId": "brand-new-student", "type": "user"}
        running.store.put(
            "enrollment", bumped(last, sourcedId="refused-enrolment", user=newcomer, role="student")
        )
        refuse_enrolment(classroom, "refused-enrolment")
        async with client_for(classroom, connection_id) as client:
            with caplog.at_level(logging.ERROR, logger="sislink"):
                outcome = await run_roster_import(
                    classroom, Actor.system(), client=client, full=True
                )
    assert outcome.status is JobStatus.FAILED
    assert snapshot(classroom) == before
    said = outcome.error or ""
    assert "changed nothing" in said
    for leak in ("INSERT", "SELECT", "parameters", "new@example.org", "enrolment."):
        assert leak not in said
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "refused by the test" in logged and "new@example.org" not in logged


@pytest.mark.anyio
async def test_a_cancelled_import_changes_nothing(classroom: Classroom) -> None:
    with running_provider(students=80) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        before = snapshot(classroom)
        change_everything(running)
        asked = iter(range(1000))
        with pytest.raises(RosterImportCancelled, match="nothing of it was applied"):
            # Stops while applying (the read asks a few times, then the batches do).
            await run_import(
                classroom, connection_id, full=True, batch_size=20,
                should_stop=lambda: next(asked) > 12,
            )  # fmt: skip
    assert snapshot(classroom) == before


@pytest.mark.anyio
async def test_enrolment_ids_the_sis_reused_or_renumbered_are_reported_not_a_crash(
    classroom: Classroom,
) -> None:
    with running_provider(students=80) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        store = running.store
        students = [e for e in store.iter_all("enrollment") if e["role"] == "student"]
        first = next(e for e in students)
        second = next(e for e in students if e["class"]["sourcedId"] != first["class"]["sourcedId"])
        third = next(
            e for e in students if e["sourcedId"] not in (first["sourcedId"], second["sourcedId"])
        )
        # The SIS swaps two ids between two class/person pairs...
        for one, other in ((first, second), (second, first)):
            store.put(
                "enrollment",
                bumped(one, **{"class": other["class"], "user": other["user"]}),
            )
        # ...and gives a third enrolment a new id (the old one is no longer sent).
        store.delete("enrollment", third["sourcedId"])
        store.put("enrollment", bumped(third, sourcedId="renumbered-enrolment"))

        # Small batches: the pairs meet across batches, where a unique key used to refuse them.
        report = await run_import(classroom, connection_id, full=True, batch_size=7)
        assert classroom_roster(classroom)["enrolments"] == provider_roster(store)["enrolments"]

    assert report.status == "applied"
    assert report.warnings["enrolments_moved"].count == 2
    with classroom.session() as session:

        def pair(sourced_id: str) -> tuple[str | None, str | None]:
            row = session.scalars(
                select(Enrolment).where(Enrolment.sis_sourced_id == sourced_id)
            ).one()
            assert row.active
            person = session.get(Person, row.person_id)
            assert person is not None
            cls = session.get(Class, row.class_id)
            assert cls is not None
            return cls.sis_sourced_id, person.sis_sourced_id

        assert pair(first["sourcedId"]) == (
            second["class"]["sourcedId"],
            second["user"]["sourcedId"],
        )
        assert pair(second["sourcedId"]) == (
            first["class"]["sourcedId"],
            first["user"]["sourcedId"],
        )
        assert pair("renumbered-enrolment") == (
            third["class"]["sourcedId"],
            third["user"]["sourcedId"],
        )


@pytest.mark.anyio
async def test_invalid_records_keep_their_people_and_the_job_needs_attention(
    classroom: Classroom,
) -> None:
    with running_provider(students=80) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        store = running.store
        spoiled = [u for u in store.iter_all("user") if u["roles"][0]["role"] == "student"][:3]
        for user in spoiled:
            store.put("user", bumped(user, status="Active!"))
        async with client_for(classroom, connection_id) as client:
            outcome = await run_roster_import(classroom, Actor.system(), client=client, full=True)
    assert outcome.status is JobStatus.NEEDS_ATTENTION
    rejected = {(r["sourced_id"], r["entity"]) for r in outcome.report["rejected"]}
    assert rejected == {(u["sourcedId"], "students") for u in spoiled}
    assert all("status" in r["reason"] for r in outcome.report["rejected"])
    assert outcome.report["attention"]["count"] == 3
    assert outcome.report["counts"]["students"]["deactivated"] == 0
    active = classroom_roster(classroom)["students"]
    assert {u["sourcedId"] for u in spoiled} <= active


@pytest.mark.anyio
async def test_a_database_error_before_the_transaction_is_the_sentence_too(
    classroom: Classroom,
) -> None:
    """The import reads the database before it writes (its watermark, the categories it
    knows): a refusal there is reported in words, like one in the transaction, never SQL."""
    with running_provider(students=40) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        with classroom.transaction() as session:
            session.execute(text("ALTER TABLE roster_sync_state RENAME TO roster_sync_state_away"))
        try:
            with pytest.raises(RosterImportFailed) as failed:
                await run_import(classroom, connection_id)  # a delta reads the watermark first
        finally:
            with classroom.transaction() as session:
                session.execute(
                    text("ALTER TABLE roster_sync_state_away RENAME TO roster_sync_state")
                )
    said = str(failed.value)
    assert "changed nothing" in said
    for leak in ("SELECT", "roster_sync_state", "parameters"):
        assert leak not in said


@pytest.mark.anyio
async def test_a_new_enrolment_id_takes_the_place_a_re_used_id_left(classroom: Classroom) -> None:
    with running_provider(students=40) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        store = running.store
        students = [e for e in store.iter_all("enrollment") if e["role"] == "student"]
        reused = students[0]
        elsewhere = next(
            e
            for e in students
            if e["class"]["sourcedId"] != reused["class"]["sourcedId"]
            and e["user"]["sourcedId"] != reused["user"]["sourcedId"]
        )
        # The SIS gives the id to another pair, and the old pair a new id.
        store.put("enrollment", bumped(reused, **{"class": elsewhere["class"]}))
        store.put("enrollment", bumped(reused, sourcedId="takes-the-old-place"))
        report = await run_import(classroom, connection_id, full=True, batch_size=7)
        assert classroom_roster(classroom)["enrolments"] == provider_roster(store)["enrolments"]
    assert report.status == "applied"
    assert "duplicate_enrolments" not in report.warnings
    assert report.warnings["enrolments_moved"].count == 1


@pytest.mark.anyio
async def test_a_held_import_ends_no_moved_enrolment_and_the_guard_counts_them(
    classroom: Classroom,
) -> None:
    with running_provider(students=80) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        store = running.store
        students = [e for e in store.iter_all("enrollment") if e["role"] == "student"]
        other_class = next(
            e for e in students if e["class"]["sourcedId"] != students[0]["class"]["sourcedId"]
        )
        # A quarter of the enrolment ids now name another class: each is an enrolment ended.
        moved = [
            e
            for e in students[: len(students) // 4]
            if e["class"]["sourcedId"] != other_class["class"]["sourcedId"]
        ]
        for enrolment in moved:
            store.put("enrollment", bumped(enrolment, **{"class": other_class["class"]}))
        report = await run_import(classroom, connection_id, full=True)
    assert report.status == "on_hold"
    assert "enrolments" in (report.hold_reason or "")
    assert report.counts["enrolments"].deactivated == 0
    assert "enrolments_moved_held" in report.warnings
    with classroom.session() as session:
        for enrolment in moved:
            row = session.scalars(
                select(Enrolment).where(Enrolment.sis_sourced_id == enrolment["sourcedId"])
            ).one()
            klass = session.get(Class, row.class_id)
            assert row.active and klass is not None
            assert klass.sis_sourced_id == enrolment["class"]["sourcedId"]  # as it was


@pytest.mark.anyio
async def test_an_invalid_grading_period_or_teacher_is_not_deactivated_and_is_reported_as_such(
    classroom: Classroom,
) -> None:
    with running_provider(students=40) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        store = running.store
        period = next(s for s in store.iter_all("academicSession") if s["type"] == "gradingPeriod")
        teacher = next(u for u in store.iter_all("user") if u["roles"][0]["role"] == "teacher")
        store.put("academicSession", bumped(period, status="Active!"))
        store.put("user", bumped(teacher, status="Active!"))
        report = await run_import(classroom, connection_id, full=True)
    rejected = {(r["sourced_id"], r["entity"]) for r in report.rejected}
    assert rejected == {
        (period["sourcedId"], "grading_periods"),
        (teacher["sourcedId"], "teachers"),
    }
    assert report.counts["grading_periods"].deactivated == 0
    assert report.counts["teachers"].deactivated == 0
    held = classroom_roster(classroom)
    assert period["sourcedId"] in held["grading_periods"]
    assert teacher["sourcedId"] in held["teachers"]


@pytest.mark.anyio
async def test_teachers_without_an_email_get_the_warning_students_get(
    classroom: Classroom,
) -> None:
    with running_provider(students=40) as running:
        teacher = next(
            u for u in running.store.iter_all("user") if u["roles"][0]["role"] == "teacher"
        )
        running.store.put("user", {k: v for k, v in teacher.items() if k != "email"})
        connection_id = connect(classroom, running)
        report = await run_import(classroom, connection_id)
    warning = report.warnings["teachers_without_email"]
    assert warning.count == 1 and warning.examples == [repr(teacher["sourcedId"])]
    assert "teachers have no email" in warning.message


KILLED_IMPORT = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from sislink.classroom import open_classroom
    from sislink.classroom.secrets import SecretBox
    from sislink.sync import roster_import
    from sislink.sync.roster_import import import_roster
    from sislink.sync.sis_client import open_sis_client

    url, key, connection_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
    classroom = open_classroom(url, secret_box=SecretBox(key))
    writes = 0
    write_enrolments = roster_import.upsert_enrolments

    def kill_after_the_third_enrolment_batch(*args, **kwargs):
        # By then schools, classes, people and three batches of enrolments have been written
        # in the same transaction. Counted at the writer's function, not at SQLAlchemy's
        # statements: on PostgreSQL the batches go through the driver's cursor (COPY), which
        # SQLAlchemy's events do not see.
        global writes
        counts = write_enrolments(*args, **kwargs)
        writes += 1
        if writes == 3:
            print("killing", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return counts

    roster_import.upsert_enrolments = kill_after_the_third_enrolment_batch

    async def main():
        async with open_sis_client(classroom) as client:
            await import_roster(classroom, client, connection_id=connection_id, full=True,
                                batch_size=25)

    asyncio.run(main())
    print("finished", flush=True)
    """
)


@pytest.fixture
def key_and_classroom(database_url: str) -> Iterator[tuple[str, Classroom]]:
    from cryptography.fernet import Fernet

    from sislink.classroom.secrets import SecretBox

    key = Fernet.generate_key().decode()
    opened = open_classroom(database_url, secret_box=SecretBox(key))
    try:
        yield key, opened
    finally:
        opened.close()


def test_an_import_killed_while_it_writes_leaves_nothing_half_applied(
    database_url: str, key_and_classroom: tuple[str, Classroom], tmp_path: Path
) -> None:
    key, classroom = key_and_classroom
    with running_provider(students=80) as running:
        connection_id = connect(classroom, running)
        change_everything(running)  # the first import never finished: nothing is there yet
        before = snapshot(classroom)
        script = tmp_path / "killed_import.py"
        script.write_text(KILLED_IMPORT)
        done = subprocess.run(
            [sys.executable, str(script), database_url, key, str(connection_id)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        assert "killing" in done.stdout
        classroom.engine.dispose()  # read what a new process would find
        assert snapshot(classroom) == before
        # The next import brings in everything.
        report = anyio.run(lambda: run_import(classroom, connection_id))
        assert report.status == "applied"
        assert classroom_roster(classroom) == provider_roster(running.store)


@pytest.mark.anyio
async def test_a_person_the_sis_renumbered_keeps_their_row_by_email(classroom: Classroom) -> None:
    with running_provider(students=40) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        store = running.store
        student = next(u for u in store.iter_all("user") if u["roles"][0]["role"] == "student")
        with classroom.session() as session:
            before = session.scalars(
                select(Person.id).where(Person.sis_sourced_id == student["sourcedId"])
            ).one()
        store.delete("user", student["sourcedId"])
        store.put("user", bumped(student, sourcedId="renumbered-student"))
        report = await run_import(classroom, connection_id, full=True)
    assert "duplicate_emails" not in report.warnings
    renumbered = report.warnings["people_renumbered"].examples[0]
    assert student["sourcedId"] in renumbered and "renumbered-student" in renumbered
    with classroom.session() as session:
        person = session.get(Person, before)
        assert person is not None
        assert (person.sis_sourced_id, person.active) == ("renumbered-student", True)
