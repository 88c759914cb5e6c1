"""`sislink users tokens`, `revoke-token` and `disable`: list API tokens with when they were last
used, revoke one so that it stops working at once, and stop a person using the console and API."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.services import accounts, people
from sislink.classroom.services.api_tokens import person_for_token
from sislink.cli import app as cli
from sislink.settings import Settings

PASSWORD = "correct horse battery staple"


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    answer = CliRunner().invoke(cli, list(args), env={"SISLINK_HOME": str(tmp_path)})
    return answer.exit_code, answer.output


def test_tokens_are_listed_and_one_is_revoked_from_the_command_line(tmp_path: Path) -> None:
    code, _ = _run(tmp_path, "users", "create-admin", "ada@x.example", "--name", "Ada")
    assert code == 0
    code, made = _run(tmp_path, "users", "token", "ada@x.example", "--label", "nightly", "--json")
    assert code == 0
    token = json.loads(made)["token"]
    code, listed = _run(tmp_path, "users", "tokens", "--json")
    assert code == 0
    rows = json.loads(listed)
    assert [(r["email"], r["label"], r["last_used_at"]) for r in rows] == [
        ("ada@x.example", "nightly", None)
    ]
    assert token not in listed
    code, table = _run(tmp_path, "users", "tokens")
    assert code == 0 and "nightly" in table and "never" in table
    code, said = _run(tmp_path, "users", "revoke-token", str(rows[0]["id"]))
    assert code == 0 and "is revoked" in said
    classroom = open_classroom(Settings.for_home(tmp_path))
    try:
        with classroom.transaction() as session:
            assert person_for_token(session, token) is None
    finally:
        classroom.close()
    code, listed = _run(tmp_path, "users", "tokens", "--json")
    assert json.loads(listed) == []
    code, unknown = _run(tmp_path, "users", "revoke-token", "4242")
    assert code == 1 and "no API token with id 4242" in unknown


def test_disabling_a_person_removes_their_password_and_revokes_their_tokens(
    tmp_path: Path,
) -> None:
    classroom = open_classroom(Settings.for_home(tmp_path))
    try:
        with classroom.transaction() as session:
            tom = people.create_person(
                session, Actor.system(), name="Tom", email="tom@x.example", roles=[Role.TEACHER]
            )
            accounts.set_password(session, Actor.system(), tom.id, PASSWORD)
    finally:
        classroom.close()
    _, made = _run(tmp_path, "users", "token", "tom@x.example", "--json")
    token = json.loads(made)["token"]
    code, said = _run(tmp_path, "users", "disable", "tom@x.example", "--json")
    assert code == 0 and json.loads(said)["tokens_revoked"] == 1
    classroom = open_classroom(Settings.for_home(tmp_path))
    try:
        with classroom.transaction() as session:
            assert person_for_token(session, token) is None
            assert not accounts.has_password(session, tom.id)
    finally:
        classroom.close()
    code, said = _run(tmp_path, "users", "disable", "nobody@x.example")
    assert code == 1 and "No person has the email" in said
