"""The administrator's Google Classroom page: connect with the key file, authorise (each check
shown, or the failure with its fix), disconnect; the key never shown; teachers kept out."""

from __future__ import annotations

import json
from pathlib import Path

from console.console_world import ADMIN_EMAIL, console
from sislink.classroom.models import Role
from sislink.googleclassroom.emulator import ClassroomConfig, running_classroom


def test_an_administrator_connects_authorises_and_disconnects_google(tmp_path: Path) -> None:
    with console(tmp_path) as served, running_classroom(students=20) as local:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        page = admin.get("/admin/google")
        assert page.status_code == 200 and "Domain-wide delegation" in page.text
        key_text = local.key_file.read_text()
        saved = admin.client.post(
            "/admin/google/connect",
            data={"csrf_token": admin.token, "admin_email": local.admin_email,
                  "api_endpoint": local.api_url},
            files={"key_upload": ("key.json", key_text.encode(), "application/json")},
        )  # fmt: skip
        assert saved.status_code == 200, saved.text
        assert "stored sealed" in saved.text and local.domain in saved.text
        admin.get("/admin/google")
        authorised = admin.post("/admin/google/authorise")
        assert authorised.status_code == 200
        assert 'id="google-status">authorised' in authorised.text
        assert "list courses" in authorised.text
        private = json.loads(key_text)["private_key"]
        assert private[40:100] not in authorised.text
        gone = admin.post("/admin/google/disconnect")
        assert "nothing in Google Classroom was removed" in gone.text
        assert 'id="google-connection"' not in gone.text


def test_a_failed_authorise_shows_the_problem_and_its_fix(tmp_path: Path) -> None:
    config = ClassroomConfig(api_enabled=False)
    with console(tmp_path) as served, running_classroom(students=5, config=config) as local:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        admin.get("/admin/google")
        admin.post("/admin/google/connect", {
            "key_file": local.key_file.read_text(), "admin_email": local.admin_email,
            "api_endpoint": local.api_url})  # fmt: skip
        refused = admin.post("/admin/google/authorise")
        assert refused.status_code == 422
        assert "Not authorised: api disabled" in refused.text
        assert "enable it in the Google Cloud console" in refused.text


def test_a_bad_key_file_is_answered_next_to_its_field_and_teachers_are_kept_out(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        admin.get("/admin/google")
        refused = admin.post("/admin/google/connect", {
            "key_file": '{"installed": {}}', "admin_email": "ada@district.example"})  # fmt: skip
        assert refused.status_code == 400
        assert 'id="key_file-error"' in refused.text and "not a service account key" in refused.text
        served.person_with_password("tom@district.example", Role.TEACHER)
        teacher = served.client()
        teacher.sign_in("tom@district.example")
        assert teacher.get("/admin/google").status_code == 403
