"""Opening the classroom: the right engine settings, migrations on open, the identity namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from sislink.classroom.bulk import SchoolRow, upsert_schools
from sislink.classroom.db import Classroom, normalise_database_url, open_classroom
from sislink.classroom.errors import InvalidInput
from sislink.classroom.services.organisation import identity_namespace
from sislink.settings import Settings


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path: Path) -> None:
    classroom = open_classroom(Settings.for_home(tmp_path))
    with classroom.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() > 0
    classroom.close()


def test_opening_a_new_home_makes_the_directory_the_database_and_the_key(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    classroom = open_classroom(Settings.for_home(home))
    classroom.close()
    assert (home / "sislink.db").exists()
    assert (home / "secret.key").exists()


def test_postgresql_urls_use_psycopg_3() -> None:
    url = normalise_database_url("postgresql://postgres@127.0.0.1:5432/test")
    assert url.drivername == "postgresql+psycopg"
    assert normalise_database_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_an_unsupported_database_is_refused_with_what_to_use() -> None:
    with pytest.raises(InvalidInput, match=r"SQLite .* or PostgreSQL"):
        normalise_database_url("mysql://root@localhost/sislink")


def test_the_identity_namespace_is_made_once_and_survives_reopening(
    classroom: Classroom, database_url: str
) -> None:
    with classroom.transaction() as session:
        first = identity_namespace(session)
    reopened = open_classroom(database_url)
    with reopened.transaction() as session:
        assert identity_namespace(session) == first
    reopened.close()


def test_a_failed_transaction_writes_nothing(classroom: Classroom) -> None:
    with pytest.raises(RuntimeError), classroom.transaction() as session:
        upsert_schools(session, [SchoolRow("s", "School")])
        raise RuntimeError("the import failed half-way")
    with classroom.transaction() as session:
        assert upsert_schools(session, [SchoolRow("s", "School")]).created == 1
