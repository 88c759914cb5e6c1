"""`sislink partners|eligibility|connect|authorise|permissions|disconnect|status|audit` and
`sislink users` from the command line, against the built-in SIS over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sislink.cli import app
from sislink.oneroster.provider.server import running_provider

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    monkeypatch.delenv("SISLINK_SECRET_KEY", raising=False)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), env=env, input=input)


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_partners_lists_every_sis_with_its_partnership() -> None:
    rows = as_json(run("partners", "--json"))
    by_name = {row["name"]: row for row in rows}
    assert by_name["capita-sims"]["partnership"] == "Contact your SIS to learn more"
    assert by_name["generic-1.2"]["token_url_needed"] is True
    assert by_name["infinite-campus"]["extra_credentials"] == ["vendor_key"]
    table = run("partners")
    assert table.exit_code == 0 and "infinite-campus" in table.stdout


def test_eligibility_says_why_not_and_exits_non_zero() -> None:
    result = run("eligibility", "--sis", "aspen", "--version", "6.1", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["eligible"] is False
    assert "older than 6.2" in report["reasons"][0]
    fine = as_json(
        run("eligibility", "--sis", "skyward", "--licence", "yes", "--hosting", "self", "--json")
    )
    assert fine["eligible"] is True
    assert "best effort" in fine["warnings"][0]


def test_the_whole_lifecycle_from_the_command_line() -> None:
    with running_provider(profile="infinite-campus", students=20) as sis:
        env = {
            "SIS_SECRET": sis.client_secret,
            "VENDOR_KEY": sis.extra_headers["x-vendor-authorization"],
        }
        admin = run("users", "create-admin", "ada@district.example", "--name", "Ada", "--json")
        assert as_json(admin)["admin"] is True
        saved = as_json(
            run(
                "connect",
                "--sis",
                "infinite-campus",
                "--host-url",
                sis.host_url,
                "--access-key",
                sis.client_id,
                "--secret-code-env",
                "SIS_SECRET",
                "--vendor-key-env",
                "VENDOR_KEY",
                "--as",
                "ada@district.example",
                "--json",
                env=env,
            )
        )
        assert saved["status"] == "draft" and saved["connected_by"] == "ada@district.example"
        authorised = as_json(run("authorise", "--json"))
        assert authorised["message"] == "Authorised"
        assert authorised["connection"]["sis_identity"].startswith("infinite-campus:")
        plain = run("authorise")
        assert plain.exit_code == 0 and plain.stdout.startswith("Authorised: Infinite Campus")
        assert (
            as_json(run("permissions", "--teacher-export", "off", "--json"))[
                "teacher_export_enabled"
            ]
            is False
        )
        state = as_json(run("status", "--json"))
        assert state["connection"]["teacher_export_enabled"] is False
        assert state["connection"]["authorised_at"] is not None
        assert {p["name"] for p in state["partners"]} >= {"aeries", "powerschool"}
        assert as_json(run("disconnect", "--json"))["secret_stored"] is False
        again = run("disconnect")
        assert again.exit_code == 1
        assert "nothing to disconnect" in again.stderr
        trail = as_json(run("audit", "--json"))
        assert [row["action"] for row in trail][:4] == [
            "sis.disconnected",
            "sis.teacher_export",
            "sis.authorised",
            "sis.authorised",
        ]
        assert trail[-1]["who"] == "ada@district.example"
        table = run("status")
        assert table.exit_code == 0 and "disconnected" in table.stdout


def test_connect_client_auth_post_reaches_a_sis_that_takes_the_credentials_in_the_form() -> None:
    with running_provider(profile="generic-1.2", students=20, client_auth=["post"]) as sis:
        env = {"SIS_SECRET": sis.client_secret}
        connect = (
            *("connect", "--sis", "generic-1.2", "--host-url", sis.host_url),
            *("--token-url", sis.token_url, "--access-key", sis.client_id),
            *("--secret-code-env", "SIS_SECRET"),
        )
        assert as_json(run(*connect, "--json", env=env))["client_auth"] == "basic"
        refused = run("authorise")
        assert refused.exit_code == 1
        assert "does not take client credentials by HTTP Basic" in refused.stderr
        assert "--client-auth post" in refused.stderr
        saved = as_json(run(*connect, "--client-auth", "post", "--json", env=env))
        assert saved["client_auth"] == "post"
        assert as_json(run("authorise", "--json"))["message"] == "Authorised"
        shown = run("status")
        assert "Client authentication" in shown.stdout and "post" in shown.stdout
    wrong = run(*connect, "--client-auth", "digest", env=env)
    assert wrong.exit_code == 1 and "--client-auth is basic or post" in wrong.stderr


def test_the_secret_can_come_from_a_hidden_prompt() -> None:
    with running_provider(profile="generic-1.1", students=20) as sis:
        saved = run(
            "connect",
            "--sis",
            "generic-1.1",
            "--host-url",
            sis.host_url,
            "--access-key",
            sis.client_id,
            input=sis.client_secret + "\n",
        )
        assert saved.exit_code == 0, saved.output
        assert sis.client_secret not in saved.output
        assert run("authorise").exit_code == 0


def test_failures_exit_non_zero_with_one_plain_sentence() -> None:
    bad_url = run(
        "connect",
        "--sis",
        "skyward",
        "--host-url",
        "https://esdemo1.skyward.com",
        "--access-key",
        "k",
        "--secret-code-env",
        "S",
        env={"S": "secret"},
    )
    assert bad_url.exit_code == 1
    assert "Try: https://esdemo1.skyward.com/api/ims/oneroster/v1p1/" in bad_url.stderr
    assert "Traceback" not in bad_url.output
    unset = run(
        "connect",
        "--sis",
        "generic-1.1",
        "--host-url",
        "https://sis.example.org",
        "--access-key",
        "k",
        "--secret-code-env",
        "NOT_SET_ANYWHERE",
    )
    assert unset.exit_code == 1 and "NOT_SET_ANYWHERE is empty or not set" in unset.stderr
    nothing = run("authorise")
    assert nothing.exit_code == 1 and "connect first" in nothing.stderr
    with running_provider(profile="generic-1.2", students=20) as sis:
        run(
            "connect",
            "--sis",
            "generic-1.2",
            "--host-url",
            sis.host_url,
            "--token-url",
            sis.token_url,
            "--access-key",
            sis.client_id,
            "--secret-code-env",
            "S",
            env={"S": "wrong-secret"},
        )
        refused = run("authorise")
    assert refused.exit_code == 1
    assert "refused the Access key or the Secret code" in refused.stderr
    off = run("permissions", "--teacher-export", "maybe")
    assert off.exit_code == 1 and "on or off" in off.stderr


def test_users_token_prints_a_new_token_once() -> None:
    run("users", "create-admin", "ada@district.example", "--name", "Ada")
    first = as_json(run("users", "token", "ada@district.example", "--json"))
    second = as_json(run("users", "token", "ada@district.example", "--json"))
    assert first["token"].startswith("slk_") and first["token"] != second["token"]
    missing = run("users", "token", "nobody@district.example")
    assert missing.exit_code == 1 and "No person has the email" in missing.stderr
