"""The SIS ids a roster import has seen, kept in a temporary table of its own transaction.

A full import deactivates what the SIS no longer sends, and a re-numbered person or enrolment
may take over a row only from an id the SIS no longer sends: both need every id the import
saw. Kept in Python that is a set of strings as large as the district (400,000 enrolment ids
for 50,000 students); kept here it costs the database a few MB for the length of the
transaction, and "active rows not seen" is one query. The table is the connection's own
(TEMPORARY: other connections never see it, and on SQLite it is written outside the main
database file); it is dropped when the transaction ends, committed or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Index, MetaData, String, Table, delete, exists, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

_metadata = MetaData()
_seen = Table(
    "roster_import_seen",
    _metadata,
    Column("entity", String(20), nullable=False),
    Column("sourced_id", String(255), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
# Made once every id is in (`_ready`): an index kept up while 400,000 ids go in costs more
# than building it once. Not unique: a SIS may send one record twice; seen is seen.
_by_id = Index("roster_import_seen_by_id", _seen.c.sourced_id, _seen.c.entity)


class SeenIds:
    """The ids one import has seen, per entity, in `session`'s transaction (see the module)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        connection = session.connection()
        _seen.drop(connection, checkfirst=True)  # SQLite: left by an earlier import's rollback
        connection.execute(CreateTable(_seen))  # without its index: see _by_id
        self._indexed = False

    def add(self, entity: str, sourced_ids: Iterable[str]) -> None:
        ids = list(sourced_ids)
        if not ids:
            return
        connection = self._session.connection()
        if connection.dialect.name != "postgresql":
            # The driver's executemany of tuples: Core's would make and read a dict per id.
            connection.exec_driver_sql(_INSERT, [(entity, sourced_id) for sourced_id in ids])
            return
        driver_connection = connection.connection.driver_connection
        assert driver_connection is not None
        statement = "COPY roster_import_seen (entity, sourced_id) FROM STDIN"
        driver_error = connection.dialect.loaded_dbapi.Error
        try:
            with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
                lines = _copy_text(entity, ids)
                if lines is not None:
                    copy.write(lines)
                else:
                    for sourced_id in ids:
                        copy.write_row((entity, sourced_id))
        except driver_error as exc:
            # The driver's own error (COPY bypasses SQLAlchemy): wrapped as SQLAlchemy wraps
            # the others, so that the import says its sentence (a 300-character id, a NUL)
            # instead of psycopg's message, which quotes the id and the COPY's line.
            raise DBAPIError.instance(statement, None, exc, driver_error) from None

    def _ready(self) -> None:
        """Index the ids before the first question (every page is in by then)."""
        if not self._indexed:
            _by_id.create(self._session.connection())
            self._indexed = True

    def discard(self, entity: str, sourced_ids: Sequence[str]) -> None:
        if sourced_ids:  # rare (an enrolment of another role): a scan of the table is fine
            self._session.connection().execute(
                delete(_seen).where(
                    _seen.c.entity == entity, _seen.c.sourced_id.in_(list(sourced_ids))
                )
            )

    def missing(self, model: Any, entities: Sequence[str]) -> list[str]:
        """SIS ids of active imported rows of `model` seen as none of `entities`."""
        self._ready()
        table = model.__table__
        was_seen = exists().where(
            _seen.c.sourced_id == table.c.sis_sourced_id, _seen.c.entity.in_(entities)
        )
        statement = select(table.c.sis_sourced_id).where(
            table.c.sis_sourced_id.is_not(None), table.c.active.is_(True), ~was_seen
        )
        return list(self._session.connection().execute(statement).scalars())

    def sent(self, *entities: str) -> SeenOf:
        """`sourced_id in seen.sent("teachers", "students")`: asked of the table each time
        (used for the few rows whose takeover depends on it)."""
        return SeenOf(self, entities)

    def contains(self, entities: Sequence[str], sourced_id: object) -> bool:
        if not isinstance(sourced_id, str):
            return False
        self._ready()
        statement = select(_seen.c.sourced_id).where(
            _seen.c.sourced_id == sourced_id, _seen.c.entity.in_(entities)
        )
        return self._session.connection().execute(statement.limit(1)).first() is not None

    def drop(self) -> None:
        """Drop the table now (SQLite keeps a temporary table for the connection's life)."""
        _seen.drop(self._session.connection(), checkfirst=True)


_INSERT = "INSERT INTO roster_import_seen (entity, sourced_id) VALUES (?, ?)"
# Characters that COPY's text format escapes (and a NUL, which it cannot carry) but a line's
# end: ids with any of them go row by row through the driver, which escapes them (or fails).
_COPY_SPECIAL = re.compile(r"[\\\t\r\x00]")


def _copy_text(entity: str, sourced_ids: list[str]) -> str | None:
    """The ids as the lines of a text COPY, in one string (one write instead of a row
    each), when none needs escaping; else None."""
    plain = "\n".join([entity, *sourced_ids])
    if _COPY_SPECIAL.search(plain) or plain.count("\n") != len(sourced_ids):
        return None  # a character to escape, or a line's end inside an id
    prefix = entity + "\t"
    return prefix + ("\n" + prefix).join(sourced_ids) + "\n"


class SeenOf:
    """A container view of the ids seen as some entities."""

    def __init__(self, seen: SeenIds, entities: Sequence[str]) -> None:
        self._seen = seen
        self._entities = list(entities)

    def __contains__(self, sourced_id: object) -> bool:
        return self._seen.contains(self._entities, sourced_id)
