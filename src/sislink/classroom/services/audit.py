"""The audit trail: who did what, when, with details that never include secrets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.models import AuditEvent
from sislink.classroom.services.access import Actor

REDACTED = "<redacted>"
# Any detail whose key contains one of these words is replaced before it is stored.
SECRET_WORDS = ("secret", "password", "token", "credential", "authorization", "api_key")


def redact(details: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `details` with every secret-looking value replaced, at any depth."""
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if any(word in key.lower() for word in SECRET_WORDS):
            clean[key] = REDACTED
        elif isinstance(value, Mapping):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


def record_event(
    session: Session,
    actor: Actor,
    action: str,
    subject: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session (written with the caller's transaction)."""
    event = AuditEvent(
        actor_id=actor.person_id, action=action, subject=subject, details=redact(details or {})
    )
    session.add(event)
    return event


def recent_events(
    session: Session, *, action: str | None = None, limit: int = 100
) -> Sequence[AuditEvent]:
    statement = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    return session.scalars(statement.limit(limit)).all()
