"""Mark export (issue 7): per-class export settings (with what the SIS said of the linked class)
and the per-export report history.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "class_export_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("missing_as", sa.String(length=20), nullable=False),
        sa.Column("export_drafts", sa.Boolean(), nullable=False),
        sa.Column("sis_school_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("sis_term_sourced_ids", sa.JSON(), nullable=False),
        sa.Column("sis_grading_periods", sa.JSON(), nullable=False),
        sa.Column("sis_categories", sa.JSON(), nullable=False),
        sa.Column("sis_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["class.id"],
            name=op.f("fk_class_export_settings_class_id_class"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_export_settings")),
        sa.UniqueConstraint("class_id", name=op.f("uq_class_export_settings_class_id")),
    )
    op.create_table(
        "mark_export_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("writes", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["class.id"],
            name=op.f("fk_mark_export_report_class_id_class"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["job.id"],
            name=op.f("fk_mark_export_report_job_id_job"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["person.id"],
            name=op.f("fk_mark_export_report_requested_by_id_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mark_export_report")),
    )
    with op.batch_alter_table("mark_export_report", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mark_export_report_class_id"), ["class_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mark_export_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mark_export_report_class_id"))
    op.drop_table("mark_export_report")
    op.drop_table("class_export_settings")
