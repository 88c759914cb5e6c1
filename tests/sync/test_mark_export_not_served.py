"""A 404 during export is not always "the SIS class was deleted" (issue 14 item 3): against the
built-in SIS made to answer 404 where real SIS do (a term of type `semester` whose grading periods
it does not serve, no class categories endpoint, no categories at all, no class students), the
export says which call failed and what it means, goes on without what is optional, and refuses
only what truly needs it. The class-deleted advice comes only when the class itself is 404."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sislink.classroom import Classroom, open_classroom
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.class_link import forget_sis_class_facts
from sislink.sync.export_report import ExportOutcome, ExportReport, Outcome
from sislink.sync.mark_export import export_one_class
from sync.mark_export_world import World, build_world, sis_gradebook

DELETED_ADVICE = "does not know this class's SIS class"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


async def _export(world: World) -> ExportReport:
    async with world.client() as client:
        return await export_one_class(world.classroom, client, world.teacher, world.class_id)


def _in_a_semester(world: World) -> datetime:
    """Put the SIS class in a term of type `semester` (no `term`, so the SIS serves no grading
    periods for it: `terms/{id}/gradingPeriods` answers 404), as a 1.2 SIS may; forget what
    was read of the class, so the export reads it again. Returns a due date inside it."""
    store = world.sis.store
    semester: dict[str, Any] = {
        "sourcedId": "as-semester-only",
        "status": "active",
        "dateLastModified": "2026-07-31T12:00:00.000Z",
        "title": "Semester taught without grading periods",
        "startDate": "2026-08-01",
        "endDate": "2027-07-31",
        "type": "semester",
        "schoolYear": "2027",
    }
    store.put("academicSession", semester)
    sis_class = store.get("class", world.sis_class_id)
    assert sis_class is not None
    sis_class["terms"] = [{"sourcedId": "as-semester-only", "type": "academicSession"}]
    store.put("class", sis_class)
    with world.classroom.transaction() as session:
        forget_sis_class_facts(session, world.class_id)
    return datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _reasons(report: ExportReport) -> list[str]:
    return [i.reason for i in report.items if i.outcome is Outcome.SKIPPED]


@pytest.mark.anyio
async def test_a_1_2_term_without_grading_periods_exports_without_one(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=20) as sis:
        world = await build_world(sis, classroom, students=2)
        due = _in_a_semester(world)
        essay = world.add_coursework("Essay", points=20, due=due)
        world.mark(essay, world.students[0], score=17)
        report = await _export(world)
        items, results = await sis_gradebook(world)
    # Grading periods are optional in 1.2: the lineItem goes without one, with its mark.
    assert report.outcome is ExportOutcome.SUCCEEDED, (report.failed, _reasons(report))
    assert report.failed is None
    (line_item,) = items
    assert line_item.grading_period is None and line_item.title == "Essay"
    assert [r.score for r in results[line_item.sourced_id]] == [17]


@pytest.mark.anyio
async def test_a_1_1_term_without_grading_periods_skips_coursework_naming_the_call(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.1", students=20) as sis:
        world = await build_world(sis, classroom, students=2)
        due = _in_a_semester(world)
        world.add_coursework("Essay", points=20, due=due)
        report = await _export(world)
    # 1.1 needs a grading period for every lineItem: only the coursework is refused, saying
    # which call the SIS did not serve; the class is not said to be deleted.
    assert report.outcome is ExportOutcome.NEEDS_ATTENTION, report.failed
    (reason,) = _reasons(report)
    assert "answered 404 Not Found when asked for the grading periods" in reason
    assert "/terms/as-semester-only/gradingPeriods" in reason
    assert DELETED_ADVICE not in reason


@pytest.mark.anyio
async def test_a_sis_without_class_categories_offers_the_districts_and_exports(
    classroom: Classroom,
) -> None:
    with running_provider(
        profile="generic-1.2", students=20, without_endpoints=["class_categories"]
    ) as sis:
        world = await build_world(sis, classroom, students=2)
        assert {"Homework", "Tests"} <= set(world.categories)
        assert [n.what for n in world.facts.not_served] == ["categories"]
        essay = world.add_coursework("Essay", points=20, category="Homework")
        world.mark(essay, world.students[0], score=12)
        with world.classroom.transaction() as session:
            forget_sis_class_facts(session, world.class_id)  # read again at export
        report = await _export(world)
        items, _ = await sis_gradebook(world)
    assert report.outcome is ExportOutcome.SUCCEEDED, (report.failed, _reasons(report))
    assert [i.title for i in items] == ["Essay"]


@pytest.mark.anyio
async def test_a_sis_with_no_categories_at_all_skips_coursework_naming_the_call(
    classroom: Classroom,
) -> None:
    with running_provider(
        profile="generic-1.2", students=20, without_endpoints=["class_categories", "categories"]
    ) as sis:
        world = await build_world(sis, classroom, students=2)
        world.add_coursework("Essay", points=20, category=None)
        report = await _export(world)
    assert report.outcome is ExportOutcome.NEEDS_ATTENTION, report.failed
    (reason,) = _reasons(report)
    assert "answered 404 Not Found when asked for the class's categories" in reason
    assert f"/classes/{world.sis_class_id}/categories" in reason
    assert DELETED_ADVICE not in reason


@pytest.mark.anyio
async def test_a_sis_that_does_not_serve_a_classs_students_is_not_said_to_have_deleted_it(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=20) as sis:
        world = await build_world(sis, classroom, students=2)
        # The same SIS (its store) at another address, now without classes/{id}/students.
        with running_provider(
            profile="generic-1.2", store=sis.store, without_endpoints=["class_students"]
        ) as again:
            world.sis = again
            _repoint(world, again)
            world.add_coursework("Essay", points=20)
            report = await _export(world)
    assert report.outcome is ExportOutcome.FAILED
    assert report.failed is not None and DELETED_ADVICE not in report.failed
    assert "answered 404 Not Found when asked for its students" in report.failed
    assert f"/classes/{world.sis_class_id}/students" in report.failed


@pytest.mark.anyio
async def test_only_a_404_for_the_class_itself_says_it_was_deleted(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=20) as sis:
        world = await build_world(sis, classroom, students=2)
        world.add_coursework("Essay", points=20)
        assert sis.store.delete("class", world.sis_class_id)
        kept_facts = await _export(world)  # the class's facts were read at link: still fresh
        with world.classroom.transaction() as session:
            forget_sis_class_facts(session, world.class_id)
        read_again = await _export(world)  # the class itself is asked for, and is 404
    for report in (kept_facts, read_again):
        assert report.outcome is ExportOutcome.FAILED
        assert report.failed is not None and DELETED_ADVICE in report.failed
        assert "link the class to its current SIS class" in report.failed


def _repoint(world: World, sis: RunningProvider) -> None:
    """Save the connection again with the new server's address (same SIS, same district)."""
    from sislink.classroom import Actor
    from sislink.classroom.services import connections

    district = next(
        r["sourcedId"] for r in sis.store.iter_all("org") if r.get("type") == "district"
    )
    with world.classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            Actor.system(),
            world.classroom.secret_box,
            partner=sis.profile,
            version=sis.version,
            host_url=sis.host_url,
            access_key=sis.client_id,
            secret_code=sis.client_secret,
            token_url=sis.token_url or None,
        )
        connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id=district)
