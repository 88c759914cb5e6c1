"""The SIS ids a roster import has seen, kept in a temporary table of its own transaction.

A full import deactivates what the SIS no longer sends, and a re-numbered person or enrolment
may take over a row only from an id the SIS no longer sends: both need every id the import
saw. Kept in Python that is a set of strings as large as the district (400,000 enrolment ids
for 50,000 students); kept here it costs the database a few MB for the length of the
transaction, and "active rows not seen" is one query. The table is the connection's own
(TEMPORARY: other connections never see it, and on SQLite it is written outside the main
database file); it is dropped when the transaction ends, committed or not.

An entity whose table held no row when the import's transaction began (`own_rows`: the
enrolments of a district's first import) keeps none of its ids here: every row of its table
is then one the import wrote, for an id it was sent. Only the ids whose sending was taken
back (`discard`: an enrolment's last record is of a role sislink does not import) are kept,
until sent again. 400,000 enrolment ids are then neither written nor indexed.
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
# The entity under which the taken-back ids of an `own_rows` entity are kept.
_TAKEN_BACK = "not:{}"


class SeenIds:
    """The ids one import has seen, per entity, in `session`'s transaction (see the module)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        connection = session.connection()
        _seen.drop(connection, checkfirst=True)  # SQLite: left by an earlier import's rollback
        connection.execute(CreateTable(_seen))  # without its index: see _by_id
        self._indexed = False
        # Entities whose table holds only the import's own rows, with that table's model
        # (see `own_rows`); and those of them with an id taken back, kept in the table.
        self._own: dict[str, Any] = {}
        self._taken_back: set[str] = set()

    def own_rows(self, entity: str, model: Any) -> None:
        """`model`'s table held no row when this transaction began: each row it holds later
        is one the import wrote, for an id of `entity` it was sent. Those ids are not kept
        (`add` keeps nothing); `sent` counts every id of the table as sent, and `missing`
        finds none, but those taken back (`discard`) and not sent again since. Call it
        before any id of `entity` is added, with nothing else writing that table's SIS rows
        (the import holds its lock)."""
        self._own[entity] = model

    def add(self, entity: str, sourced_ids: Iterable[str]) -> None:
        ids = list(sourced_ids)
        if not ids:
            return
        if entity in self._own:
            # Sent (again): no longer taken back. Only asked while any id is taken back.
            if entity in self._taken_back:
                self._delete(_TAKEN_BACK.format(entity), ids)
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
        """Index the ids before the first question (every page is in by then), or before
        the first id is taken back from an `own_rows` entity (each page's ids are asked
        about then: few ids are added after it)."""
        if not self._indexed:
            _by_id.create(self._session.connection())
            self._indexed = True

    def discard(self, entity: str, sourced_ids: Sequence[str]) -> None:
        """Not sent after all (not sent again later unless added again)."""
        if not sourced_ids:
            return
        if entity in self._own:
            # Kept as taken back (their rows, if any, are the import's: see `own_rows`).
            self._ready()
            self.add(_TAKEN_BACK.format(entity), sourced_ids)
            self._taken_back.add(entity)
            return
        self._delete(entity, sourced_ids)  # rare (an enrolment of another role)

    def _delete(self, entity: str, sourced_ids: Sequence[str]) -> None:
        # Without the index (see _ready) a scan of the table: fine for the rare discard.
        connection = self._session.connection()
        for start in range(0, len(sourced_ids), _IDS_AT_ONCE):
            chunk = list(sourced_ids[start : start + _IDS_AT_ONCE])
            connection.execute(
                delete(_seen).where(_seen.c.entity == entity, _seen.c.sourced_id.in_(chunk))
            )

    def missing(self, model: Any, entities: Sequence[str]) -> list[str]:
        """SIS ids of active imported rows of `model` seen as none of `entities`, oldest row
        first: a report's examples of them, and the order they are deactivated in, are then
        the same each run (a table's scan order changes as its rows are updated)."""
        table = model.__table__
        if self._owned(entities):
            # Every row is the import's, for an id it was sent: missing are the rows whose
            # id was taken back (as each of the entities), and not sent again.
            if not self._taken_back.issuperset(entities):
                return []
            statement = select(table.c.sis_sourced_id).where(
                table.c.active.is_(True),
                *(
                    table.c.sis_sourced_id.in_(
                        select(_seen.c.sourced_id).where(
                            _seen.c.entity == _TAKEN_BACK.format(entity)
                        )
                    )
                    for entity in entities
                ),
            )
            return list(
                self._session.connection().execute(statement.order_by(table.c.id)).scalars()
            )
        self._ready()
        was_seen = exists().where(
            _seen.c.sourced_id == table.c.sis_sourced_id, _seen.c.entity.in_(entities)
        )
        statement = select(table.c.sis_sourced_id).where(
            table.c.sis_sourced_id.is_not(None), table.c.active.is_(True), ~was_seen
        )
        return list(self._session.connection().execute(statement.order_by(table.c.id)).scalars())

    def sent(self, *entities: str) -> SeenOf:
        """`sourced_id in seen.sent("teachers", "students")`: asked of the table each time
        (used for the few rows whose takeover depends on it)."""
        return SeenOf(self, entities)

    def contains(self, entities: Sequence[str], sourced_id: object) -> bool:
        """Whether `sourced_id` was seen as one of `entities`. For `own_rows` entities asked
        only of the SIS id of a row of their table (all it can tell: see `own_rows`)."""
        if not isinstance(sourced_id, str):
            return False
        if self._owned(entities):
            taken_back = [e for e in entities if e in self._taken_back]
            if len(taken_back) < len(entities):
                return True  # an entity with nothing taken back: its every row was sent
            return not all(
                self._holds(_TAKEN_BACK.format(entity), sourced_id) for entity in taken_back
            )
        return self._holds_any(entities, sourced_id)

    def _holds(self, entity: str, sourced_id: str) -> bool:
        return self._holds_any((entity,), sourced_id)

    def _holds_any(self, entities: Sequence[str], sourced_id: str) -> bool:
        self._ready()
        statement = select(_seen.c.sourced_id).where(
            _seen.c.sourced_id == sourced_id, _seen.c.entity.in_(entities)
        )
        return self._session.connection().execute(statement.limit(1)).first() is not None

    def _owned(self, entities: Sequence[str]) -> bool:
        """Whether `entities` are `own_rows` ones (never some of them: they are not one
        question then, and nothing asks it)."""
        owned = [entity in self._own for entity in entities]
        assert all(owned) or not any(owned), f"{entities}: some own_rows, some not"
        return bool(owned) and all(owned)

    def drop(self) -> None:
        """Drop the table now (SQLite keeps a temporary table for the connection's life)."""
        _seen.drop(self._session.connection(), checkfirst=True)


_IDS_AT_ONCE = 5000  # ids per statement of `_delete` (under SQLite's bound parameter limit)
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
