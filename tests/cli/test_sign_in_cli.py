"""`sislink sign-in oidc|list|remove|password on|off` (issue 18): providers set from the command
line keep only the name of the secret's variable; password sign-in cannot be turned off before
a provider has signed anyone in; bad input is one sentence and exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import OidcProvider, Role
from sislink.classroom.services import people, sign_in
from sislink.cli import app as cli
from sislink.settings import Settings


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    answer = CliRunner().invoke(cli, list(args), env={"SISLINK_HOME": str(tmp_path)})
    return answer.exit_code, answer.output


def test_a_provider_is_set_listed_and_removed_from_the_command_line(tmp_path: Path) -> None:
    code, said = _run(
        tmp_path,
        "sign-in", "oidc",
        "--issuer", "https://accounts.google.com/",
        "--client-id", "123.apps.googleusercontent.com",
        "--client-secret-env", "GOOGLE_CLIENT_SECRET",
        "--domain", "District.example.org",
        "--admin-group", "sislink-admins",
    )  # fmt: skip
    assert code == 0, said
    assert "Google is set" in said and "$GOOGLE_CLIENT_SECRET" in said
    code, listed = _run(tmp_path, "sign-in", "list", "--json")
    assert code == 0
    shown = json.loads(listed)
    assert shown["password_sign_in"] is True
    [provider] = shown["providers"]
    assert provider["issuer"] == "https://accounts.google.com"
    assert provider["client_secret"] == "$GOOGLE_CLIENT_SECRET"
    assert provider["domain"] == "district.example.org"
    code, said = _run(tmp_path, "sign-in", "remove", "Google")
    assert code == 0 and "Google is removed" in said
    code, listed = _run(tmp_path, "sign-in", "list")
    assert code == 0 and "No sign-in provider is set" in listed


def test_bad_providers_are_refused_with_a_sentence(tmp_path: Path) -> None:
    code, said = _run(
        tmp_path, "sign-in", "oidc", "--issuer", "http://idp.example.org",
        "--client-id", "x", "--client-secret-env", "S",
    )  # fmt: skip
    assert code == 1 and "is not https" in said
    code, said = _run(
        tmp_path, "sign-in", "oidc", "--issuer", "https://idp.example.org",
        "--client-id", "x", "--client-secret-env", "not a name",
    )  # fmt: skip
    assert code == 1 and "is not an environment variable name" in said
    code, said = _run(tmp_path, "sign-in", "remove", "9")
    assert code == 1 and "No sign-in provider is '9'" in said


def test_password_sign_in_goes_off_only_after_a_provider_has_signed_someone_in(
    tmp_path: Path,
) -> None:
    code, said = _run(tmp_path, "sign-in", "password", "off")
    assert code == 1 and "stays on until someone has signed in with a provider" in said
    code, _ = _run(
        tmp_path, "sign-in", "oidc", "--issuer", "https://login.microsoftonline.com/t1/v2.0",
        "--client-id", "app", "--client-secret-env", "ENTRA_SECRET",
    )  # fmt: skip
    assert code == 0
    classroom = open_classroom(Settings.for_home(tmp_path))
    try:
        with classroom.transaction() as session:
            teacher = people.create_person(
                session, Actor.system(), name="T", email="t@x.example", roles=[Role.TEACHER]
            )
            provider = session.query(OidcProvider).one()
            sign_in.signed_in(session, provider, teacher)  # as a teacher's sign-in with it does
    finally:
        classroom.close()
    code, said = _run(tmp_path, "sign-in", "password", "off")
    assert code == 1 and "until an administrator has signed in with a provider" in said
    classroom = open_classroom(Settings.for_home(tmp_path))
    try:
        with classroom.transaction() as session:
            admin = people.create_person(
                session, Actor.system(), name="A", email="a@x.example", roles=[Role.ADMIN]
            )
            sign_in.signed_in(session, session.query(OidcProvider).one(), admin)
    finally:
        classroom.close()
    code, said = _run(tmp_path, "sign-in", "password", "off")
    assert code == 0 and "Password sign-in is off" in said
    # The only provider that worked cannot go while passwords are off: nobody could sign in.
    code, said = _run(tmp_path, "sign-in", "remove", "Microsoft")
    assert code == 1 and "turn password sign-in on first" in said
    code, said = _run(tmp_path, "sign-in", "password", "on")
    assert code == 0 and "Password sign-in is on" in said
