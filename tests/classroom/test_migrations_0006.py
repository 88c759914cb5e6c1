"""Migration 0006 makes "one class per SIS class" a rule of the schema; links made before it
that break the rule are resolved, never left to export two classes into one SIS class."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, insert, select

from sislink.classroom.db import migrate
from sislink.classroom.models import Base


def _connection(connection_id: int, district: str | None, **more: Any) -> dict[str, Any]:
    return {
        "id": connection_id,
        "partner": "generic-1.2",
        "version": "1.2",
        "host_url": "https://sis.example",
        "access_key": "key",
        "secret_code_sealed": "",
        "status": "disconnected",
        "district_sourced_id": district,
        **more,
    }


def test_a_second_class_on_one_sis_class_is_unlinked_and_remembered_as_unlinked(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        migrate(engine, "0005")
        tables = Base.metadata.tables
        connections = [
            _connection(1, "district-1"),
            _connection(2, "district-1"),  # the same SIS again: its links join the others'
            _connection(3, "district-2"),  # another SIS: its cls-1 is another class
            _connection(4, "district-1", status="authorised", current_slot=1),
        ]
        classes = ["Linked by hand", "Imported", "Same SIS later", "Other SIS", "Fine"]
        links = [  # (class, connection, SIS class)
            (1, 1, "cls-1"),
            (2, 1, "cls-1"),
            (3, 2, "cls-1"),
            (4, 3, "cls-1"),
            (5, 4, "cls-5"),
        ]
        with engine.begin() as connection:
            connection.execute(insert(tables["sis_connection"]), connections)
            connection.execute(
                insert(tables["class"]),
                [{"id": i, "title": title} for i, title in enumerate(classes, start=1)],
            )
            connection.execute(
                insert(tables["class_link"]),
                [
                    {"id": i, "class_id": c, "connection_id": k, "sis_class_sourced_id": s}
                    for i, (c, k, s) in enumerate(links, start=1)
                ],
            )
        migrate(engine)
        link, klass = tables["class_link"], tables["class"]
        with engine.connect() as connection:
            kept = connection.execute(
                select(link.c.class_id, link.c.connection_id, link.c.sis_class_sourced_id).order_by(
                    link.c.class_id
                )
            ).all()
            unlinked = (
                connection.execute(
                    select(klass.c.id)
                    .where(klass.c.sis_unlinked_at.is_not(None))
                    .order_by(klass.c.id)
                )
                .scalars()
                .all()
            )
        assert [tuple(row) for row in kept] == [(1, 1, "cls-1"), (4, 3, "cls-1"), (5, 4, "cls-5")]
        assert unlinked == [2, 3]
    finally:
        engine.dispose()
