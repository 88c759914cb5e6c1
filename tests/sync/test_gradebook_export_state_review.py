"""The gradebook's export state where a review found it wrong: after the class is linked to
another SIS class, what the exports to the old one said (skipped, refused) is not said of the
new one; and a long answer of the SIS is shortened in the grid (it is written once per cell)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from sislink.classroom import Classroom
from sislink.classroom.models import Coursework, ExportKind, ExportRecord
from sislink.classroom.services import connections
from sislink.oneroster.provider.server import running_provider
from sislink.sync.export_report import ExportOutcome
from sislink.sync.gradebook_export_state import REASON_SHOWN_AT_MOST, ExportState
from sync.mark_export_world import build_world
from sync.test_gradebook_export_state import export, state_of


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_relinked_to_another_sis_class_the_old_exports_say_nothing(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        world = await build_world(sis, classroom, students=2)
        first, second = world.students
        essay = world.add_coursework("Essay", category="Tests")
        lab = world.add_coursework("Lab", category="Homework")
        world.mark(essay, first, score=8)
        world.mark(lab, second, score=6)
        homework = world.facts.category_titled("Homework")
        assert homework is not None
        sis.store.delete("category", homework)  # the old SIS class refuses the lab
        refused = await export(world)
        assert refused.outcome is ExportOutcome.PARTIAL
        before = state_of(world)
        assert before.of_coursework(lab).state is ExportState.FAILED
        assert before.of_mark(lab, second).state is ExportState.SKIPPED

        other = next(
            str(c["sourcedId"])
            for c in sis.store.iter_all("class")
            if str(c["sourcedId"]) != world.sis_class_id
        )
        with classroom.transaction() as session:
            connections.link_class(session, world.teacher, world.class_id, other)

        after = state_of(world)
        assert after.linked and after.sis_class_id == other
        # Nothing was ever exported to the new SIS class: no last export, nothing refused or
        # skipped by it; all of it is for the next export to send.
        assert after.last_export_at is None
        for coursework_id in (essay, lab):
            assert after.of_coursework(coursework_id).state is ExportState.NOT_SENT
        assert after.of_mark(essay, first).state is ExportState.NOT_SENT
        assert after.of_mark(lab, second).state is ExportState.NOT_SENT
        assert homework not in after.of_coursework(lab).reason


@pytest.mark.anyio
async def test_a_long_answer_of_the_sis_is_shortened_in_the_grid(classroom: Classroom) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        world = await build_world(sis, classroom, students=1)
        (first,) = world.students
        lab = world.add_coursework("Lab", category="Homework")
        world.mark(lab, first, score=6)
        homework = world.facts.category_titled("Homework")
        assert homework is not None
        sis.store.delete("category", homework)
        await export(world)
        # The exporter keeps up to 2,000 characters of the SIS's answer in the ledger (an
        # HTML error page, say); the grid writes a cell's words twice (hover and screen
        # readers), for each of up to 1,400 cells.
        answer = "<html><body>Internal error &amp; more " + "x" * 1990
        with classroom.transaction() as session:
            session.execute(
                update(ExportRecord)
                .where(ExportRecord.kind == ExportKind.LINE_ITEM)
                .values(last_status="failed", last_message=answer[:2000], content_hash=None)
            )
            assert session.scalars(select(ExportRecord.id)).first() is not None
        with classroom.transaction() as session:
            # Changed since the last export: the ledger's refusal is what is shown.
            work = session.get(Coursework, lab)
            assert work is not None
            work.title = "Lab 1"
        failed = state_of(world).of_coursework(lab)
        assert failed.state is ExportState.FAILED
        assert len(failed.reason) <= REASON_SHOWN_AT_MOST
        assert failed.reason.startswith("<html><body>Internal error")
        assert "export report" in failed.reason  # where the whole answer is
