"""SIS secret codes are encrypted at rest and never shown: not in the database, reprs or logs."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import String, Text, inspect, select

from sislink.classroom.db import Classroom, open_classroom
from sislink.classroom.errors import InvalidInput, SecretUnreadable
from sislink.classroom.models import AuditEvent, SisConnection
from sislink.classroom.secrets import SecretBox, load_secret_box
from sislink.classroom.services import connections
from sislink.classroom.services.access import Actor
from sislink.settings import Settings

SECRET = "s3cr3t-Code-Only-The-SIS-Knows-9f1c"


def save(classroom: Classroom) -> int:
    with classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            Actor.system(),
            classroom.secret_box,
            partner="infinite_campus",
            version="1.2",
            host_url="https://sis.district.example/campus",
            access_key="district-key",
            secret_code=SECRET,
        )
        return saved.id


def test_sealed_secret_opens_with_the_same_key_only() -> None:
    box = SecretBox.generate()
    token = box.seal(SECRET)
    assert SECRET not in token
    assert box.open(token) == SECRET
    with pytest.raises(SecretUnreadable, match="cannot be decrypted with this installation's key"):
        SecretBox.generate().open(token)


def test_an_invalid_key_is_refused_with_what_to_do() -> None:
    with pytest.raises(InvalidInput, match=r"not a valid Fernet key.*SISLINK_SECRET_KEY"):
        SecretBox("not-a-key")


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path / "home")
    first = load_secret_box(settings)
    key_file = settings.secret_key_file
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    token = first.seal(SECRET)
    assert load_secret_box(settings).open(token) == SECRET  # the same key, read back


def test_sislink_secret_key_wins_over_the_key_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings.from_env({"SISLINK_HOME": str(tmp_path), "SISLINK_SECRET_KEY": key})
    box = load_secret_box(settings)
    assert SecretBox(key).open(box.seal(SECRET)) == SECRET
    assert not settings.secret_key_file.exists()
    assert key not in repr(settings) and key not in repr(box)


def test_an_empty_key_file_is_reported_not_replaced(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path)
    settings.secret_key_file.write_text("")
    with pytest.raises(SecretUnreadable, match="is empty"):
        load_secret_box(settings)


def test_the_raw_sqlite_file_does_not_contain_the_secret(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path)
    classroom = open_classroom(settings)
    connection_id = save(classroom)
    with classroom.transaction() as session:
        stored = session.get(SisConnection, connection_id)
        assert stored is not None
        assert connections.secret_code(classroom.secret_box, stored) == SECRET
    classroom.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("sislink.db*"))
    assert b"district-key" in raw  # the file is readable: the check below means something
    assert SECRET.encode() not in raw


def test_no_text_column_anywhere_holds_the_secret(classroom: Classroom) -> None:
    save(classroom)
    found = []
    with classroom.transaction() as session:
        for table_name in inspect(classroom.engine).get_table_names():
            table = SisConnection.metadata.tables.get(table_name)
            if table is None:
                continue
            text_columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in session.execute(select(*text_columns)) if text_columns else []:
                found.extend(value for value in row if isinstance(value, str) and SECRET in value)
        events = session.scalars(select(AuditEvent)).all()
        assert events, "saving a connection is audited"
        assert all(SECRET not in str(event.details) for event in events)
    assert found == []


def test_secret_is_not_in_reprs_logs_or_errors(
    classroom: Classroom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connection_id = save(classroom)
    with classroom.transaction() as session:
        stored = session.get(SisConnection, connection_id)
        assert stored is not None
        assert SECRET not in repr(stored)
        assert "<hidden>" in repr(stored)
        try:
            SecretBox.generate().open(stored.secret_code_sealed)
        except SecretUnreadable as error:
            assert SECRET not in str(error)
            assert error.__cause__ is None
    assert SECRET not in caplog.text
