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

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Index, MetaData, String, Table, delete, exists, select
from sqlalchemy.orm import Session

from sislink.classroom.bulk import _insert_rows

_metadata = MetaData()
_seen = Table(
    "roster_import_seen",
    _metadata,
    Column("entity", String(20), nullable=False),
    Column("sourced_id", String(255), nullable=False),
    # Not unique: a SIS may send one record twice; seen is seen.
    Index("roster_import_seen_by_id", "sourced_id", "entity"),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


class SeenIds:
    """The ids one import has seen, per entity, in `session`'s transaction (see the module)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        connection = session.connection()
        _seen.drop(connection, checkfirst=True)  # SQLite: left by an earlier import's rollback
        _seen.create(connection)

    def add(self, entity: str, sourced_ids: Iterable[str]) -> None:
        rows = [{"entity": entity, "sourced_id": sourced_id} for sourced_id in sourced_ids]
        if rows:
            _insert_rows(self._session.connection(), _seen, rows)

    def discard(self, entity: str, sourced_ids: Sequence[str]) -> None:
        if sourced_ids:
            self._session.connection().execute(
                delete(_seen).where(
                    _seen.c.entity == entity, _seen.c.sourced_id.in_(list(sourced_ids))
                )
            )

    def missing(self, model: Any, entities: Sequence[str]) -> list[str]:
        """SIS ids of active imported rows of `model` seen as none of `entities`."""
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
        statement = select(_seen.c.sourced_id).where(
            _seen.c.sourced_id == sourced_id, _seen.c.entity.in_(entities)
        )
        return self._session.connection().execute(statement.limit(1)).first() is not None

    def drop(self) -> None:
        """Drop the table now (SQLite keeps a temporary table for the connection's life)."""
        _seen.drop(self._session.connection(), checkfirst=True)


class SeenOf:
    """A container view of the ids seen as some entities."""

    def __init__(self, seen: SeenIds, entities: Sequence[str]) -> None:
        self._seen = seen
        self._entities = list(entities)

    def __contains__(self, sourced_id: object) -> bool:
        return self._seen.contains(self._entities, sourced_id)
