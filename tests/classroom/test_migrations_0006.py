"""Migration 0006 makes "one class per SIS class" a rule of the schema; links made before it
that break the rule are resolved, never left to export two classes into one SIS class."""

from __future__ import annotations

from sqlalchemy import create_engine, insert, select

from sislink.classroom.db import migrate
from sislink.classroom.models import Base


def test_a_second_class_on_one_sis_class_is_unlinked_and_remembered_as_unlinked(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        migrate(engine, "0005")
        tables = Base.metadata.tables
        with engine.begin() as connection:
            connection.execute(
                insert(tables["sis_connection"]).values(
                    id=1,
                    partner="generic-1.2",
                    version="1.2",
                    host_url="https://sis.example",
                    access_key="key",
                    secret_code_sealed="",
                    status="authorised",
                )
            )
            for class_id, title in ((1, "Linked by hand"), (2, "Imported"), (3, "Other")):
                connection.execute(insert(tables["class"]).values(id=class_id, title=title))
            for link_id, class_id, sis_class in ((1, 1, "cls-1"), (2, 2, "cls-1"), (3, 3, "cls-3")):
                connection.execute(
                    insert(tables["class_link"]).values(
                        id=link_id,
                        class_id=class_id,
                        connection_id=1,
                        sis_class_sourced_id=sis_class,
                    )
                )
        migrate(engine)
        with engine.connect() as connection:
            links = connection.execute(
                select(
                    tables["class_link"].c.class_id, tables["class_link"].c.sis_class_sourced_id
                ).order_by(tables["class_link"].c.class_id)
            ).all()
            unlinked = (
                connection.execute(
                    select(tables["class"].c.id).where(
                        tables["class"].c.sis_unlinked_at.is_not(None)
                    )
                )
                .scalars()
                .all()
            )
        assert [tuple(row) for row in links] == [(1, "cls-1"), (3, "cls-3")]
        assert unlinked == [2]
    finally:
        engine.dispose()
