"""Sign in with the school's accounts (issue 18): OpenID Connect providers, sign-ins sent to a
provider and not back yet, whether password sign-in is offered, and which provider a console
session came from.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=2000), nullable=False),
        sa.Column("client_id", sa.String(length=500), nullable=False),
        sa.Column("client_secret_sealed", sa.Text(), nullable=True),
        sa.Column("client_secret_env", sa.String(length=200), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("admin_group", sa.String(length=255), nullable=True),
        sa.Column("from_environment", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_provider")),
        sa.UniqueConstraint("issuer", name=op.f("uq_oidc_provider_issuer")),
    )
    op.create_table(
        "oidc_pending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier_sealed", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("next_path", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["oidc_provider.id"],
            name=op.f("fk_oidc_pending_provider_id_oidc_provider"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_pending")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oidc_pending_state_hash")),
    )
    with op.batch_alter_table("oidc_pending", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_pending_provider_id"), ["provider_id"])
        batch_op.create_index(batch_op.f("ix_oidc_pending_expires_at"), ["expires_at"])
    op.create_table(
        "sign_in_setting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("password_enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_setting")),
    )
    with op.batch_alter_table("console_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_console_session_provider_id"), ["provider_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_console_session_provider_id_oidc_provider"),
            "oidc_provider",
            ["provider_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("console_session", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_console_session_provider_id_oidc_provider"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_console_session_provider_id"))
        batch_op.drop_column("provider_id")
    op.drop_table("sign_in_setting")
    with op.batch_alter_table("oidc_pending", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_pending_expires_at"))
        batch_op.drop_index(batch_op.f("ix_oidc_pending_provider_id"))
    op.drop_table("oidc_pending")
    op.drop_table("oidc_provider")
