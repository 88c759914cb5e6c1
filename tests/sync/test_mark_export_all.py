"""Exporting every class at once (`marks export --all`): each class stands alone. A class that
cannot be exported (its SIS class deleted in the SIS, unlinked meanwhile) gets a report saying
why, kept in its history, and the other classes are exported; a SIS that is down stops the
classes not yet started instead of hammering it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sislink.classroom import Classroom
from sislink.classroom.models import JobStatus
from sislink.jobs.mark_export import run_all_exports
from sislink.oneroster.consumer import OAuth2Settings, OneRosterClient
from sislink.oneroster.provider.server import running_provider
from sislink.sync import class_link
from sislink.sync.export_report import (
    ExportOutcome,
    recent_exports,
    report_history,
)
from sislink.sync.mark_export import CLASSES_AT_ONCE, export_all_classes
from sync.mark_export_world import World, build_worlds, sis_holds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _gradebook(world: World) -> None:
    work = world.add_coursework(f"Work of {world.sis_class_id}")
    for student in world.students:
        world.mark(work, student, score=7)


async def _sis_class_holds(world: World) -> tuple[int, int]:
    """How many lineItems the SIS class has, and results under them."""
    async with world.client() as client:
        items = await client.line_items_for_class(world.sis_class_id)
        results = [
            r
            for li in items
            for r in await client.results_for_line_item(world.sis_class_id, li.sourced_id)
        ]
    return len(items), len(results)


def _history_outcomes(world: World) -> list[str]:
    with world.classroom.session() as session:
        return [r.outcome for r in report_history(session, world.class_id)]


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["generic-1.2", "generic-1.1"])
async def test_a_class_deleted_in_the_sis_gets_its_report_and_the_other_classes_are_exported(
    profile: str, classroom: Classroom
) -> None:
    with running_provider(profile=profile, students=60) as sis:
        worlds = await build_worlds(sis, classroom, students=3, class_indexes=[0, 1, 2])
        for world in worlds:
            _gradebook(world)
        good, gone, other = worlds
        assert sis.store.delete("class", gone.sis_class_id)  # deleted in the SIS meanwhile

        run = await run_all_exports(classroom, good.teacher)

        # The job says which class could not be exported, and why; it lists every class.
        assert run.job.status is JobStatus.FAILED and run.job.error is not None
        assert "1 of 3 classes could not be exported" in run.job.error
        assert gone.sis_class_id in run.job.error
        reports = {r.class_id: r for r in run.reports}
        assert set(reports) == {w.class_id for w in worlds}
        assert [c["class_id"] for c in run.as_json()["classes"]] == [w.class_id for w in worlds]
        for world in (good, other):
            assert reports[world.class_id].outcome is ExportOutcome.SUCCEEDED
            assert await _sis_class_holds(world) == (1, len(world.students))
            assert _history_outcomes(world) == ["succeeded"]
        failed = reports[gone.class_id]
        assert failed.outcome is ExportOutcome.FAILED and failed.writes == 0
        assert failed.failed is not None
        assert f"does not know this class's SIS class ({gone.sis_class_id})" in failed.failed
        assert "link the class" in failed.failed
        # Kept in the class's history, and first on the administrator's list of exports.
        assert _history_outcomes(gone) == ["failed"]
        assert recent_exports(classroom)[0]["class_id"] == gone.class_id
        assert recent_exports(classroom)[0]["failed"] == failed.failed


@pytest.mark.anyio
async def test_a_class_unlinked_meanwhile_is_refused_in_its_history_and_the_others_go_on(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        worlds = await build_worlds(sis, classroom, students=3, class_indexes=[0, 1])
        for world in worlds:
            _gradebook(world)
        kept, unlinked = worlds
        class_link.unlink_class(classroom, kept.teacher, unlinked.class_id)
        async with kept.client() as client:
            # The classes as they were listed before the unlink.
            reports = await export_all_classes(
                classroom, client, kept.teacher, class_ids=[w.class_id for w in worlds]
            )
        assert [r.class_id for r in reports] == [w.class_id for w in worlds]
        assert reports[0].outcome is ExportOutcome.SUCCEEDED
        assert reports[1].outcome is ExportOutcome.REFUSED
        assert reports[1].refused is not None and "is not linked" in reports[1].refused
        assert reports[1].report_id is not None
        assert _history_outcomes(unlinked) == ["refused"]
        assert sis_holds(kept) == (1, len(kept.students))


def _down_client(world: World, down_base_url: str, down_token_url: str) -> OneRosterClient:
    """A client of the world's connection, pointed at the same SIS served broken."""
    # More retries than the breaker's threshold: whichever call meets the SIS down first, it
    # opens the breaker (SISDown) before it could run out of retries (a plain ServerError),
    # however the classes' calls interleave on a busy machine.
    settings = world.settings(failure_threshold=3, max_retries=5)
    assert isinstance(settings.auth, OAuth2Settings)
    return OneRosterClient(
        replace(
            settings,
            base_url=down_base_url,
            auth=replace(settings.auth, token_url=down_token_url),
        )
    )


@pytest.mark.anyio
async def test_when_the_sis_is_down_the_classes_not_yet_started_are_not_tried(
    classroom: Classroom,
) -> None:
    classes = CLASSES_AT_ONCE + 3
    with running_provider(profile="generic-1.2", students=60) as sis:
        worlds = await build_worlds(sis, classroom, students=2, class_indexes=list(range(classes)))
        for world in worlds:
            _gradebook(world)
        # The same SIS, answering every OneRoster call with a 500 or a 503.
        with running_provider(
            profile="generic-1.2",
            store=sis.store,
            fault_rate=1.0,
            client_id=sis.client_id,
            client_secret=sis.client_secret,
        ) as down:
            async with _down_client(worlds[0], down.base_url, down.token_url) as client:
                reports = await export_all_classes(classroom, client, worlds[0].teacher)
                calls = client.calls_made
        held = sis_holds(worlds[0])
    assert [r.class_id for r in reports] == [w.class_id for w in worlds]
    assert all(r.outcome is ExportOutcome.FAILED and r.sis_down for r in reports)
    assert all(r.writes == 0 for r in reports)
    # The classes that had started met the SIS down; the others were not tried at all.
    not_tried = [r for r in reports if r.failed and r.failed.startswith("Not tried")]
    assert len(not_tried) >= classes - CLASSES_AT_ONCE
    assert all("stopped answering" in (r.failed or "") for r in reports)
    # The client stopped calling once it saw the SIS down (3 failures in a row; the classes
    # started together each had a call in flight), and the SIS got nothing.
    assert calls <= 3 + CLASSES_AT_ONCE
    assert held == (0, 0)
    for world in worlds:
        assert _history_outcomes(world) == ["failed"]
