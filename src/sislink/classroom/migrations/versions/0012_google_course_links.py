"""The bridge to Google Classroom (issue 13): which course each class became (found again by
its domain alias), who sislink added to it, and which courseWork became which coursework.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "google_course_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "class_id",
            sa.Integer(),
            sa.ForeignKey("class.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("course_id", sa.String(length=100), nullable=True),
        sa.Column("course_state", sa.String(length=20), nullable=True),
        sa.Column("alternate_link", sa.String(length=2000), nullable=True),
        sa.Column("owner_email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("roster_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grades_watermark", sa.String(length=40), nullable=True),
        sa.Column("grades_pulled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_grade_job_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("domain", "alias"),
    )
    op.create_table(
        "google_course_member",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "link_id",
            sa.Integer(),
            sa.ForeignKey("google_course_link.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("link_id", "email_key", "role"),
    )
    op.create_table(
        "google_coursework_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "link_id",
            sa.Integer(),
            sa.ForeignKey("google_course_link.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "coursework_id",
            sa.Integer(),
            sa.ForeignKey("coursework.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("course_work_id", sa.String(length=100), nullable=False),
        sa.Column("update_time", sa.String(length=40), nullable=True),
        sa.UniqueConstraint("link_id", "course_work_id"),
    )


def downgrade() -> None:
    op.drop_table("google_coursework_link")
    op.drop_table("google_course_member")
    op.drop_table("google_course_link")
