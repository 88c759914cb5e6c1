"""REST API tokens: made for a person, shown once, stored only as a SHA-256 hash.

Tokens are 256 random bits, so a fast hash is enough (no password stretching needed): no
one can guess a token from its hash, and a look-up by hash is one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import InvalidInput
from sislink.classroom.models import ApiToken, Person, utc_now
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.audit import record_event

TOKEN_PREFIX = "slk_"  # noqa: S105 (a prefix that makes leaked tokens easy to find, not a secret)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(
    session: Session, actor: Actor, person: Person, *, label: str = ""
) -> tuple[ApiToken, str]:
    """A new token for `person` (administrators only): the stored row and the token itself,
    which the caller shows once; it cannot be read back later."""
    require_admin(actor, "create API tokens")
    if not person.active:
        raise InvalidInput(f"{person.email} is not active, so they cannot have an API token.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(person_id=person.id, token_hash=token_hash(token), label=label.strip()[:200])
    session.add(row)
    session.flush()
    record_event(
        session,
        actor,
        "api_token.created",
        f"person:{person.id}",
        {"row": row.id, "label": row.label},
    )
    return row, token


def person_for_token(session: Session, token: str) -> Person | None:
    """The active person a presented token belongs to, None if it is unknown or revoked."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    person = session.get(Person, row.person_id)
    if person is None or not person.active:
        return None
    row.last_used_at = utc_now()
    return person


def revoke_api_tokens(session: Session, actor: Actor, person: Person) -> int:
    """Revoke every token of `person`; returns how many were live."""
    require_admin(actor, "revoke API tokens")
    live = session.scalars(
        select(ApiToken).where(ApiToken.person_id == person.id, ApiToken.revoked_at.is_(None))
    ).all()
    for row in live:
        row.revoked_at = utc_now()
    record_event(session, actor, "api_token.revoked", f"person:{person.id}", {"count": len(live)})
    return len(live)
