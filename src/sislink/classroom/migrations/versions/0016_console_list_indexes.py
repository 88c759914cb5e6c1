"""Indexes for the administrator's People and Classes pages (issue 16): people by (name, id) and
classes by (title, id), the order and keyset those pages read a page at a time, so that the
first and the hundredth page of a 50,000-student district are an index range, not a sort.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_person_name_id", "person", ["name", "id"], unique=False)
    op.create_index("ix_class_title_id", "class", ["title", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_class_title_id", table_name="class")
    op.drop_index("ix_person_name_id", table_name="person")
