"""Linking a class to a SIS class: what the teacher is then offered to choose from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import Category
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sync.mark_export_world import build_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["generic-1.1", "generic-1.2"])
def sis(request: pytest.FixtureRequest) -> Iterator[RunningProvider]:
    with running_provider(profile=request.param, students=60) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


@pytest.mark.anyio
async def test_a_linked_class_offers_each_sis_category_title_once(
    sis: RunningProvider, classroom: Classroom
) -> None:
    # OneRoster 1.1 has no per-class categories: the SIS answers with the district's list,
    # in which every class's "Homework" appears; the teacher must see one "Homework".
    world = await build_world(sis, classroom)
    titles = [title for _, title in world.facts.categories]
    assert sorted(titles) == ["Assignments", "Homework", "Tests"]
    with classroom.session() as session:
        offered = session.scalars(
            select(Category.title).where(Category.class_id == world.class_id)
        ).all()
    assert sorted(offered) == ["Assignments", "Homework", "Tests"]
