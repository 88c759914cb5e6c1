"""The export ledger: what mark export last sent for each classroom object to each SIS."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.models import ExportKind, ExportRecord, utc_now


def export_record(
    session: Session, kind: ExportKind, object_id: int, sis_identity: str
) -> ExportRecord | None:
    return session.scalars(
        select(ExportRecord).where(
            ExportRecord.kind == kind,
            ExportRecord.object_id == object_id,
            ExportRecord.sis_identity == sis_identity,
        )
    ).first()


def record_sent(
    session: Session,
    kind: ExportKind,
    object_id: int,
    sis_identity: str,
    *,
    sis_sourced_id: str,
    content_hash: str | None,
    status: str,
    message: str = "",
) -> ExportRecord:
    """Remember the outcome of sending one object (content_hash None if it did not land)."""
    record = export_record(session, kind, object_id, sis_identity)
    if record is None:
        record = ExportRecord(kind=str(kind), object_id=object_id, sis_identity=sis_identity)
        session.add(record)
    record.sis_sourced_id = sis_sourced_id
    record.content_hash = content_hash
    record.last_status = status
    record.last_message = message
    record.updated_at = utc_now()
    session.flush()
    return record


def forget(session: Session, kind: ExportKind, object_id: int, sis_identity: str) -> bool:
    """Drop the record (after the object was deleted in the SIS). True if there was one."""
    record = export_record(session, kind, object_id, sis_identity)
    if record is None:
        return False
    session.delete(record)
    session.flush()
    return True


def records_for(
    session: Session, sis_identity: str, kind: ExportKind | None = None
) -> Sequence[ExportRecord]:
    statement = select(ExportRecord).where(ExportRecord.sis_identity == sis_identity)
    if kind is not None:
        statement = statement.where(ExportRecord.kind == kind)
    return session.scalars(statement.order_by(ExportRecord.kind, ExportRecord.object_id)).all()
