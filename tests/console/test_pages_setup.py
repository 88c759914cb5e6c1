"""The administrator's SIS setup page against the built-in SIS over HTTP: choose, check
eligibility, connect (problems next to the field), authorise (the precise result), the teacher
permission, and a disconnect that says what it does. The secret code never comes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.console_world import ADMIN_EMAIL, connect_and_authorise, console
from sislink.classroom.models import Role
from sislink.oneroster.provider.server import RunningProvider, running_provider


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=30) as running:
        yield running


def test_an_administrator_connects_authorises_sets_the_permission_and_disconnects(
    sis: RunningProvider, tmp_path: Path
) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        chosen = admin.get("/admin/sis?sis=generic-1.2")
        assert "Partnership status" in chosen.text and "Infinite Campus" in chosen.text
        assert "Token URL" in chosen.text and "Secret code" in chosen.text
        authorised = connect_and_authorise(admin, sis)
        assert authorised.status_code == 200
        assert 'id="authorise-result"' in authorised.text and "Authorised" in authorised.text
        assert 'id="connection-status">authorised' in authorised.text
        assert 'id="secret-state">set' in authorised.text
        assert sis.client_secret not in authorised.text
        assert 'name="teacher_export" id="teacher_export" checked' in authorised.text

        off = admin.post("/admin/sis/permission", {})
        assert "mark exporting is off for teachers" in off.text
        assert 'name="teacher_export" id="teacher_export" >' in off.text
        on = admin.post("/admin/sis/permission", {"teacher_export": "on"})
        assert "teachers may now export" in on.text

        asked = admin.get("/admin/sis/disconnect")
        for words in (
            "Exports stop at once",
            "Exported data stays in the SIS",
            "Reconnecting does not duplicate",
        ):
            assert words in asked.text
        gone = admin.post("/admin/sis/disconnect")
        assert 'id="connection-status">disconnected' in gone.text
        assert 'id="secret-state">not set' in gone.text
        assert sis.client_secret not in gone.text


def test_a_host_url_that_cannot_work_is_answered_next_to_its_field_and_nothing_is_saved(
    sis: RunningProvider, tmp_path: Path
) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        admin.get("/admin/sis?sis=generic-1.2")
        answer = admin.post(
            "/admin/sis/connect",
            {
                "sis": "generic-1.2",
                "host_url": "http://sis.example.org",  # without "Allow plain http://"
                "token_url": sis.token_url,
                "access_key": sis.client_id,
                "secret_code": sis.client_secret,
            },
        )
        assert answer.status_code == 400
        assert 'id="host_url-error"' in answer.text and "must use https" in answer.text
        assert "Did you mean https://sis.example.org?" in answer.text
        assert sis.client_secret not in answer.text
        assert 'id="connection"' not in answer.text  # no connection was saved
        blank = admin.post("/admin/sis/connect", {"sis": "generic-1.2", "host_url": ""})
        assert 'id="host_url-error"' in blank.text and 'id="secret_code-error"' in blank.text


def test_a_wrong_secret_code_is_reported_precisely_with_what_to_do(
    sis: RunningProvider, tmp_path: Path
) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        admin.get("/admin/sis?sis=generic-1.2")
        admin.post(
            "/admin/sis/connect",
            {
                "sis": "generic-1.2",
                "host_url": sis.host_url,
                "token_url": sis.token_url,
                "access_key": sis.client_id,
                "secret_code": "not-the-secret",
                "insecure": "on",
            },
        )
        refused = admin.post("/admin/sis/authorise")
        assert refused.status_code == 422
        assert "Not authorised: wrong credentials" in refused.text
        assert 'id="connection-status">draft' in refused.text
        assert "not-the-secret" not in refused.text


def test_eligibility_answers_say_why_a_sis_cannot_connect_yet(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        unknown = admin.get("/admin/sis?sis=infinite-campus")
        assert "Campus Learning" in unknown.text and "Answer these to be sure" in unknown.text
        assert "Consumer key" in unknown.text and "OneRoster base URL" in unknown.text
        no_licence = admin.get("/admin/sis?sis=infinite-campus&licence=no&hosting=vendor")
        assert "Not eligible yet" in no_licence.text
        assert admin.get("/admin/sis?sis=nonsense").status_code == 404


def test_only_administrators_open_the_administrators_pages(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        served.person_with_password("tom@school.example", Role.TEACHER)
        teacher = served.client()
        teacher.sign_in("tom@school.example")
        for page in ("/admin/sis", "/admin/roster", "/admin/activity", "/admin/sis/disconnect"):
            assert teacher.get(page).status_code == 403, page
        assert teacher.post("/admin/sis/permission", {"teacher_export": "on"}).status_code == 403
        anonymous = served.client()
        sent = anonymous.get("/admin/activity", follow_redirects=False)
        assert sent.status_code == 303
        assert sent.headers["location"] == "/login?next=/admin/activity"
