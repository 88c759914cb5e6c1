"""An export of a class where nothing changed since its last clean export asks the SIS nothing
and sends nothing (sislink.sync.export_state), and yet notices every change that matters: a
mark, a coursework added or deleted, a re-link, a reconnect to another SIS, a class setting
that changes what is sent, and (once the SIS facts are refreshed) an object the SIS lost.

Against the built-in SIS over HTTP; `client.calls_made` counts every request a client sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Mark, MissingMarkExport
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import connections, coursework
from sislink.classroom.services.export_settings import change_export_choices
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import class_link
from sislink.sync.export_report import ExportOutcome, ExportReport, Outcome, report_history
from sislink.sync.mark_export import export_all_classes, export_class_marks
from sislink.sync.preflight import ExportRefused
from sync.mark_export_world import World, build_world, connect_classroom, sis_gradebook


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


async def _export(world: World) -> tuple[ExportReport, int]:
    """Export the class with a fresh client: the report, and how many requests it sent."""
    async with world.client() as client:
        report = await export_class_marks(world.classroom, client, world.teacher, world.class_id)
        return report, client.calls_made


async def _exported_world(
    sis: RunningProvider, classroom: Classroom
) -> tuple[World, dict[str, int]]:
    """A class with two coursework and three students' marks (one missing), exported once."""
    world = await build_world(sis, classroom, students=3)
    ids = {"essay": world.add_coursework("Essay"), "quiz": world.add_coursework("Quiz")}
    a, b, c = world.students
    world.mark(ids["essay"], a, score=8)
    world.mark(ids["essay"], b, score=9)
    world.mark(ids["essay"], c, missing=True)
    world.mark(ids["quiz"], a, score=4)
    first, calls = await _export(world)
    assert first.outcome is ExportOutcome.SUCCEEDED
    assert first.writes == 2 + 4
    assert calls > 0
    return world, ids


async def _scores(world: World) -> dict[tuple[str, str], tuple[float | None, str]]:
    """(lineItem title, SIS student) -> (score, scoreStatus), as the SIS has them."""
    items, results = await sis_gradebook(world)
    title = {li.sourced_id: li.title for li in items}
    return {
        (title[li], r.student.sourced_id): (r.score, r.score_status)
        for li, rs in results.items()
        for r in rs
    }


