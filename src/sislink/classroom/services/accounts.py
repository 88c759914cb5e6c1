"""Console accounts: argon2-hashed passwords, throttled sign-in, console sessions kept in the
database, set-password invitations, disabling an account, the cookie-signing key.

Administrators and teachers sign in to the console with their email and a password. Teachers
come from the roster import and get a one-time set-password link (`sislink users invite EMAIL`);
only the link token's SHA-256 is stored. Passwords are kept only as argon2id hashes.

A signed-in browser holds a random session key; only its SHA-256 is stored (`ConsoleSession`),
so deleting the rows ends the sessions at once: signing out, a password change and disabling
the account each end every session of that person.

Sign-in is throttled (`attempt_sign_in`): failures are counted in the database per email typed
(whether or not anyone has it, so the answer never tells which accounts exist) and per address,
and an attempt over the limit is refused before its password is hashed. Each argon2 check costs
64 MiB, so a `SignInGuard` also bounds how many run at once in the process.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from sislink.classroom.bulk import normalise_email
from sislink.classroom.errors import InvalidInput, NotFound
from sislink.classroom.models import (
    ApiToken,
    ConsoleKey,
    ConsoleSession,
    Invitation,
    LoginAccount,
    Person,
    SignInFailure,
    SignInSetting,
    utc_now,
)
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.people import find_person_by_email, get_person

if TYPE_CHECKING:
    from sislink.classroom.db import Classroom

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000
INVITATION_VALID_FOR = timedelta(days=7)
SESSION_LIFETIME = timedelta(hours=12)

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
    # Whoever knew the old password (or kept a cookie made with it) is out now.
    end_console_sessions(session, person_id)
    session.flush()
    record_event(session, actor, "account.password_set", f"person:{person_id}", {})
    return account


def disable_account(session: Session, actor: Actor, person_id: int) -> dict[str, int]:
    """Stop a person using the console and the REST API (administrators only): their password
    is removed, every console session ends, their API tokens and unused set-password links stop
    working. Their data stays; an invitation (`sislink users invite`) lets them in again."""
    require_admin(actor, "disable accounts")
    person = get_person(session, person_id)
    now = utc_now()
    had_password = session.get(LoginAccount, person_id)
    if had_password is not None:
        session.delete(had_password)
    sessions_ended = end_console_sessions(session, person_id)
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.person_id == person_id, ApiToken.revoked_at.is_(None))
    ).all()
    for token in tokens:
        token.revoked_at = now
    for link in session.scalars(
        select(Invitation).where(Invitation.person_id == person_id, Invitation.used_at.is_(None))
    ):
        link.used_at = now
    session.flush()
    summary = {
        "password_removed": int(had_password is not None),
        "sessions_ended": sessions_ended,
        "tokens_revoked": len(tokens),
    }
    record_event(
        session,
        actor,
        "account.disabled",
        f"person:{person.id}",
        {"email": person.email, **summary},
    )
    return summary


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


# ---- console sessions ------------------------------------------------------------------------


def start_console_session(
    session: Session,
    person_id: int,
    *,
    lifetime: timedelta = SESSION_LIFETIME,
    provider_id: int | None = None,
) -> str:
    """A new console session for the person: the key for the browser's cookie (only its hash
    is stored). Sessions that have expired are cleared on the way. `provider_id`: signed in
    with that OpenID Connect provider (sign_in.py), not with a password."""
    now = utc_now()
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    key = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            key_hash=_token_hash(key),
            person_id=person_id,
            created_at=now,
            expires_at=now + lifetime,
            provider_id=provider_id,
        )
    )
    session.flush()
    return key


def console_session_person(session: Session, key: str | None) -> Person | None:
    """The person a browser's session key belongs to, if the session has not ended or expired
    and the person may still sign in (an active administrator or teacher with a password, or
    signed in with a provider still set; a password session ends when passwords are off)."""
    if not key:
        return None
    row = session.scalars(
        select(ConsoleSession).where(ConsoleSession.key_hash == _token_hash(key))
    ).first()
    if row is None or row.expires_at < utc_now():
        return None
    person = session.get(Person, row.person_id)
    if person is None or not may_sign_in(person):
        return None
    if row.provider_id is None:
        setting = session.get(SignInSetting, 1)
        if session.get(LoginAccount, person.id) is None or (
            setting is not None and not setting.password_enabled
        ):
            return None
    return person


def console_session_owner(session: Session, key: str | None) -> int | None:
    """Whose session this key opens (even one no longer allowed in), None if it has none."""
    if not key:
        return None
    return session.scalars(
        select(ConsoleSession.person_id).where(ConsoleSession.key_hash == _token_hash(key))
    ).first()


def end_console_sessions(session: Session, person_id: int) -> int:
    """End every console session of the person; returns how many there were."""
    ended = session.execute(delete(ConsoleSession).where(ConsoleSession.person_id == person_id))
    return int(getattr(ended, "rowcount", 0) or 0)


def end_sessions_if_not_allowed(session: Session, person_id: int) -> int:
    """End every session of a person who may no longer sign in (inactive, no console role, or
    no password), so that none comes back if they are let in again; returns how many ended."""
    person = session.get(Person, person_id)
    if person is not None and may_sign_in(person):
        if has_password(session, person_id):
            return 0
        with_provider = select(ConsoleSession.id).where(
            ConsoleSession.person_id == person_id, ConsoleSession.provider_id.is_not(None)
        )
        if session.scalars(with_provider).first() is not None:
            return 0  # signed in with a provider elsewhere: those sessions stay
    return end_console_sessions(session, person_id)


def sign_out(session: Session, key: str | None) -> int:
    """Signing out in one browser ends every session of that person (a cookie copied or kept
    anywhere stops working); returns how many ended."""
    owner = console_session_owner(session, key)
    return 0 if owner is None else end_console_sessions(session, owner)


# ---- throttled sign-in -----------------------------------------------------------------------


@dataclass(frozen=True)
class SignInLimits:
    """How many failed sign-ins a window allows, per email typed and per address, and how many
    password checks (64 MiB each) may run at once in this process, waiting at most `wait_s`."""

    per_account: int = 10
    per_address: int = 50
    window: timedelta = timedelta(minutes=15)
    concurrent_checks: int = 2
    wait_s: float = 10.0


class SignInGuard:
    """The limits, and the process-wide slots for password checks."""

    def __init__(self, limits: SignInLimits | None = None) -> None:
        self.limits = limits or SignInLimits()
        self._slots = threading.BoundedSemaphore(self.limits.concurrent_checks)

    @contextmanager
    def hashing_slot(self) -> Iterator[bool]:
        """Hold one password-check slot while the block runs; yields False (and holds nothing)
        if none came free within the limits' wait."""
        got = (
            self._slots.acquire(timeout=self.limits.wait_s)
            if self.limits.wait_s > 0
            else (self._slots.acquire(blocking=False))
        )
        try:
            yield got
        finally:
            if got:
                self._slots.release()


