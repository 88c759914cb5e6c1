"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from sislink.classroom.db import Classroom, migrate
from sislink.classroom.models import Base


def test_migrated_database_has_exactly_the_models_schema(classroom: Classroom) -> None:
    with classroom.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrating_twice_changes_nothing(classroom: Classroom) -> None:
    before = sorted(inspect(classroom.engine).get_table_names())
    migrate(classroom.engine)
    assert sorted(inspect(classroom.engine).get_table_names()) == before
    assert "alembic_version" in before
    assert set(Base.metadata.tables) <= set(before)
