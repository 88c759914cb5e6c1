"""Opening the classroom's database: engine setup for SQLite and PostgreSQL, migrations, transactions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from sislink.classroom.errors import InvalidInput
from sislink.classroom.secrets import SecretBox, load_secret_box
from sislink.settings import Settings, make_private_dir

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_BEGIN_OPTION = "sislink_sqlite_begin"
WRITE_OPTIONS = {SQLITE_BEGIN_OPTION: "IMMEDIATE"}
# Any constant shared by every sislink process: migrations on PostgreSQL run one at a time.
MIGRATION_LOCK_ID = 0x5151_0001


def normalise_database_url(url: str | URL) -> URL:
    """The URL SQLAlchemy should use: `postgresql://` means psycopg 3 here."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(
            f"SISLINK_DATABASE_URL uses {parsed.get_backend_name()!r}; sislink stores its data "
            "in SQLite (sqlite:///path/to/file.db) or PostgreSQL (postgresql://user@host/db)."
        )
    return parsed


def create_classroom_engine(url: str | URL, **engine_options: Any) -> Engine:
    """An engine for the classroom: SQLite in WAL mode with foreign keys on, or PostgreSQL."""
    parsed = normalise_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            make_private_sqlite_file(Path(parsed.database))
        engine = create_engine(parsed, **engine_options)
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **engine_options)


def make_private_sqlite_file(path: Path) -> None:
    """The SQLite file readable and writable by its owner only (0600), made so before SQLite
    first opens it: SQLite gives the -wal, -shm and -journal files it creates the database
    file's mode. A folder made for it is 0700; an existing one is left alone (it may be
    shared, /var/lib/...). Files already there (an older installation) are tightened."""
    if not path.parent.exists():
        make_private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for found in (path, *(path.with_name(path.name + end) for end in SQLITE_SIDE_FILES)):
        try:
            if found.exists() and found.stat().st_mode & 0o777 != 0o600:
                found.chmod(0o600)
        except PermissionError:
            pass  # not ours to change: the owner chose


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so that
        # SAVEPOINTs work (the documented pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # In WAL mode NORMAL is durable across application crashes and much faster.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Write transactions BEGIN IMMEDIATE: they take the write lock up front and wait for
        # it (busy_timeout), instead of failing when a read turns into a write after another
        # writer committed (SQLITE_BUSY_SNAPSHOT, which no timeout retries).
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (the latest by default)."""
    config = alembic_config()
    with engine.connect().execution_options(**WRITE_OPTIONS) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            # Several workers may start at once; the others wait, then find nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


class Classroom:
    """An open classroom database: transactions for services, and the box for SIS secrets."""

    def __init__(self, engine: Engine, secret_box: SecretBox) -> None:
        self.engine = engine
        self.secret_box = secret_box
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Classroom(url={self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed if the block succeeds and rolled back otherwise.

        On SQLite it holds the write lock from the start, so concurrent writers queue up
        instead of failing half-way.
        """
        with self._sessions() as session, session.begin():
            session.connection(execution_options=WRITE_OPTIONS)
            yield session

    def session(self) -> Session:
        """A plain session; the caller commits (for reads and long jobs that commit per batch)."""
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()


def open_classroom(
    settings_or_url: Settings | str | URL,
    *,
    secret_box: SecretBox | None = None,
    migrate_schema: bool = True,
    **engine_options: Any,
) -> Classroom:
    """Open (and migrate) the classroom database.

    Given Settings, the secret key comes from them (SISLINK_SECRET_KEY or the key file);
    given a bare URL, pass `secret_box` or a throwaway key is made (tests, sandboxes).
    """
    if isinstance(settings_or_url, Settings):
        settings_or_url.make_private_home()
        url: str | URL = settings_or_url.database_url
        box = secret_box or load_secret_box(settings_or_url)
    else:
        url = settings_or_url
        box = secret_box or SecretBox.generate()
    engine = create_classroom_engine(url, **engine_options)
    if migrate_schema:
        migrate(engine)
    return Classroom(engine, box)