DEFAULT_GUARD = SignInGuard()


@dataclass(frozen=True)
class SignInResult:
    """How a sign-in went: signed in (person and session key), refused (throttled until a time,
    or too busy to check now), or a wrong email or password (all fields empty)."""

    person_id: int | None = None
    session_key: str | None = field(default=None, repr=False)
    throttled_until: datetime | None = None
    busy: bool = False

    @property
    def refused(self) -> bool:
        return self.throttled_until is not None or self.busy

    @property
    def retry_after_s(self) -> int:
        """Seconds until a try may succeed (for an HTTP Retry-After header)."""
        if self.throttled_until is None:
            return 5 if self.busy else 0
        return max(1, math.ceil((self.throttled_until - utc_now()).total_seconds()))

    @property
    def message(self) -> str:
        if self.throttled_until is not None:
            return (
                "Too many sign-in attempts for this email or from this address; try again "
                f"after {self.throttled_until.strftime('%H:%M')} UTC "
                f"(in {max(1, math.ceil(self.retry_after_s / 60))} min)."
            )
        if self.busy:
            return "The console is busy checking other sign-ins; try again in a few seconds."
        return ""


def attempt_sign_in(
    classroom: Classroom,
    email: str,
    password: str,
    address: str,
    guard: SignInGuard = DEFAULT_GUARD,
) -> SignInResult:
    """Sign in with throttling; a success starts a console session.

    The attempt is counted as a failure before its password is checked (so parallel attempts
    count at once) and forgotten if it succeeds; an email or address over its limit is refused
    before any hashing, with the same answer whether or not the email belongs to anyone.
    """
    limits = guard.limits
    # Kept as typed, bounded, without NUL (which PostgreSQL refuses in text).
    account_key = (normalise_email(email)[1] or email.strip().casefold())[:320].replace("\x00", "?")
    where_from = (address or "unknown")[:64].replace("\x00", "?")
    with classroom.transaction() as session:
        now = utc_now()
        since = now - limits.window
        session.execute(delete(SignInFailure).where(SignInFailure.failed_at < since))
        until = _throttled_until(
            session, SignInFailure.account_key == account_key, limits.per_account, since, limits
        ) or _throttled_until(
            session, SignInFailure.address == where_from, limits.per_address, since, limits
        )
        if until is not None:
            return SignInResult(throttled_until=until)
        attempt = SignInFailure(account_key=account_key, address=where_from, failed_at=now)
        session.add(attempt)
        session.flush()
        attempt_id = attempt.id
        stored = _stored_hash(session, email)
    with guard.hashing_slot() as got:
        if not got:
            with classroom.transaction() as session:
                session.execute(delete(SignInFailure).where(SignInFailure.id == attempt_id))
            return SignInResult(busy=True)
        # Outside any transaction: a 64 MiB hash must not hold SQLite's write lock.
        matches = _verify(stored[1] if stored else _DUMMY_HASH, password) and stored is not None
    if not matches or stored is None:
        return SignInResult()
    with classroom.transaction() as session:
        person = session.get(Person, stored[0])
        account = session.get(LoginAccount, stored[0])
        if person is None or account is None or not may_sign_in(person):
            return SignInResult()
        if account.password_hash != stored[1]:
            return SignInResult()  # the password changed while it was being checked
        session.execute(
            delete(SignInFailure).where(
                (SignInFailure.id == attempt_id) | (SignInFailure.account_key == account_key)
            )
        )
        if _hasher.check_needs_rehash(account.password_hash):
            account.password_hash = _hasher.hash(password)
        account.last_login_at = utc_now()
        key = start_console_session(session, person.id)
        return SignInResult(person_id=person.id, session_key=key)


def _throttled_until(
    session: Session, which: ColumnElement[bool], limit: int, since: datetime, limits: SignInLimits
) -> datetime | None:
    """When enough of these failures will have left the window for one more try; None if
    a try may go ahead now."""
    count = session.scalar(
        select(func.count())
        .select_from(SignInFailure)
        .where(which, SignInFailure.failed_at >= since)
    )
    if not count or count < limit:
        return None
    # Ordered oldest first, the failure at index count - limit is the last that must age out.
    pivot = session.scalars(
        select(SignInFailure.failed_at)
        .where(which, SignInFailure.failed_at >= since)
        .order_by(SignInFailure.failed_at, SignInFailure.id)
        .offset(count - limit)
        .limit(1)
    ).first()
    return (pivot or utc_now()) + limits.window


def _stored_hash(session: Session, email: str) -> tuple[int, str] | None:
    person = find_person_by_email(session, email) if email.strip() else None
    account = session.get(LoginAccount, person.id) if person is not None else None
    if person is None or account is None:
        return None
    return person.id, account.password_hash


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
            "import (sislink roster import), administrators are made by one "
            "(sislink users create-admin)."
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
