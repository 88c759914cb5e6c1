"""The SIS connection lifecycle (issue 5): schema changes, if any.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the work that needs it; a revision left empty is removed before release."""


def downgrade() -> None:
    """Mirror of upgrade()."""
