"""The home folder and the SQLite database are their owner's alone: they hold password hashes,
token hashes and the sealed SIS secrets (and the key that opens them)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from sislink.classroom import open_classroom
from sislink.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: whatever the files get, sislink chose it (no help from a careful umask)."""
    earlier = os.umask(0)
    try:
        yield
    finally:
        os.umask(earlier)


def test_a_new_home_and_its_database_files_are_readable_only_by_their_owner(
    tmp_path: Path, permissive_umask: None
) -> None:
    home = tmp_path / "home" / ".sislink"
    classroom = open_classroom(Settings.for_home(home))
    try:
        with classroom.transaction() as session:
            session.execute(text("CREATE TABLE scratch (x INTEGER)"))
            session.execute(text("INSERT INTO scratch VALUES (1)"))
        database_files = sorted(home.glob("sislink.db*"))
        names = {found.name for found in database_files}
        assert {"sislink.db", "sislink.db-wal", "sislink.db-shm"} <= names
        assert mode(home) == 0o700
        assert {found.name: mode(found) for found in database_files} == dict.fromkeys(names, 0o600)
        assert mode(home / "secret.key") == 0o600
    finally:
        classroom.close()


def test_an_older_installation_readable_by_others_is_tightened_when_opened(
    tmp_path: Path,
) -> None:
    home = tmp_path / ".sislink"
    open_classroom(Settings.for_home(home)).close()
    home.chmod(0o755)
    (home / "sislink.db").chmod(0o644)
    (home / "sislink.db-journal").write_bytes(b"")
    (home / "sislink.db-journal").chmod(0o644)
    open_classroom(Settings.for_home(home)).close()
    assert mode(home) == 0o700
    assert mode(home / "sislink.db") == 0o600
    assert mode(home / "sislink.db-journal") == 0o600


def test_a_database_in_a_folder_sislink_did_not_make_leaves_the_folder_alone(
    tmp_path: Path, permissive_umask: None
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    classroom = open_classroom(f"sqlite:///{shared / 'classroom.db'}")
    classroom.close()
    assert mode(shared) == 0o755
    assert mode(shared / "classroom.db") == 0o600
