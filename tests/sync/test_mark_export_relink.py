"""A SIS class relinked from one classroom class to another: the new class's export manages
its own lineItems and results only; what the first class sent stays in the SIS as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Category, EnrolmentRole
from sislink.classroom.services import classes
from sislink.oneroster.provider.server import running_provider
from sislink.sync import class_link
from sislink.sync.export_report import ExportOutcome, Outcome
from sislink.sync.mark_export import export_class_marks
from sync.mark_export_world import build_world, sis_gradebook


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_class_linked_after_another_leaves_that_class_marks_in_the_sis(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        first = await build_world(sis, classroom, students=3)
        essay = first.add_coursework("Essay")
        for student in first.students:
            first.mark(essay, student, score=8)
        async with first.client() as client:
            sent = await export_class_marks(classroom, client, first.teacher, first.class_id)
        assert sent.writes == 1 + 3

        # The teacher unlinks it and links a new classroom class to the same SIS class.
        class_link.unlink_class(classroom, first.teacher, first.class_id)
        with classroom.transaction() as session:
            made = classes.create_class(
                session,
                Actor.system(),
                title="The same class, made again",
                primary_teacher_id=first.teacher.person_id,
            )
            for student in first.students:
                classes.enrol(session, Actor.system(), made.id, student, EnrolmentRole.STUDENT)
            second_id = made.id
        async with first.client() as client:
            await class_link.link_class(
                classroom, client, first.teacher, second_id, first.sis_class_id
            )
        with classroom.session() as session:
            categories = {
                c.title: c.id
                for c in session.scalars(select(Category).where(Category.class_id == second_id))
            }
        second = replace(first, class_id=second_id, categories=categories)
        quiz = second.add_coursework("Quiz")
        second.mark(quiz, second.students[0], score=5)

        async with second.client() as client:
            report = await export_class_marks(classroom, client, second.teacher, second_id)
        items, results = await sis_gradebook(second)

    assert report.outcome is ExportOutcome.SUCCEEDED
    assert report.writes == 1 + 1  # the Quiz and its one mark; nothing of the first class
    assert not [i for i in report.items if i.outcome is Outcome.DELETED]
    assert sorted(i.title for i in items) == ["Essay", "Quiz"]
    by_title = {i.sourced_id: i.title for i in items}
    assert sorted((by_title[li], len(rs)) for li, rs in results.items()) == [
        ("Essay", 3),
        ("Quiz", 1),
    ]
