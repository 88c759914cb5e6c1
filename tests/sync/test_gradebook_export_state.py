"""The gradebook's export state of each mark and coursework (sislink.sync.gradebook_export_state),
after real exports to the built-in SIS, on SQLite and PostgreSQL: sent, skipped with the last
export's reason (a draft by the teacher's choice; a mark whose coursework the SIS refused), the
SIS's refusal, changed or cleared since sent. An export with nothing to send and a dry run do not
hide what the last real export said."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Coursework, Mark, Role
from sislink.classroom.services import classes, people
from sislink.oneroster.provider.server import running_provider
from sislink.sync.export_report import ExportOutcome, ExportReport
from sislink.sync.gradebook_export_state import (
    ExportState,
    GradebookExport,
    gradebook_export_state,
)
from sislink.sync.mark_export import export_class_marks
from sync.mark_export_world import World, build_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def state_of(world: World) -> GradebookExport:
    with world.classroom.session() as session:
        works = session.scalars(
            select(Coursework).where(Coursework.class_id == world.class_id)
        ).all()
        marks = session.scalars(
            select(Mark).where(Mark.coursework_id.in_([w.id for w in works]))
        ).all()
        return gradebook_export_state(session, world.class_id, works, marks)


async def export(world: World, *, dry_run: bool = False) -> ExportReport:
    async with world.client() as client:
        return await export_class_marks(
            world.classroom, client, world.teacher, world.class_id, dry_run=dry_run
        )


@pytest.mark.anyio
async def test_each_mark_says_what_the_exports_did_with_it(classroom: Classroom) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        world = await build_world(sis, classroom, students=3)
        first, second, third = world.students
        essay = world.add_coursework("Essay", category="Tests")
        lab = world.add_coursework("Lab", category="Homework")
        world.mark(essay, first, score=8)
        world.mark(essay, second, score=5, returned=False)  # a draft: left out by choice
        world.mark(lab, first, score=6)
        homework = world.facts.category_titled("Homework")
        assert homework is not None
        kept = sis.store.get("category", homework)
        assert kept is not None
        sis.store.delete("category", homework)  # the SIS loses the category under us
        refused = await export(world)
        assert refused.outcome is ExportOutcome.PARTIAL
        sis.store.put("category", kept)

        state = state_of(world)
        assert state.linked and state.sis_class_id == world.sis_class_id
        assert state.last_export_at == refused.started_at
        assert state.of_coursework(essay).state is ExportState.SENT
        sent = state.of_mark(essay, first)
        assert sent.state is ExportState.SENT and sent.sent_at is not None
        assert refused.started_at <= sent.sent_at
        draft = state.of_mark(essay, second)
        assert draft.state is ExportState.SKIPPED and draft.chosen
        assert "The mark is a draft" in draft.reason
        assert state.of_mark(essay, third).state is ExportState.NONE  # no mark
        failed = state.of_coursework(lab)
        assert failed.state is ExportState.FAILED and homework in failed.reason
        waiting = state.of_mark(lab, first)
        assert waiting.state is ExportState.SKIPPED and not waiting.chosen
        assert "waits for the next export" in waiting.reason

        finished = await export(world)
        assert finished.outcome is ExportOutcome.SUCCEEDED
        unchanged = await export(world)  # nothing to send: a report that lists no item
        assert unchanged.unchanged_since is not None and not unchanged.items
        state = state_of(world)
        assert state.last_export_at == finished.started_at
        assert state.of_coursework(lab).state is ExportState.SENT
        assert state.of_mark(lab, first).state is ExportState.SENT
        assert state.of_mark(essay, second).state is ExportState.SKIPPED  # still a draft

        world.mark(essay, first, score=9)
        await export(world, dry_run=True)  # a dry run sends nothing: it changes nothing here
        world.mark(lab, first, score=None)  # cleared
        state = state_of(world)
        assert state.last_export_at == finished.started_at
        changed = state.of_mark(essay, first)
        assert changed.state is ExportState.CHANGED and changed.sent_at is not None
        assert "the next export sends it" in changed.reason
        cleared = state.of_mark(lab, first)
        assert cleared.state is ExportState.CHANGED
        assert "the next export removes it from the SIS" in cleared.reason
        assert state.of_mark(essay, second).state is ExportState.SKIPPED

        await export(world)
        state = state_of(world)
        assert state.of_mark(essay, first).state is ExportState.SENT
        assert state.of_mark(lab, first).state is ExportState.NONE  # removed from the SIS


def test_a_class_that_is_not_linked_has_no_export_state(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        teacher = people.create_person(
            session, Actor.system(), name="T", email="t@school.example", roles=[Role.TEACHER]
        )
        made = classes.create_class(
            session, Actor.system(), title="Not linked", primary_teacher_id=teacher.id
        )
        state = gradebook_export_state(session, made.id, [], [])
    assert not state.linked and state.of_mark(1, 2).state is ExportState.NONE