@pytest.mark.anyio
async def test_an_unchanged_class_asks_the_sis_nothing_and_sends_nothing(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, _ = await _exported_world(sis, classroom)
    before = await _scores(world)
    report, calls = await _export(world)
    assert (calls, report.writes) == (0, 0)
    assert report.outcome is ExportOutcome.SUCCEEDED
    assert report.unchanged_since is not None
    assert report.counts() == {"lineItem": {"unchanged": 2}, "result": {"unchanged": 4}}
    assert report.report_id is not None  # kept in the class's history like any other
    # The same for an export of every class.
    async with world.client() as client:
        (every,) = await export_all_classes(classroom, client, Actor.system())
        assert client.calls_made == 0
    assert (every.writes, every.unchanged_since is not None) == (0, True)
    assert await _scores(world) == before


@pytest.mark.anyio
async def test_a_changed_mark_is_sent(sis: RunningProvider, classroom: Classroom) -> None:
    world, ids = await _exported_world(sis, classroom)
    a = world.students[0]
    world.mark(ids["quiz"], a, score=5)
    report, calls = await _export(world)
    assert calls > 0 and report.writes == 1
    (sent,) = [i for i in report.items if i.outcome is Outcome.EXPORTED]
    assert (sent.kind, sent.coursework_id, sent.student_id) == ("result", ids["quiz"], a)
    assert (await _scores(world))[("Quiz", world.sis_students[a])] == (5.0, "fully graded")
    assert (await _export(world))[1] == 0  # and then it is unchanged again


@pytest.mark.anyio
async def test_new_and_deleted_coursework_are_sent(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, ids = await _exported_world(sis, classroom)
    project = world.add_coursework("Project")
    world.mark(project, world.students[1], score=7)
    added, _ = await _export(world)
    assert added.writes == 2
    with classroom.transaction() as session:
        coursework.delete_coursework(session, world.teacher, ids["quiz"])
    removed, calls = await _export(world)
    assert calls > 0
    assert sorted((i.kind, i.outcome) for i in removed.items if i.outcome is Outcome.DELETED) == [
        ("lineItem", Outcome.DELETED),
        ("result", Outcome.DELETED),
    ]
    items, _ = await sis_gradebook(world)
    assert sorted(li.title for li in items) == ["Essay", "Project"]


@pytest.mark.anyio
async def test_a_class_setting_that_changes_what_is_sent_is_noticed(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, _ = await _exported_world(sis, classroom)
    c = world.sis_students[world.students[2]]
    assert (await _scores(world))[("Essay", c)] == (0.0, "fully graded")  # missing counts 0
    with classroom.transaction() as session:
        change_export_choices(
            session, world.teacher, world.class_id, missing_as=MissingMarkExport.NOT_SUBMITTED
        )
    report, _ = await _export(world)
    assert report.writes == 1
    assert (await _scores(world))[("Essay", c)] == (None, "not submitted")


@pytest.mark.anyio
async def test_a_relink_to_another_sis_class_is_noticed(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, _ = await _exported_world(sis, classroom)
    async with world.client() as client:
        choices = await class_link.sis_classes_for_teacher(client, world.teacher_email)
        other = next(c.sourced_id for c in choices if c.sourced_id != world.sis_class_id)
        class_link.unlink_class(classroom, world.teacher, world.class_id)
        await class_link.link_class(classroom, client, world.teacher, world.class_id, other)
    report, calls = await _export(world)
    assert calls > 0
    # Both lineItems go to the new SIS class (the students are not its students: skipped).
    assert [i.kind for i in report.items if i.outcome is Outcome.EXPORTED] == [
        "lineItem",
        "lineItem",
    ]
    async with world.client() as client:
        moved = await client.line_items_for_class(other)
    assert sorted(li.title for li in moved) == ["Essay", "Quiz"]


@pytest.mark.anyio
async def test_a_reconnect_to_another_sis_is_noticed(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, _ = await _exported_world(sis, classroom)
    with running_provider(profile="skyward", students=60) as another:
        with classroom.transaction() as session:
            connections.disconnect(session, Actor.system())
        connect_classroom(another, classroom)
        # The link was made with the other SIS: refused, in words, not "unchanged".
        with pytest.raises(ExportRefused, match="SIS sislink was connected to before"):
            await _export(world)


@pytest.mark.anyio
async def test_a_reconnect_to_the_same_sis_plans_again_and_sends_nothing(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, _ = await _exported_world(sis, classroom)
    with classroom.transaction() as session:
        connections.disconnect(session, Actor.system())
    connect_classroom(sis, classroom)
    report, calls = await _export(world)
    assert calls > 0 and report.writes == 0 and report.unchanged_since is None
    assert (await _export(world))[1] == 0


@pytest.mark.anyio
async def test_an_object_the_sis_lost_is_sent_again_once_the_facts_are_refreshed(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, ids = await _exported_world(sis, classroom)
    a = world.sis_students[world.students[0]]
    _, results = await sis_gradebook(world)
    lost = next(
        r for rs in results.values() for r in rs if r.student.sourced_id == a and r.score == 4
    )
    sis.store.delete("result", lost.sourced_id)
    # An unchanged export cannot know: it asks the SIS nothing.
    report, calls = await _export(world)
    assert (calls, report.writes) == (0, 0)
    assert ("Quiz", a) not in await _scores(world)
    # Refreshing the class's SIS facts checks the ledger against the SIS.
    async with world.client() as client:
        await class_link.refresh_class_facts_for_teacher(
            classroom, client, world.teacher, world.class_id
        )
    again, _ = await _export(world)
    assert again.writes == 1
    (sent,) = [i for i in again.items if i.outcome is Outcome.EXPORTED]
    assert (sent.coursework_id, sent.student_id) == (ids["quiz"], world.students[0])
    assert (await _scores(world))[("Quiz", a)] == (4.0, "fully graded")


@pytest.fixture
def on_each_database(database_url: str, secret_box: SecretBox) -> Iterator[Classroom]:
    """A classroom on SQLite and on PostgreSQL (the digest's timestamp sums differ by dialect)."""
    opened = open_classroom(database_url, secret_box=secret_box)
    yield opened
    opened.close()


@pytest.mark.anyio
async def test_on_each_database_unchanged_sends_nothing_and_a_change_is_sent(
    sis: RunningProvider, on_each_database: Classroom
) -> None:
    world, ids = await _exported_world(sis, on_each_database)
    assert (await _export(world))[1] == 0
    world.mark(ids["essay"], world.students[1], score=10, comment="Well argued")
    report, calls = await _export(world)
    assert calls > 0 and report.writes == 1
    assert (await _export(world))[1] == 0
    with on_each_database.transaction() as session:
        coursework.edit_coursework(session, world.teacher, ids["quiz"], max_points=20)
    report, calls = await _export(world)
    assert calls > 0 and report.writes == 1


@pytest.mark.anyio
async def test_a_mark_written_with_an_older_clock_or_in_the_same_millisecond_is_seen(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, ids = await _exported_world(sis, classroom)
    b = world.students[1]
    with classroom.transaction() as session:
        mark = session.scalars(
            select(Mark).where(Mark.coursework_id == ids["essay"], Mark.student_id == b)
        ).one()
        # Another machine whose clock is behind: the row's time goes back, not forward, so the
        # class's newest mark time stays the same.
        mark.score = 3
        mark.updated_at = mark.updated_at - timedelta(seconds=30)
    report, _ = await _export(world)
    assert report.writes == 1
    with classroom.transaction() as session:
        mark = session.scalars(
            select(Mark).where(Mark.coursework_id == ids["essay"], Mark.student_id == b)
        ).one()
        mark.score = 2
        mark.updated_at = mark.updated_at + timedelta(microseconds=1)
    report, _ = await _export(world)
    assert report.writes == 1
    assert (await _scores(world))[("Essay", world.sis_students[b])] == (2.0, "fully graded")


@pytest.mark.anyio
async def test_facts_read_again_the_same_leave_the_class_unchanged_and_old_facts_are_read(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, _ = await _exported_world(sis, classroom)
    # Read again (as a full roster import does) and found the same: still nothing to send.
    async with world.client() as client:
        await class_link.refresh_sis_class_facts(classroom, client, world.class_id, force=True)
    assert (await _export(world))[1] == 0
    # Older than their age: the export reads them and the class's students again.
    with classroom.transaction() as session:
        settings = class_link.export_settings(session, world.class_id)
        assert settings.sis_refreshed_at is not None
        settings.sis_refreshed_at -= class_link.FACTS_STALE_AFTER + timedelta(minutes=1)
    report, calls = await _export(world)
    assert calls > 0 and report.writes == 0 and report.unchanged_since is None
    assert (await _export(world))[1] == 0


@pytest.mark.anyio
async def test_an_export_of_many_classes_lets_go_of_items_once_kept_and_says_the_same(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world, ids = await _exported_world(sis, classroom)
    world.add_coursework("No points", points=None)
    world.mark(ids["quiz"], world.students[2], score=1)
    async with world.client() as client:
        (kept,) = await export_all_classes(
            classroom, client, Actor.system(), class_ids=[world.class_id], keep_items=False
        )
    with classroom.session() as session:
        (stored,) = report_history(session, world.class_id, limit=1)
        stored_summary, stored_items = dict(stored.summary), list(stored.items)
    # Its summary is what the whole report said; the database has every item.
    assert kept.summary() == stored_summary
    assert kept.outcome is ExportOutcome.NEEDS_ATTENTION and kept.writes == 1
    assert kept.counts()["result"]["exported"] == 1
    assert len(stored_items) == 2 + 5 + 1  # lineItems, results, the one without points
    assert [i.coursework_title for i in kept.items] == ["No points"]
