"""The inputs digest of a class's last clean mark export (issue 15): an export of a class
whose inputs have not changed since sends nothing and asks the SIS nothing. And an index on
export_record.sis_identity: an export reads its class's ledger by it.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "class_export_state",
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("sis_identity", sa.String(length=300), nullable=False),
        sa.Column("inputs_digest", sa.String(length=64), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["class_id"], ["class.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("class_id"),
    )
    op.create_index(
        "ix_export_record_sis_identity", "export_record", ["sis_identity"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_export_record_sis_identity", table_name="export_record")
    op.drop_table("class_export_state")
