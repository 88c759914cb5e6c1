"""Jobs that die do not lock people out (issue 17 items 7 and 8).

- `job.lease_holder`, `job.heartbeat_at`, `job.lease_expires_at`: the process that holds a
  queued or running job (host, pid, process start, machine) and its lease, renewed by a
  heartbeat in the database's time. A job whose holder is gone is failed by the next run that
  needs its lock, and the lock is taken over (classroom/services/jobs.py).
- `job_lock`: every lock an unfinished job holds, one row per key (the key is the primary key,
  so two jobs never hold one lock): the job's own lock, and the class an export of every class
  is working on, so that `--all` and `--class` never write one class at once.

Existing unfinished jobs keep their locks (copied from `job.active_lock`). Those queued or
running have no holder: they were left by a sislink from before this revision, which had
stopped to be upgraded, so the next run that needs their lock fails them and takes it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_holder", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "job_lock",
        sa.Column("lock_key", sa.String(length=200), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_job_lock_job_id_job"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lock_key", name=op.f("pk_job_lock")),
    )
    with op.batch_alter_table("job_lock", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_lock_job_id"), ["job_id"], unique=False)
    op.execute(
        "INSERT INTO job_lock (lock_key, job_id, taken_at) "
        "SELECT active_lock, id, created_at FROM job WHERE active_lock IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("job_lock", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_lock_job_id"))
    op.drop_table("job_lock")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("lease_holder")
