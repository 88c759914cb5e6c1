"""One classroom class per SIS class (issue 7): the schema enforces it, and a class unlinked by
hand remembers it so that roster imports do not link it again.

- `class_link`: the index on (connection_id, sis_class_sourced_id) becomes unique. Links made
  before this revision may break the rule (two classes linked to one SIS class, e.g. by a
  roster import that linked an imported class whose SIS class a teacher had already linked
  by hand), within one connection or across connections to the same SIS (same partner and
  district), whose links move together to the next connection when it is authorised. For
  each such SIS class the earliest link is kept; the later ones are removed,
  their classes are marked as unlinked by hand (so the next import does not link them again),
  and each removal is written to the migration log, naming the class and the SIS class, so
  an administrator can link them to the right SIS class.
- `class.sis_unlinked_at`: when the class was last unlinked by hand (NULL once linked by hand).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    with op.batch_alter_table("class", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sis_unlinked_at", sa.DateTime(timezone=True), nullable=True))
    _unlink_second_links_to_one_sis_class()
    with op.batch_alter_table("class_link", schema=None) as batch_op:
        batch_op.drop_index("ix_class_link_sis_class")
        batch_op.create_index(
            "ix_class_link_sis_class", ["connection_id", "sis_class_sourced_id"], unique=True
        )


def _unlink_second_links_to_one_sis_class() -> None:
    bind = op.get_bind()
    link = sa.table(
        "class_link",
        sa.column("id", sa.Integer()),
        sa.column("class_id", sa.Integer()),
        sa.column("connection_id", sa.Integer()),
        sa.column("sis_class_sourced_id", sa.String()),
    )
    connection = sa.table(
        "sis_connection",
        sa.column("id", sa.Integer()),
        sa.column("partner", sa.String()),
        sa.column("district_sourced_id", sa.String()),
    )
    klass = sa.table(
        "class",
        sa.column("id", sa.Integer()),
        sa.column("sis_unlinked_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(
            link.c.id,
            link.c.class_id,
            link.c.connection_id,
            link.c.sis_class_sourced_id,
            connection.c.partner,
            connection.c.district_sourced_id,
        )
        .join(connection, connection.c.id == link.c.connection_id)
        .order_by(link.c.id)
    ).all()
    kept: dict[tuple[str, str, str], int] = {}
    for row in rows:
        # The SIS a link belongs to: partner and district, else (never authorised) its connection.
        sis = (
            (row.partner, row.district_sourced_id)
            if row.district_sourced_id is not None
            else ("connection", str(row.connection_id))
        )
        key = (*sis, row.sis_class_sourced_id)
        if key not in kept:
            kept[key] = row.class_id
            continue
        log.warning(
            "Class %s was unlinked from SIS class %s: class %s was linked to it first (one "
            "class per SIS class). Link class %s to its own SIS class.",
            row.class_id,
            row.sis_class_sourced_id,
            kept[key],
            row.class_id,
        )
        bind.execute(sa.delete(link).where(link.c.id == row.id))
        bind.execute(
            sa.update(klass)
            .where(klass.c.id == row.class_id)
            .values(sis_unlinked_at=datetime.now(UTC))
        )


def downgrade() -> None:
    with op.batch_alter_table("class_link", schema=None) as batch_op:
        batch_op.drop_index("ix_class_link_sis_class")
        batch_op.create_index(
            "ix_class_link_sis_class", ["connection_id", "sis_class_sourced_id"], unique=False
        )
    with op.batch_alter_table("class", schema=None) as batch_op:
        batch_op.drop_column("sis_unlinked_at")
