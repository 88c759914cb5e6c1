"""A class's extra-credit limit, and what the SIS did not serve of its linked class (issue 14).

- `class_export_settings.extra_credit_limit`: the highest mark a coursework of the class takes,
  as a multiple of its points (NULL: the default, twice the points). Above it a mark is refused.
- `class_export_settings.sis_not_served`: sentences naming the calls for the linked SIS class
  that the SIS answered 404 although the class exists (a term's grading periods, the class's
  categories), kept with the other SIS facts so that pre-flight can say why they are missing.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("class_export_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_credit_limit", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("sis_not_served", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("class_export_settings", schema=None) as batch_op:
        batch_op.drop_column("sis_not_served")
        batch_op.drop_column("extra_credit_limit")
