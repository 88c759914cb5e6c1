"""The grade pull as people reach it: `sislink google sync grades` (exit 0, 3 when something
cannot go to the SIS, 2 without --class or --all), the teacher's REST API (GET and POST
/api/teacher/classes/{id}/google) and the class page's Google Classroom card and button."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from console.console_world import PageClient
from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.services import accounts, connections
from sislink.classroom.services.api_tokens import create_api_token
from sislink.classroom.services.people import find_person_by_email
from sislink.cli import app
from sislink.console.app import create_app
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sync.google_grades_world import GradesWorld, build_grades_world
from sync.mark_export_world import sis_gradebook

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture(scope="module")
def local() -> Iterator[RunningClassroom]:
    with running_classroom(students=60) as running:
        yield running


@pytest.fixture
def g(sis: RunningProvider, local: RunningClassroom, tmp_path: Path) -> Iterator[GradesWorld]:
    classroom = open_classroom(Settings.for_home(tmp_path))
    built = asyncio.run(build_grades_world(sis, classroom, local))
    yield built
    classroom.close()


def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"SISLINK_HOME": str(tmp_path)})
    return result.exit_code, result.output


def test_the_command_pulls_exports_and_exits_3_when_something_cannot_go(
    g: GradesWorld, tmp_path: Path
) -> None:
    essay = g.add_work("Essay", points=20)
    g.grade(essay, g.emails[0], assigned=17, give_back=True)
    as_teacher = ("--as", g.world.teacher_email)
    code, text = cli(tmp_path, "google", "sync", "grades", "--json", *as_teacher)
    assert code == 2 and "--class" in text
    code, text = cli(
        tmp_path, "google", "sync", "grades", "--class", str(g.class_id), "--export", "--json",
        *as_teacher,
    )  # fmt: skip
    assert code == 0, text
    answer = json.loads(text)
    assert answer["status"] == "succeeded" and answer["writes"] == 2
    assert answer["courses"][0]["marks"]["created"] == 1
    items, _ = asyncio.run(sis_gradebook(g.world))
    assert [li.title for li in items] == ["Essay"]

    g.add_work("Fun quiz", category="Fun Extras")
    code, text = cli(tmp_path, "google", "sync", "grades", "--all", *as_teacher)
    assert code == 3, text
    assert "Fun Extras" in text and "not one of the class's SIS categories" in text


def test_the_teacher_api_shows_the_course_and_pulls_now(g: GradesWorld) -> None:
    api = create_app(g.classroom, allow_private_sis=True)
    with g.classroom.transaction() as session:
        teacher = find_person_by_email(session, g.world.teacher_email)
        assert teacher is not None
        _, token = create_api_token(session, Actor.system(), teacher)
    headers = {"Authorization": f"Bearer {token}"}
    work = g.add_work("Essay", points=20)
    g.grade(work, g.emails[1], assigned=11, give_back=True)
    url = f"/api/teacher/classes/{g.class_id}/google"
    with TestClient(api) as client:
        before = client.get(url, headers=headers)
        assert before.status_code == 200, before.text
        assert before.json()["course"]["course_id"] == g.course_id
        assert before.json()["last_pull"]["at"] is None
        pulled = client.post(url, json={"export": True}, headers=headers)
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["writes"] == 2 and pulled.json()["status"] == "succeeded"
        after = client.get(url, headers=headers).json()["last_pull"]
        assert after["at"] and after["job_id"] == pulled.json()["job_id"]
        assert after["marks"]["created"] == 1
        with g.classroom.transaction() as session:
            connections.set_teacher_export(session, Actor.system(), False)
        refused = client.post(url, json={}, headers=headers)
        assert refused.status_code == 403
        assert "Enable classwork and mark exporting" in refused.json()["detail"]["message"]
        assert client.post(url, json={"bogus": 1}, headers=headers).status_code == 422


def test_a_teacher_cannot_see_or_pull_another_teacher_s_class_by_the_api(g: GradesWorld) -> None:
    from sislink.classroom.models import Coursework
    from sislink.classroom.services import people

    api = create_app(g.classroom, allow_private_sis=True)
    with g.classroom.transaction() as session:
        other = people.create_person(
            session, Actor.system(), name="Other", email="other@x.example", roles=[Role.TEACHER]
        )
        _, token = create_api_token(session, Actor.system(), other)
    work = g.add_work("Essay", points=20)
    g.grade(work, g.emails[1], assigned=11, give_back=True)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/teacher/classes/{g.class_id}/google"
    calls_before = g.local.classroom.log.http_requests
    with TestClient(api) as client:
        seen = client.get(url, headers=headers)
        pulled = client.post(url, json={"export": True}, headers=headers)
    assert seen.status_code in (403, 404) and g.course_id not in seen.text
    assert pulled.status_code in (403, 404), pulled.text
    assert g.local.classroom.log.http_requests == calls_before
    with g.classroom.session() as session:
        assert session.query(Coursework).count() == 0


def test_the_class_page_shows_the_course_and_its_button_pulls(g: GradesWorld) -> None:
    with g.classroom.transaction() as session:
        teacher = find_person_by_email(session, g.world.teacher_email)
        assert teacher is not None and Role.TEACHER in teacher.roles
        accounts.set_password(session, Actor.system(), teacher.id, PASSWORD)
    work = g.add_work("Essay", points=20)
    g.grade(work, g.emails[0], assigned=19, give_back=True)
    served = create_app(g.classroom, allow_private_sis=True)
    browser = PageClient(TestClient(served))
    browser.sign_in(g.world.teacher_email, PASSWORD)
    page = browser.get(f"/classes/{g.class_id}")
    assert page.status_code == 200
    assert 'id="google-classroom"' in page.text and 'id="pull-google-grades"' in page.text
    assert "not been pulled" in page.text and "google sync" not in page.text
    assert 'id="google-course-link"' in page.text
    done = browser.post(f"/classes/{g.class_id}/google-pull", {"export": "yes"})
    assert done.status_code == 200
    assert "Pulled from Google Classroom" in done.text and "1 new" in done.text
    assert "Exported: 2 write(s)" in done.text
    assert "Grades last pulled" in browser.get(f"/classes/{g.class_id}").text

    # What cannot go to the SIS is in the class's troubleshoot report, linked from the card.
    g.add_work("Fun quiz", category="Fun Extras")
    said = browser.post(f"/classes/{g.class_id}/google-pull", {})
    assert "1 item(s) cannot go to the SIS" in said.text
    page = browser.get(f"/classes/{g.class_id}")
    found = re.search(rf'href="(/classes/{g.class_id}/reports/\d+)">What cannot go', page.text)
    assert found is not None
    report = browser.get(found.group(1))
    assert report.status_code == 200
    assert "Fun quiz" in report.text and "not one of the class" in report.text
    served.state.background.stop()
