"""Roster import state (issue 6): schema changes, if any.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the work that needs it; a revision left empty is removed before release."""


def downgrade() -> None:
    """Mirror of upgrade()."""
