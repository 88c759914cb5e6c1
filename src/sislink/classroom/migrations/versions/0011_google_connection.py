"""The Google Classroom connection (issue 12 item 3): one row per connection over time, at most
one current; the service account key is stored sealed (Fernet), never in clear.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "google_connection",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("admin_email", sa.String(length=320), nullable=False),
        sa.Column("client_email", sa.String(length=320), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("private_key_id", sa.String(length=100), nullable=False),
        sa.Column("api_endpoint", sa.String(length=2000), nullable=False),
        sa.Column("key_sealed", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("current_slot", sa.Integer(), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authorised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_check", sa.Text(), nullable=True),
        sa.Column("connected_by_id", sa.Integer(), sa.ForeignKey("person.id"), nullable=True),
        sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("google_connection")
