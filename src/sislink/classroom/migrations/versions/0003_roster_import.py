"""Roster import (issue 6): job parameters and cancel flag, delta watermarks, the import schedule.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        # Server defaults fill the rows that exist already; new rows get the models' defaults.
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "roster_sync_state",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_full_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sis_connection.id"],
            name=op.f("fk_roster_sync_state_connection_id_sis_connection"),
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_roster_sync_state")),
    )
    op.create_table(
        "roster_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("pause_from", sa.Date(), nullable=True),
        sa.Column("pause_until", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_schedule")),
    )


def downgrade() -> None:
    op.drop_table("roster_schedule")
    op.drop_table("roster_sync_state")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("cancel_requested")
        batch_op.drop_column("params")
