"""Console accounts: argon2-hashed passwords, sign-in, set-password invitations, the session key.

Administrators and teachers sign in to the console with their email and a password. Teachers
come from the roster import and get a one-time set-password link (`sislink users invite EMAIL`);
only the link token's SHA-256 is stored. Passwords are kept only as argon2id hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import InvalidInput, NotFound
from sislink.classroom.models import ConsoleKey, Invitation, LoginAccount, Person, utc_now
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.people import find_person_by_email, get_person

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000
INVITATION_VALID_FOR = timedelta(days=7)

_hasher = PasswordHasher()
# Checked when an email has no account, so that a wrong email takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("sislink: no such account")


def check_new_password(password: str) -> str:
    """The password if it may be used; InvalidInput saying what is wrong otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters "
            f"(this one has {len(password)})."
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"A password may be at most {MAX_PASSWORD_LENGTH} characters.")
    if not password.strip():
        raise InvalidInput("A password cannot be only spaces.")
    return password


def may_sign_in(person: Person) -> bool:
    """Administrators and teachers with an active record use the console."""
    return person.active and (person.is_admin or person.is_teacher)


def set_password(session: Session, actor: Actor, person_id: int, password: str) -> LoginAccount:
    """Set a person's console password (the person themself, or an administrator)."""
    if actor.person_id != person_id:
        require_admin(actor, "set another person's password")
    person = get_person(session, person_id)
    if not may_sign_in(person):
        raise InvalidInput(
            f"{person.email or person.name} is not an active administrator or teacher, so "
            "cannot sign in to the console."
        )
    hashed = _hasher.hash(check_new_password(password))
    account = session.get(LoginAccount, person_id)
    if account is None:
        account = LoginAccount(person_id=person_id, password_hash=hashed)
        session.add(account)
    account.password_hash = hashed
    account.password_set_at = utc_now()
    session.flush()
    record_event(session, actor, "account.password_set", f"person:{person_id}", {})
    return account


def has_password(session: Session, person_id: int) -> bool:
    return session.get(LoginAccount, person_id) is not None


def sign_in(session: Session, email: str, password: str) -> Person | None:
    """The person whose email and password these are, if they may sign in; None otherwise."""
    person = find_person_by_email(session, email) if email.strip() else None
    account = session.get(LoginAccount, person.id) if person is not None else None
    if person is None or account is None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(account.password_hash, password) or not may_sign_in(person):
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    account.last_login_at = utc_now()
    return person


def password_version(session: Session, person_id: int) -> str | None:
    """A short fingerprint of the person's password hash: sessions made before the password
    changed carry another one and stop working."""
    account = session.get(LoginAccount, person_id)
    if account is None:
        return None
    return hashlib.sha256(account.password_hash.encode("utf-8")).hexdigest()[:16]


def invite(
    session: Session, actor: Actor, email: str, *, valid_for: timedelta = INVITATION_VALID_FOR
) -> tuple[Invitation, str]:
    """Make a set-password link token for an administrator or teacher; the token is returned
    once (only its hash is stored). Earlier unused links of that person stop working."""
    require_admin(actor, "invite people to the console")
    person = find_person_by_email(session, email)
    if person is None:
        raise NotFound(
            f"No person has the email {email.strip()!r}; teachers arrive with the roster "
            "import (sislink roster import), administrators with sislink users create-admin."
        )
    if not may_sign_in(person):
        raise InvalidInput(
            f"{person.email} is not an active administrator or teacher, so cannot be invited."
        )
    now = utc_now()
    for earlier in session.scalars(
        select(Invitation).where(Invitation.person_id == person.id, Invitation.used_at.is_(None))
    ):
        earlier.used_at = now
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        person_id=person.id,
        token_hash=_token_hash(token),
        created_by_id=actor.person_id,
        created_at=now,
        expires_at=now + valid_for,
    )
    session.add(invitation)
    session.flush()
    record_event(session, actor, "account.invited", f"person:{person.id}", {"email": person.email})
    return invitation, token


def invited_person(session: Session, token: str, now: datetime | None = None) -> Person:
    """The person a set-password token is for; InvalidInput if it is unknown, used or expired."""
    invitation = _invitation(session, token, now or utc_now())
    return get_person(session, invitation.person_id)


def accept_invitation(session: Session, token: str, password: str) -> Person:
    """Set the invited person's password from their link; the link is then used up."""
    now = utc_now()
    invitation = _invitation(session, token, now)
    person = get_person(session, invitation.person_id)
    set_password(session, Actor.of(person), person.id, password)
    invitation.used_at = now
    return person


def session_signing_key(session: Session, box: SecretBox) -> bytes:
    """The console's cookie-signing key: made once, stored sealed, the same after a restart."""
    row = session.get(ConsoleKey, 1)
    if row is None:
        row = ConsoleKey(id=1, key_sealed=box.seal(secrets.token_hex(32)))
        session.add(row)
        session.flush()
    return bytes.fromhex(box.open(row.key_sealed))


def _invitation(session: Session, token: str, now: datetime) -> Invitation:
    found = session.scalars(
        select(Invitation).where(Invitation.token_hash == _token_hash(token.strip()))
    ).first()
    if found is None or found.used_at is not None:
        raise InvalidInput(
            "This set-password link is unknown or was already used; ask an administrator for "
            "a new one (sislink users invite EMAIL)."
        )
    if found.expires_at < now:
        raise InvalidInput(
            "This set-password link has expired; ask an administrator for a new one "
            "(sislink users invite EMAIL)."
        )
    return found


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
