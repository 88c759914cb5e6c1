"""Issue 17, end to end: `sislink roster import` against a SIS whose users never end. The
import fails with the consumer's sentence (no traceback) and leaves the classroom as it was.

The hostile SIS serves a real small district's schools, terms, courses and classes (read from
the built-in SIS), so that the import writes those before it reaches the endless users."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from hostile.hostile_sis import (
    ROSTERING,
    HostileSIS,
    Received,
    Reply,
    endless_new_records,
    json_reply,
)
from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Class, Course, Enrolment, Person, School, Term
from sislink.classroom.services import connections
from sislink.cli import app
from sislink.oneroster.consumer import ConnectionSettings, OAuth2Settings, OneRosterClient
from sislink.oneroster.provider.server import running_provider
from sislink.settings import Settings

# endpoint path -> collection key, for what the hostile SIS serves from the real district
REAL = {
    "schools": "orgs",
    "academicSessions": "academicSessions",
    "courses": "courses",
    "classes": "classes",
}


async def _real_district() -> dict[str, list[dict[str, Any]]]:
    with running_provider(students=20) as sis:
        settings = ConnectionSettings(
            version="1.2",
            base_url=sis.base_url,
            auth=OAuth2Settings(
                token_url=sis.token_url, client_id=sis.client_id, client_secret=sis.client_secret
            ),
        )
        async with OneRosterClient(settings) as client:
            return {path: [record async for record in client.iter_records(path)] for path in REAL}


def _district_with_endless_users(real: dict[str, list[dict[str, Any]]]) -> Any:
    endless = endless_new_records(claimed_total=10**9, page=100)

    def shape(request: Received) -> Reply:
        name = request.path.rsplit("/", 1)[-1]
        if request.path == f"{ROSTERING}/users":
            return endless(request)
        if request.path.startswith(ROSTERING) and name in REAL:
            records = real[name] if request.query.get("offset", "0") == "0" else []
            return json_reply({REAL[name]: records}, headers={"X-Total-Count": str(len(records))})
        if request.path.startswith("/ims/oneroster/"):
            return json_reply({name: []}, headers={"X-Total-Count": "0"})
        return Reply(404)

    return shape


@pytest.fixture
def hostile_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileSIS]:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    monkeypatch.delenv("SISLINK_SECRET_KEY", raising=False)
    monkeypatch.setenv("SISLINK_SIS_MAX_RECORDS", "1000")  # an administrator's small ceiling
    real = asyncio.run(_real_district())
    with HostileSIS(_district_with_endless_users(real)) as sis:
        classroom = open_classroom(Settings.from_env())
        with classroom.transaction() as session:
            saved = connections.save_connection(
                session,
                Actor.system(),
                classroom.secret_box,
                partner="generic-1.2",
                version="1.2",
                host_url=sis.origin,
                access_key="hostile-client",
                secret_code="hostile-secret-code",
                token_url=sis.token_url,
            )
            connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id="d")
        classroom.close()
        yield sis


def _counts() -> dict[str, int]:
    classroom = open_classroom(Settings.from_env())
    try:
        with classroom.session() as session:
            return {
                model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (School, Term, Course, Class, Person, Enrolment)
            }
    finally:
        classroom.close()


def test_a_roster_import_from_a_sis_whose_users_never_end_fails_with_one_sentence(
    hostile_home: HostileSIS,
) -> None:
    result = CliRunner().invoke(app, ["roster", "import", "--json"])
    assert result.exit_code == 1, result.output
    output = result.output
    assert "sislink stopped reading the SIS's users collection" in output
    assert "past the ceiling of 1,000 records" in output
    assert "SISLINK_SIS_MAX_RECORDS" in output
    assert "Traceback" not in output
    users_pages = [r for r in hostile_home.calls() if r.path == f"{ROSTERING}/users"]
    assert len(users_pages) <= 14  # the ceiling's 10 pages, the progress page, a prefetch


def test_a_roster_import_stopped_by_a_runaway_walk_leaves_the_classroom_unchanged(
    hostile_home: HostileSIS,
) -> None:
    """All or nothing (issue 17 item 5): the schools, terms, courses and classes read before
    the endless users are not kept either."""
    before = _counts()
    result = CliRunner().invoke(app, ["roster", "import", "--json"])
    assert result.exit_code == 1, result.output
    assert _counts() == before, json.dumps(_counts())
