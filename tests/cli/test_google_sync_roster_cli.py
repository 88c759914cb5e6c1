"""`sislink google sync roster`: dry run, sync, exit 3 when something needs attention or the
shrink guard holds the removals, discard and approve by job number; against the built-in SIS and
the local Classroom."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from sislink.classroom import open_classroom
from sislink.classroom.models import Class, Enrolment
from sislink.cli import app
from sislink.settings import Settings
from sync.google_roster_world import (
    aliases,
    classroom_courses,
    classroom_matches_the_sis,
    district,
)

runner = CliRunner()


def test_sync_roster_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    classroom = open_classroom(Settings.from_env())
    try:
        with district(classroom) as world:
            planned = runner.invoke(app, ["google", "sync", "roster", "--dry-run", "--json"])
            assert planned.exit_code == 0, planned.output
            assert json.loads(planned.output)["status"] == "dry_run"
            assert classroom_courses(world.google) == {}

            done = runner.invoke(app, ["google", "sync", "roster"])
            assert done.exit_code == 0, done.output
            assert "Roster to Google Classroom (applied" in done.output
            classroom_matches_the_sis(world)

            klass = world.classes()[0]
            with classroom.transaction() as session:
                session.execute(
                    update(Class).where(Class.id == klass.id).values(primary_teacher_id=None)
                )
                session.execute(
                    update(Enrolment)
                    .where(Enrolment.class_id == klass.id, Enrolment.role == "teacher")
                    .values(active=False)
                )
                leaving = session.scalars(
                    select(Enrolment.id)
                    .where(Enrolment.role == "student", Enrolment.class_id != klass.id)
                    .order_by(Enrolment.id)
                ).all()[:60]
                session.execute(
                    update(Enrolment).where(Enrolment.id.in_(leaving)).values(active=False)
                )
            held = runner.invoke(app, ["google", "sync", "roster", "--json"])
            assert held.exit_code == 3, held.output
            report = json.loads(held.output)
            assert report["status"] == "on_hold" and report["counts"]["students"]["held"] == 60
            assert any("has no primary teacher" in w for w in report["warnings"])

            discarded = runner.invoke(
                app, ["google", "sync", "roster", "--discard", str(report["job_id"])]
            )
            assert discarded.exit_code == 0, discarded.output
            again = json.loads(runner.invoke(app, ["google", "sync", "roster", "--json"]).output)
            approved = runner.invoke(
                app, ["google", "sync", "roster", "--approve", str(again["job_id"]), "--json"]
            )
            assert approved.exit_code == 3, approved.output  # the class without a teacher
            assert json.loads(approved.output)["counts"]["students"]["removed"] == 60
            # Every class with a teacher as the SIS says; the course of the class that lost its
            # teacher is left as it was (sislink never deletes a course).
            courses = classroom_courses(world.google)
            wanted = {aliases(world)[sid]: r for sid, r in world.roster().items()}
            assert {a: courses[a] for a in wanted} == wanted
            assert len(courses) == len(wanted) + 1
    finally:
        classroom.close()
