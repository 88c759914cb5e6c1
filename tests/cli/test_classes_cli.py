"""`sislink classes list` says what each class's SIS link is, as export will find it: linked,
not linked, unlinked by hand, or linked with another SIS (which must be linked again)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Class
from sislink.classroom.services import classes, connections
from sislink.cli import app
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sync.mark_export_world import World, build_world


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def world(sis: RunningProvider, tmp_path: Path) -> Iterator[World]:
    classroom = open_classroom(Settings.for_home(tmp_path))
    built = asyncio.run(build_world(sis, classroom, students=3))
    yield built
    classroom.close()


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"SISLINK_HOME": str(tmp_path)})
    return result.exit_code, result.output


def _listed(tmp_path: Path, class_id: int) -> dict[str, Any]:
    code, text = _run(tmp_path, "classes", "list", "--json")
    assert code == 0, text
    (row,) = [row for row in json.loads(text) if row["id"] == class_id]
    return row  # type: ignore[no-any-return]


def _reconnect(world: World, sis: RunningProvider, district: str) -> None:
    """An administrator saves and authorises a new connection, to a SIS of `district`."""
    with world.classroom.transaction() as session:
        old = connections.current_connection(session)
        assert old is not None
        new = connections.save_connection(
            session,
            Actor.system(),
            world.classroom.secret_box,
            partner=old.partner,
            version=old.version,
            host_url=sis.host_url,
            access_key=sis.client_id,
            secret_code=sis.client_secret,
            token_url=sis.token_url or None,
        )
        connections.mark_authorised(session, Actor.system(), new.id, district_sourced_id=district)


def test_a_linked_class_is_listed_as_linked_to_its_sis_class(world: World, tmp_path: Path) -> None:
    row = _listed(tmp_path, world.class_id)
    assert row["link"] == "linked" and row["sis_class_id"] == world.sis_class_id
    assert row["link_advice"] is None
    code, text = _run(tmp_path, "classes", "list")
    assert code == 0 and world.sis_class_id in text


def test_a_class_linked_with_another_sis_is_listed_unlinked_with_what_to_do(
    world: World, sis: RunningProvider, tmp_path: Path
) -> None:
    _reconnect(world, sis, district="another-district")
    row = _listed(tmp_path, world.class_id)
    # Pre-flight refuses its export, so it has no SIS class to export to.
    assert row["link"] == "linked_with_another_sis" and row["sis_class_id"] is None
    assert "link it again" in row["link_advice"]
    code, text = _run(tmp_path, "classes", "list")
    assert code == 0, text
    assert "linked with another SIS" in " ".join(text.split())
    code, text = _run(
        tmp_path, "classes", "link", str(world.class_id), "--sis-class", world.sis_class_id
    )
    assert code == 0, text
    row = _listed(tmp_path, world.class_id)
    assert row["link"] == "linked" and row["sis_class_id"] == world.sis_class_id


def test_a_link_made_with_an_earlier_connection_to_the_same_sis_is_still_linked(
    world: World, sis: RunningProvider, tmp_path: Path
) -> None:
    with world.classroom.session() as session:
        current = connections.current_connection(session)
        assert current is not None and current.district_sourced_id is not None
        district = current.district_sourced_id
    _reconnect(world, sis, district=district)
    row = _listed(tmp_path, world.class_id)
    assert row["link"] == "linked" and row["sis_class_id"] == world.sis_class_id


def test_a_class_unlinked_by_hand_is_listed_with_the_day_and_how_to_undo_it(
    world: World, tmp_path: Path
) -> None:
    code, text = _run(tmp_path, "classes", "unlink", str(world.class_id))
    assert code == 0, text
    row = _listed(tmp_path, world.class_id)
    assert row["link"] == "unlinked_by_hand" and row["sis_class_id"] is None
    day = row["unlinked_at"][:10]
    assert f"unlinked by hand on {day}" in row["link_advice"]
    code, text = _run(tmp_path, "classes", "list")
    flat = " ".join(text.split())
    assert f"unlinked by hand on {day}" in flat and "link it again" in flat


def test_a_class_never_linked_is_listed_as_not_linked(world: World, tmp_path: Path) -> None:
    with world.classroom.transaction() as session:
        own = classes.create_class(session, Actor.system(), title="Chess club")
        own_id = own.id
    row = _listed(tmp_path, own_id)
    assert row["link"] == "unlinked" and row["sis_class_id"] is None
    assert row["unlinked_at"] is None and row["link_advice"] is None
    code, text = _run(tmp_path, "classes", "list")
    assert code == 0 and "(not linked)" in text


def test_roster_import_json_says_why_an_imported_class_was_left_unlinked(
    world: World, tmp_path: Path
) -> None:
    # The world's class, made here, holds the SIS class that the import brings a class for.
    code, text = _run(tmp_path, "roster", "import", "--full", "--json")
    assert code == 0, text
    report = json.loads(text)
    (left,) = [
        c for c in report["classes_left_unlinked"] if c["sis_class_id"] == world.sis_class_id
    ]
    assert left["reason"] == "sis_class_taken" and left["holder_id"] == world.class_id
    with world.classroom.session() as session:
        holder = session.get(Class, world.class_id)
        assert holder is not None
    assert left["message"].endswith(
        f"SIS class {world.sis_class_id} is already linked to class {holder.title!r} "
        "(one SIS class per class)"
    )
    assert report["classes_left_unlinked_count"] == len(report["classes_left_unlinked"])


def test_roster_import_says_in_words_why_an_imported_class_was_left_unlinked(
    world: World, tmp_path: Path
) -> None:
    code, text = _run(tmp_path, "roster", "import", "--full")
    assert code == 0, text
    flat = " ".join(text.split())  # the terminal may wrap a long line
    assert "Not linked: Class " in flat
    assert f"SIS class {world.sis_class_id} is already linked to class" in flat


def test_the_api_and_my_classes_page_say_what_the_list_says_of_a_link_with_another_sis(
    world: World, sis: RunningProvider, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from console.console_world import PASSWORD, PageClient
    from sislink.classroom import Actor
    from sislink.classroom.models import Person
    from sislink.classroom.services import accounts
    from sislink.classroom.services.api_tokens import create_api_token
    from sislink.console.app import create_app

    _reconnect(world, sis, district="another-district")
    with world.classroom.transaction() as session:
        teacher = session.get(Person, world.teacher.person_id)
        assert teacher is not None
        accounts.set_password(session, Actor.system(), teacher.id, PASSWORD)
        _, token = create_api_token(session, Actor.system(), teacher)
    app = create_app(world.classroom, allow_private_sis=True)
    with TestClient(app) as client:
        (listed,) = client.get(
            "/api/teacher/classes", headers={"Authorization": f"Bearer {token}"}
        ).json()
        page = PageClient(client)
        page.sign_in(world.teacher_email)
        mine = page.get("/classes").text
    assert listed["link"] == "linked_with_another_sis" and listed["sis_class_id"] is None
    assert "link it again" in listed["link_advice"]
    assert "not linked" in mine and "linked with another SIS" in mine
