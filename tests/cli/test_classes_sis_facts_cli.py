"""A teacher reads a linked class's SIS facts again (categories, grading periods) from the
command line, the REST API and the class page, as soon as the SIS changed them; and coursework
may name a category the SIS added, once the facts are stale."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import ClassExportSettings, utc_now
from sislink.classroom.services.api_tokens import create_api_token
from sislink.classroom.services.people import find_person_by_email
from sislink.cli import app
from sislink.console.app import create_app
from sislink.oneroster.models import format_datetime
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sync.mark_export_world import World, build_world

NEW_CATEGORY = "Lab reports"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def world(sis: RunningProvider, tmp_path: Path) -> Iterator[World]:
    for record in list(sis.store.iter_all("category")):
        if record["sourcedId"] == "cat-added":
            sis.store.delete("category", "cat-added")
    classroom = open_classroom(Settings.for_home(tmp_path))
    built = asyncio.run(build_world(sis, classroom, students=3))
    # The SIS administrator adds a category to the class after it was linked.
    template = next(sis.store.iter_all("category"))
    sis.store.put(
        "category",
        {
            **template,
            "sourcedId": "cat-added",
            "title": NEW_CATEGORY,
            "metadata": {"classSourcedId": built.sis_class_id},
            "dateLastModified": format_datetime(utc_now()),
        },
    )
    yield built
    classroom.close()


def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"SISLINK_HOME": str(tmp_path)})
    return result.exit_code, result.output


def test_refresh_sis_reads_the_class_s_new_category_at_once(world: World, tmp_path: Path) -> None:
    as_teacher = ("--as", world.teacher_email)
    code, text = cli(tmp_path, "classes", "refresh-sis", str(world.class_id), *as_teacher, "--json")
    assert code == 0, text
    assert NEW_CATEGORY in json.loads(text)["categories"]
    code, text = cli(
        tmp_path, "coursework", "add", str(world.class_id), "--title", "Lab 1", "--points",
        "10", "--due", "2026-12-01", "--category", NEW_CATEGORY, *as_teacher,
    )  # fmt: skip
    assert code == 0, text


def test_coursework_naming_a_new_sis_category_reads_stale_facts_first(
    world: World, tmp_path: Path
) -> None:
    with world.classroom.transaction() as session:
        for row in session.scalars(select(ClassExportSettings)):
            row.sis_refreshed_at = utc_now() - timedelta(hours=13)
    code, text = cli(
        tmp_path, "coursework", "add", str(world.class_id), "--title", "Lab 1", "--points",
        "10", "--due", "2026-12-01", "--category", NEW_CATEGORY, "--as", world.teacher_email,
    )  # fmt: skip
    assert code == 0, text


def test_refresh_over_rest(world: World) -> None:
    api = create_app()
    api.state.classroom = world.classroom
    with world.classroom.transaction() as session:
        teacher = find_person_by_email(session, world.teacher_email)
        assert teacher is not None
        _, token = create_api_token(session, Actor.system(), teacher)
    with TestClient(api) as client:
        answer = client.post(
            f"/api/teacher/classes/{world.class_id}/sis-facts",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        assert NEW_CATEGORY in answer.json()["categories"]
