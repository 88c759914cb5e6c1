"""The installation's organisation and its identity namespace (made once, never changed)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.models import Organisation
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.audit import record_event


def organisation(session: Session) -> Organisation:
    """The organisation, made on first use with a new identity namespace."""
    found = session.scalars(select(Organisation).order_by(Organisation.id)).first()
    if found is None:
        found = Organisation(name="", identity_namespace=str(uuid.uuid4()), settings={})
        session.add(found)
        session.flush()
    return found


def identity_namespace(session: Session) -> uuid.UUID:
    """The UUID every SIS id that mark export derives starts from."""
    return organisation(session).namespace_uuid


def update_organisation(
    session: Session,
    actor: Actor,
    *,
    name: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Organisation:
    """Rename the organisation or replace its settings; the namespace never changes."""
    require_admin(actor, "change the organisation's settings")
    found = organisation(session)
    if name is not None:
        found.name = name.strip()
    if settings is not None:
        found.settings = dict(settings)
    record_event(session, actor, "organisation.updated", f"organisation:{found.id}")
    return found
