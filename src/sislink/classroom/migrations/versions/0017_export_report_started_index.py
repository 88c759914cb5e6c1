"""An index for the Activity page's charts (issue 16): mark export reports by when they started,
with what the charts sum without reading the report (dry run, outcome, writes), so that 30 days
of a district's exports are read as 30 index ranges, one a day, and only the exports that can
have skipped or failed items are looked up for their summary.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_mark_export_report_started",
        "mark_export_report",
        ["started_at", "dry_run", "outcome", "writes"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_mark_export_report_started", table_name="mark_export_report")
