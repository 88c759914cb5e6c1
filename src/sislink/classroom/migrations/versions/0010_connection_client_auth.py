"""The SIS connection remembers how its OAuth 2 token request sends the client id and secret
(issue 14 item 10): `sis_connection.client_auth`, "basic" (HTTP Basic) or "post" (in the form
body, RFC 6749 section 2.3.1's client_secret_post); NULL, as on every connection saved before
this revision, means what the SIS's partner profile says.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sis_connection", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_auth", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sis_connection", schema=None) as batch_op:
        batch_op.drop_column("client_auth")
