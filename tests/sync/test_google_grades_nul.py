"""A NUL character in Classroom's text (a courseWork title or description pasted from a PDF, or
written by another app through the API): PostgreSQL refuses it in text, so that courseWork is
kept out with a sentence in the class's troubleshoot report, and the rest of the pull (the
class's other work and grades) goes as usual. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Coursework, MarkExportReport
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.google_grades import pull_grades
from sync.google_grades_world import build_grades_world

NUL_CHARACTER = "nul_character"  # the skip reason the pull says


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=20) as running:
        yield running


@pytest.fixture(scope="module")
def local() -> Iterator[RunningClassroom]:
    with running_classroom(students=20) as running:
        yield running


@pytest.mark.anyio
async def test_coursework_whose_text_holds_a_nul_is_kept_out_and_the_rest_is_pulled(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await build_grades_world(sis, classroom, local)
    a = g.emails[0]
    odd = g.add_work("Lab\x00 one", points=10)
    described = g.add_work("Lab two", points=10, description="Read p. 4\x00")
    fine = g.add_work("Quiz", points=10)
    for work in (odd, described, fine):
        g.grade(work, a, assigned=8, give_back=True)

    report = pull_grades(classroom, Actor.system(), class_ids=[g.class_id])

    (pulled,) = report.courses
    assert pulled.failed is None and pulled.refused is None
    assert pulled.coursework["created"] == 1 and pulled.marks["created"] == 1
    kept_out = sorted((i.coursework_title, i.skip_reason) for i in pulled.items)
    assert kept_out == [("Lab two", NUL_CHARACTER), ("Lab\\x00 one", NUL_CHARACTER)]
    said = " ".join(i.reason for i in pulled.items)
    assert "retype the title" in said and "retype the description" in said
    assert g.marks()[("Quiz", a)].score == 8
    with classroom.session() as session:
        titles = session.scalars(
            select(Coursework.title).where(Coursework.class_id == g.class_id)
        ).all()
        kept = session.get(MarkExportReport, pulled.report_id)
        assert kept is not None and len(kept.items) == 2
    assert titles == ["Quiz"]
