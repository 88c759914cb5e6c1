"""REST API tokens: made for a person, shown once, stored only as a SHA-256 hash; listed (with
when each was last used) and revoked one by one.

Tokens are 256 random bits, so a fast hash is enough (no password stretching needed): no
one can guess a token from its hash, and a look-up by hash is one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import InvalidInput, NotFound
from sislink.classroom.models import ApiToken, Person, utc_now
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.accounts import may_sign_in
from sislink.classroom.services.audit import record_event

TOKEN_PREFIX = "slk_"  # noqa: S105 (a prefix that makes leaked tokens easy to find, not a secret)
# last_used_at is written at most this often per token: to the minute is what people read, and
# a write on every API call would queue every request behind SQLite's write lock.
LAST_USED_PRECISION = timedelta(minutes=1)


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
    if not may_sign_in(person):
        # The REST API lets in only administrators and teachers, as the console does: a
        # token for anyone else would be refused on every call.
        raise InvalidInput(
            f"{person.email or person.name} is not an administrator or teacher, so they cannot "
            "have an API token (the REST API is for administrators and teachers)."
        )
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
    now = utc_now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        row.last_used_at = now
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


@dataclass(frozen=True)
class TokenInfo:
    """One token as lists show it: never the token itself, which nobody can read back."""

    id: int
    email: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "email": self.email,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "live": self.live,
        }


def list_api_tokens(
    session: Session, actor: Actor, *, person_id: int | None = None, include_revoked: bool = False
) -> list[TokenInfo]:
    """Tokens newest first: an administrator sees everyone's (or one person's), anyone else
    only their own."""
    if not actor.is_admin:
        if actor.person_id is None:
            return []
        person_id = actor.person_id
    query = select(ApiToken, Person.email).join(Person, Person.id == ApiToken.person_id)
    if person_id is not None:
        query = query.where(ApiToken.person_id == person_id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    rows = session.execute(query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()
    return [
        TokenInfo(row.id, email or "", row.label, row.created_at, row.last_used_at, row.revoked_at)
        for row, email in rows
    ]


def revoke_api_token(session: Session, actor: Actor, token_id: int) -> TokenInfo:
    """Revoke one token (an administrator: any; anyone else: their own). It stops working at
    once; revoking it again changes nothing. Someone else's token is answered as not found."""
    row = session.get(ApiToken, token_id)
    if row is None or not (actor.is_admin or row.person_id == actor.person_id):
        raise NotFound(f"There is no API token with id {token_id}; list them to see their ids.")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        record_event(
            session, actor, "api_token.revoked", f"person:{row.person_id}", {"row": row.id}
        )
    person = session.get(Person, row.person_id)
    return TokenInfo(
        row.id,
        (person.email if person else None) or "",
        row.label,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )
