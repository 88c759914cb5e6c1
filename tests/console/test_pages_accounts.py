"""Accounts in the console: `sislink users create-admin --password-env`, `sislink users invite`
links that set a teacher's password once, and a sign-in page that says what went wrong."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from console.console_world import ADMIN_EMAIL, PASSWORD, PageClient, console
from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.services import accounts, people
from sislink.classroom.services.api_tokens import create_api_token
from sislink.cli import app as cli
from sislink.console.app import create_app
from sislink.settings import Settings


def test_an_administrator_made_on_the_command_line_signs_in_and_invites_a_teacher(
    tmp_path: Path,
) -> None:
    env = {"SISLINK_HOME": str(tmp_path), "ADMIN_PASSWORD": PASSWORD}
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["users", "create-admin", ADMIN_EMAIL, "--name", "Ada", "--password-env", "ADMIN_PASSWORD"],
        env=env,
    )
    assert made.exit_code == 0, made.output
    classroom = open_classroom(Settings.for_home(tmp_path))
    with classroom.transaction() as session:
        people.create_person(
            session, Actor.system(), name="Tom", email="tom@school.example", roles=[Role.TEACHER]
        )
    invited = runner.invoke(
        cli,
        ["users", "invite", "tom@school.example", "--base-url", "http://console.example"],
        env=env,
    )
    assert invited.exit_code == 0, invited.output
    link = re.search(r"http://console\.example/set-password\?token=(\S+)", invited.output)
    assert link is not None, invited.output
    app = create_app(classroom)
    try:
        admin = PageClient(TestClient(app))
        assert admin.sign_in(ADMIN_EMAIL).url.path == "/admin/sis"
        teacher = PageClient(TestClient(app))
        page = teacher.get(f"/set-password?token={link.group(1)}")
        assert "tom@school.example" in page.text
        done = teacher.post(
            "/set-password", {"token": link.group(1), "password": PASSWORD, "confirm": PASSWORD}
        )
        assert done.url.path == "/classes" and "Your password is set" in done.text
        again = teacher.get(f"/set-password?token={link.group(1)}")
        assert again.status_code == 400 and "already used" in again.text
    finally:
        app.state.background.stop()
        classroom.close()


def test_inviting_someone_who_is_not_a_person_here_says_where_people_come_from(
    tmp_path: Path,
) -> None:
    answer = CliRunner().invoke(
        cli, ["users", "invite", "who@school.example"], env={"SISLINK_HOME": str(tmp_path)}
    )
    assert answer.exit_code == 1
    assert "roster import" in answer.output


def test_a_short_password_and_two_different_passwords_are_answered_next_to_the_field(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        with served.classroom.transaction() as session:
            people.create_person(
                session, Actor.system(), name="T", email="t@school.example", roles=[Role.TEACHER]
            )
            _, token = accounts.invite(session, Actor.system(), "t@school.example")
        browser = served.client()
        browser.get(f"/set-password?token={token}")
        short = browser.post(
            "/set-password", {"token": token, "password": "short", "confirm": "short"}
        )
        assert short.status_code == 400 and "at least 10 characters" in short.text
        differ = browser.post(
            "/set-password", {"token": token, "password": PASSWORD, "confirm": PASSWORD + "x"}
        )
        assert differ.status_code == 400 and "The two passwords differ" in differ.text
        # Nothing was used up: the right passwords still work.
        done = browser.post(
            "/set-password", {"token": token, "password": PASSWORD, "confirm": PASSWORD}
        )
        assert done.status_code == 200 and done.url.path == "/classes"


def test_a_wrong_password_is_refused_with_what_to_do_and_the_email_is_kept(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        wrong = browser.sign_in(ADMIN_EMAIL, "not the password")
        assert wrong.status_code == 401
        assert "do not match" in wrong.text and f'value="{ADMIN_EMAIL}"' in wrong.text
        empty = browser.post("/login", {"email": "", "password": ""})
        assert empty.status_code == 400 and "Type your email." in empty.text


def test_after_signing_in_only_paths_on_this_site_are_followed(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        browser.get("/login")
        answer = browser.post(
            "/login",
            {"email": ADMIN_EMAIL, "password": PASSWORD, "next": "//evil.example/x"},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/"
        asked = browser.client.get("/admin/activity", follow_redirects=False)
        assert asked.status_code == 200


def test_sign_in_is_refused_after_too_many_failures_even_with_the_right_password(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        served.app.state.sign_in_guard = accounts.SignInGuard(
            accounts.SignInLimits(per_account=3, per_address=100)
        )
        browser = served.client()
        for _ in range(3):
            assert browser.sign_in(ADMIN_EMAIL, "not the password").status_code == 401
        refused = browser.sign_in(ADMIN_EMAIL)
        assert refused.status_code == 429
        assert "Too many sign-in attempts" in refused.text and "try again after" in refused.text
        assert refused.headers["retry-after"].isdigit()
        assert browser.get("/admin/sis", follow_redirects=False).status_code == 303


def test_a_throttled_unknown_email_is_answered_as_a_known_one(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        served.app.state.sign_in_guard = accounts.SignInGuard(
            accounts.SignInLimits(per_account=2, per_address=100)
        )
        answers = {}
        for email in (ADMIN_EMAIL, "nobody@district.example"):
            browser = served.client()
            for _ in range(2):
                browser.sign_in(email, "not the password")
            answers[email] = browser.sign_in(email, "not the password")
        known, unknown = answers[ADMIN_EMAIL], answers["nobody@district.example"]
        assert known.status_code == unknown.status_code == 429
        problem = re.compile(r'<p class="problem"[^>]*>(.*?)</p>', re.S)
        assert problem.findall(known.text) == problem.findall(unknown.text) != []


def test_sign_in_is_throttled_per_address_across_emails(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        served.app.state.sign_in_guard = accounts.SignInGuard(
            accounts.SignInLimits(per_account=100, per_address=3)
        )
        browser = served.client()
        for n in range(3):
            browser.sign_in(f"guess{n}@district.example", "not the password")
        assert browser.sign_in(ADMIN_EMAIL).status_code == 429


def test_an_administrator_sees_api_tokens_with_last_use_and_revokes_one(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        teacher_id = served.person_with_password("tom@school.example", Role.TEACHER, "Tom")
        with served.classroom.transaction() as session:
            tom = people.get_person(session, teacher_id)
            row, token = create_api_token(session, Actor.system(), tom, label="gradebook sync")
        browser = served.client()
        browser.sign_in(ADMIN_EMAIL)
        page = browser.get("/admin/tokens")
        assert page.status_code == 200
        assert "gradebook sync" in page.text and "tom@school.example" in page.text
        assert "never" in page.text and token not in page.text
        api = TestClient(served.app)
        assert (
            api.get(
                "/api/teacher/classes", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
        assert "never" not in browser.get("/admin/tokens").text
        done = browser.post(f"/admin/tokens/{row.id}/revoke")
        assert done.status_code == 200 and "is revoked" in done.text
        assert "gradebook sync" not in done.text
        refused = api.get("/api/teacher/classes", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401


def test_a_teacher_cannot_open_the_api_tokens_page(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        served.person_with_password("tom@school.example", Role.TEACHER, "Tom")
        browser = served.client()
        browser.sign_in("tom@school.example")
        assert browser.get("/admin/tokens").status_code == 403
