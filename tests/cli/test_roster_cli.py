"""`sislink roster ...` against the built-in SIS: import --json, dry run, holds, approve, history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sislink.classroom import Actor, open_classroom
from sislink.classroom.services import connections
from sislink.cli import app
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings

ENTITIES = {
    "schools", "terms", "grading_periods", "courses", "classes",
    "teachers", "students", "enrolments", "categories",
}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, RunningProvider]]:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    monkeypatch.delenv("SISLINK_SECRET_KEY", raising=False)
    with running_provider(students=80) as running:
        classroom = open_classroom(Settings.from_env())
        with classroom.transaction() as session:
            saved = connections.save_connection(
                session,
                Actor.system(),
                classroom.secret_box,
                partner=running.profile,
                version=running.version,
                host_url=running.host_url,
                access_key=running.client_id,
                secret_code=running.client_secret,
                token_url=running.token_url,
            )
            connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id="d")
        classroom.close()
        yield tmp_path, running


def run(*args: str) -> dict | list:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_roster_import_json_prints_counts_for_every_entity_and_warnings(
    home: tuple[Path, RunningProvider],
) -> None:
    report = run("roster", "import", "--json")
    assert isinstance(report, dict)
    assert set(report["counts"]) == ENTITIES
    assert report["counts"]["students"] == {
        "created": 80, "updated": 0, "deactivated": 0, "unchanged": 0, "skipped": 0,
    }  # fmt: skip
    assert report["warnings"] == []
    assert report["job_status"] == "succeeded"
    again = run("roster", "import", "--json")
    assert isinstance(again, dict)
    assert again["mode"] == "delta"
    history = run("roster", "history", "--json")
    assert [job["job_id"] for job in history] == [again["job_id"], report["job_id"]]


def test_a_dry_run_from_the_command_line_changes_nothing(
    home: tuple[Path, RunningProvider],
) -> None:
    plan = run("roster", "import", "--dry-run", "--json")
    assert isinstance(plan, dict)
    assert plan["status"] == "dry_run"
    assert plan["counts"]["students"]["created"] == 80
    assert run("roster", "history", "--json") == []
    report = run("roster", "import", "--json")
    assert isinstance(report, dict)
    assert report["counts"]["students"]["created"] == 80


def test_a_held_import_is_listed_then_approved_from_the_command_line(
    home: tuple[Path, RunningProvider],
) -> None:
    _, sis = home
    run("roster", "import", "--json")
    enrolments = [e["sourcedId"] for e in sis.store.iter_all("enrollment")]
    for sid in enrolments[: len(enrolments) // 2]:
        sis.store.delete("enrollment", sid)
    held = run("roster", "import", "--full", "--json")
    assert isinstance(held, dict)
    assert held["job_status"] == "on_hold"
    listed = run("roster", "holds", "--json")
    assert [job["job_id"] for job in listed] == [held["job_id"]]
    approved = run("roster", "approve", str(held["job_id"]), "--json")
    assert isinstance(approved, dict)
    assert approved["counts"]["enrolments"]["deactivated"] == len(enrolments) // 2
    assert run("roster", "holds", "--json") == []


def test_approving_a_job_that_is_not_on_hold_says_so(home: tuple[Path, RunningProvider]) -> None:
    report = run("roster", "import", "--json")
    assert isinstance(report, dict)
    result = CliRunner().invoke(app, ["roster", "approve", str(report["job_id"])])
    assert result.exit_code == 1
    assert "not on hold" in result.output


def test_an_import_that_rejected_records_exits_3_and_keeps_them(
    home: tuple[Path, RunningProvider],
) -> None:
    _, sis = home
    run("roster", "import", "--json")
    spoiled = next(u for u in sis.store.iter_all("user") if u["roles"][0]["role"] == "student")
    sis.store.put("user", {**spoiled, "status": "Active!"})
    for args in (["--full", "--dry-run"], ["--full"]):
        result = CliRunner().invoke(app, ["roster", "import", *args, "--json"])
        assert result.exit_code == 3, result.output  # EXIT_NEEDS_ATTENTION
        report = json.loads(result.stdout)
        assert report["attention"]["count"] == 1
        assert report["rejected"][0]["sourced_id"] == spoiled["sourcedId"]
        assert report["counts"]["students"]["deactivated"] == 0
    assert report["job_status"] == "needs_attention"
    table = CliRunner().invoke(app, ["roster", "import", "--full"])
    assert table.exit_code == 3
    assert f"Rejected: students {spoiled['sourcedId']!r}" in table.output
    assert "Needs attention" in table.output


def test_a_database_refusal_is_one_sentence_without_sql_not_a_traceback(
    home: tuple[Path, RunningProvider],
) -> None:
    classroom = open_classroom(Settings.from_env())
    with classroom.engine.begin() as connection:
        # A rule in the database itself that refuses the first enrolment the import writes.
        connection.execute(
            text(
                "CREATE TRIGGER refuse_enrolments BEFORE INSERT ON enrolment "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        )
    classroom.close()
    for args in (["--dry-run"], []):
        result = CliRunner().invoke(app, ["roster", "import", *args])
        assert result.exit_code == 1, result.output
        assert "changed nothing" in result.output
        for leak in ("Traceback", "INSERT", "parameters", "@"):
            assert leak not in result.output
    assert run("roster", "history", "--json")[0]["status"] == "failed"  # type: ignore[index]
