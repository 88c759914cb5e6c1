"""Mark export against the built-in SIS over HTTP, for every SIS profile: the SIS ends up with
exactly the lineItems and results the class has, a second export sends only the changes, and
disconnecting and reconnecting never duplicates anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import ExportRecord, MissingMarkExport
from sislink.classroom.services import connections, coursework
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.class_link import export_settings
from sislink.sync.export_report import ExportOutcome, Outcome
from sislink.sync.mark_export import export_class_marks, forget_ledger_for_class
from sync.mark_export_world import (
    World,
    build_world,
    connect_classroom,
    sis_gradebook,
    sis_holds,
)

PROFILES = ["generic-1.1", "generic-1.2", "infinite-campus", "skyward", "aspen", "aeries"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=PROFILES)
def sis(request: pytest.FixtureRequest) -> Iterator[RunningProvider]:
    with running_provider(profile=request.param, students=60) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


async def _export(world: World, **kwargs: object) -> object:
    async with world.client() as client:
        return await export_class_marks(
            world.classroom,
            client,
            world.teacher,
            world.class_id,
            **kwargs,  # type: ignore[arg-type]
        )


def _stage_gradebook(world: World) -> dict[str, int]:
    """Three coursework with a mix of marks: scores, extra credit, excused, missing."""
    a, b, c, d = world.students[:4]
    essay = world.add_coursework("Essay", points=20, category="Homework")
    quiz = world.add_coursework("Quiz 1", points=10, category="Tests", due=world.due_in_period(1))
    project = world.add_coursework("Project", points=50, category=None)  # default category
    world.mark(essay, a, score=18, comment="Well argued")
    world.mark(essay, b, score=25)  # extra credit: above max
    world.mark(essay, c, excused=True)
    world.mark(essay, d, missing=True)
    world.mark(quiz, a, score=7.5)
    world.mark(quiz, b, score=9, returned=False)  # a draft: not exported
    world.mark(project, a, score=40)
    return {"essay": essay, "quiz": quiz, "project": project}


@pytest.mark.anyio
async def test_export_puts_exactly_the_class_gradebook_in_the_sis(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    ids = _stage_gradebook(world)
    report = await _export(world)
    has_default = sis.profile == "skyward"
    items, results = await sis_gradebook(world)
    by_title = {li.title: li for li in items}
    expected_titles = {"Essay", "Quiz 1"} | ({"Project"} if has_default else set())
    assert set(by_title) == expected_titles
    assert by_title["Essay"].result_value_max == 20 and by_title["Essay"].result_value_min == 0
    assert by_title["Quiz 1"].result_value_max == 10
    a, b, c, d = (world.sis_students[s] for s in world.students[:4])
    essay = {r.student.sourced_id: r for r in results[by_title["Essay"].sourced_id]}
    assert set(essay) == {a, b, c, d}
    assert essay[a].score == 18 and essay[a].score_status == "fully graded"
    assert essay[a].comment == "Well argued"
    assert essay[b].score == 25  # extra credit kept
    assert essay[c].score_status == "exempt" and essay[c].score is None
    assert essay[d].score == 0 and essay[d].score_status == "fully graded"  # missing -> 0
    quiz = {r.student.sourced_id: r for r in results[by_title["Quiz 1"].sourced_id]}
    assert set(quiz) == {a}  # b's draft mark stayed home
    assert quiz[a].score == 7.5
    # Skyward files coursework with no category under its default category, Assignments.
    project_items = [i for i in report.items if i.coursework_id == ids["project"]]
    if has_default:
        assert {r.student.sourced_id for r in results[by_title["Project"].sourced_id]} == {a}
    else:
        assert project_items[0].outcome is Outcome.SKIPPED
        assert "no category" in project_items[0].reason
    # A skipped coursework (and its mark) needs the teacher: the export says so. Skyward's
    # draft mark is skipped too, but by the teacher's own choice.
    if has_default:
        assert report.outcome is ExportOutcome.SUCCEEDED
    else:
        assert report.outcome is ExportOutcome.NEEDS_ATTENTION
        assert report.attention_count == len(project_items)
    assert report.writes == len(items) + sum(len(r) for r in results.values())


@pytest.mark.anyio
async def test_second_export_sends_only_the_changes(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    ids = _stage_gradebook(world)
    await _export(world)
    unchanged = await _export(world)
    assert unchanged.writes == 0
    assert {i.outcome for i in unchanged.items} <= {Outcome.UNCHANGED, Outcome.SKIPPED}
    a = world.students[0]
    world.mark(ids["essay"], a, score=19)
    with classroom.transaction() as session:
        coursework.edit_coursework(session, world.teacher, ids["quiz"], title="Quiz one")
    changed = await _export(world)
    # The quiz lineItem and the one changed mark: two writes, nothing else.
    assert changed.writes == 2
    sent = {
        (i.kind, i.coursework_id, i.student_id)
        for i in changed.items
        if i.outcome is Outcome.EXPORTED
    }
    assert sent == {("lineItem", ids["quiz"], None), ("result", ids["essay"], a)}
    items, results = await sis_gradebook(world)
    titles = sorted(li.title for li in items)
    assert "Quiz one" in titles and "Quiz 1" not in titles
    essay = next(li for li in items if li.title == "Essay")
    scores = {r.student.sourced_id: r.score for r in results[essay.sourced_id]}
    assert scores[world.sis_students[a]] == 19


@pytest.mark.anyio
async def test_reconnect_does_not_duplicate_line_items(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    ids = _stage_gradebook(world)
    await _export(world)
    before_items, before_results = await sis_gradebook(world)
    with classroom.transaction() as session:
        connections.disconnect(session, Actor.system())
    connect_classroom(sis, classroom)  # the administrator connects again: a new connection row
    world.mark(ids["essay"], world.students[0], score=17)
    await _export(world)
    # Even with the ledger lost, everything goes to the same ids: updated, not duplicated.
    assert forget_ledger_for_class(classroom, world.class_id) > 0
    again = await _export(world)
    assert again.writes > 0
    after_items, after_results = await sis_gradebook(world)
    assert sorted(li.sourced_id for li in after_items) == sorted(
        li.sourced_id for li in before_items
    )
    assert sorted(r.sourced_id for rs in after_results.values() for r in rs) == sorted(
        r.sourced_id for rs in before_results.values() for r in rs
    )
    assert len({li.title for li in after_items}) == len(after_items)


@pytest.mark.anyio
async def test_deleting_coursework_deletes_its_results_then_its_line_item(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    ids = _stage_gradebook(world)
    await _export(world)
    a, c = world.students[0], world.students[2]
    world.mark(ids["essay"], a, score=None)  # mark removed
    world.mark(ids["quiz"], c, score=6)  # the quiz now has two exported results: a's and c's
    await _export(world)
    held_before = sis_holds(world)
    with classroom.transaction() as session:
        coursework.delete_coursework(session, world.teacher, ids["quiz"])
    report = await _export(world)
    deleted = [i for i in report.items if i.outcome is Outcome.DELETED]
    # The quiz's two results, each named by student, then the quiz's lineItem: three DELETEs.
    assert report.writes == 3
    assert [(i.kind, i.student_id) for i in deleted[:2]] in (
        [("result", a), ("result", c)],
        [("result", c), ("result", a)],
    )
    assert (deleted[2].kind, deleted[2].coursework_id) == ("lineItem", ids["quiz"])
    assert all(i.coursework_id == ids["quiz"] and i.student for i in deleted[:2])
    # Nothing of the quiz is left in the SIS, orphans included (b's draft was never sent).
    assert sis_holds(world) == (held_before[0] - 1, held_before[1] - 2)
    items, results = await sis_gradebook(world)
    assert "Quiz 1" not in {li.title for li in items}
    essay = next(li for li in items if li.title == "Essay")
    assert world.sis_students[a] not in {r.student.sourced_id for r in results[essay.sourced_id]}
    with classroom.session() as session:
        remembered = {(r.kind, r.object_id) for r in session.scalars(select(ExportRecord))}
    assert ("lineItem", ids["quiz"]) not in remembered
    assert (await _export(world)).writes == 0


@pytest.mark.anyio
async def test_removed_marks_are_deleted_in_the_sis(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    ids = _stage_gradebook(world)
    await _export(world)
    a = world.students[0]
    world.mark(ids["essay"], a, score=None)  # mark removed
    report = await _export(world)
    assert report.writes == 1
    (deleted,) = [i for i in report.items if i.outcome is Outcome.DELETED]
    assert (deleted.kind, deleted.coursework_id, deleted.student_id) == (
        "result",
        ids["essay"],
        a,
    )
    items, results = await sis_gradebook(world)
    essay = next(li for li in items if li.title == "Essay")
    assert world.sis_students[a] not in {r.student.sourced_id for r in results[essay.sourced_id]}
    assert (await _export(world)).writes == 0


@pytest.mark.anyio
async def test_missing_marks_can_go_as_not_submitted(
    sis: RunningProvider, classroom: Classroom
) -> None:
    if sis.profile != "generic-1.2":
        pytest.skip("one profile is enough for a per-class choice")
    world = await build_world(sis, classroom)
    with classroom.transaction() as session:
        export_settings(session, world.class_id).missing_as = MissingMarkExport.NOT_SUBMITTED
    work = world.add_coursework("Lab", points=10)
    world.mark(work, world.students[0], missing=True)
    await _export(world)
    items, results = await sis_gradebook(world)
    (result,) = results[items[0].sourced_id]
    assert result.score_status == "not submitted" and result.score is None


@pytest.mark.anyio
async def test_draft_marks_go_when_the_class_says_so(
    sis: RunningProvider, classroom: Classroom
) -> None:
    if sis.profile != "generic-1.2":
        pytest.skip("one profile is enough for a per-class choice")
    world = await build_world(sis, classroom)
    work = world.add_coursework("Lab", points=10)
    world.mark(work, world.students[0], score=4, returned=False)
    first = await _export(world)
    assert next(i.reason for i in first.items if i.kind == "result").startswith(
        "The mark is a draft"
    )
    with classroom.transaction() as session:
        export_settings(session, world.class_id).export_drafts = True
    second = await _export(world)
    assert second.writes == 1
