"""Signing in with the school's accounts (issue 18): the OpenID Connect providers an
administrator set, whether the password form is offered, the sign-ins sent to a provider and
not back yet, and who a verified ID token is.

Who a person is comes from the roster, never from the provider alone: the ID token's email
(only when the provider says it is verified) is matched, whatever its case, to an active
teacher or administrator sislink already has (teachers arrive with the roster import,
administrators with `sislink users create-admin`). A provider may name administrators by a
group claim (`admin_group`). Anyone else is refused with a sentence, and nothing is created for
them. The protocol itself (discovery, JWKS, the code exchange, the ID token's signature) is in
`sislink.console.oidc`; this module sees only the claims of a token that passed those checks.

A provider's client secret is stored sealed with the installation's key, or not at all: the
provider then names an environment variable that holds it at run time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sislink.classroom.errors import ClassroomError, Conflict, InvalidInput, NotFound
from sislink.classroom.models import OidcPending, OidcProvider, Person, Role, SignInSetting, utc_now
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.accounts import may_sign_in, start_console_session
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.people import create_person, find_person_by_email, set_roles

PENDING_VALID_FOR = timedelta(minutes=10)
MAX_PENDING = 5000
MAX_NEXT_PATH = 2000  # oidc_pending.next_path
_LARGEST_ID = 2**31 - 1  # a larger number is no row's id (and PostgreSQL refuses it)
ENVIRONMENT_VARIABLE = "SISLINK_OIDC_PROVIDERS"
PASSWORD_VARIABLE = "SISLINK_PASSWORD_SIGN_IN"  # noqa: S105 (a variable's name)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
_KNOWN_NAMES = {
    "accounts.google.com": "Google",
    "login.microsoftonline.com": "Microsoft",
}

logger = logging.getLogger("sislink.sign_in")


class SignInRefused(ClassroomError):
    """A sign-in with a provider that cannot go ahead; the message says why, for the person."""


# ---- providers -----------------------------------------------------------------------------


def check_issuer(issuer: str) -> str:
    """The issuer URL as stored (no trailing slash); InvalidInput if it cannot be one. An
    issuer is https, except on this machine's loopback (a test provider)."""
    text = issuer.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(
            f"The issuer {issuer.strip()!r} is not a URL; give the provider's issuer, e.g. "
            "https://accounts.google.com or https://login.microsoftonline.com/TENANT/v2.0."
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(
            "An issuer URL has no query, fragment or user name; give the issuer exactly as the "
            "provider's discovery document names it."
        )
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidInput(
            f"The issuer {text} is not https; a provider must be reached over https (plain "
            "http is allowed only on 127.0.0.1 for a test provider)."
        )
    return text


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_name(issuer: str) -> str:
    host = urlsplit(issuer).hostname or issuer
    return _KNOWN_NAMES.get(host, host)


def list_providers(session: Session) -> list[OidcProvider]:
    return list(session.scalars(select(OidcProvider).order_by(OidcProvider.id)))


def get_provider(session: Session, named: str | int) -> OidcProvider:
    """A provider by its number, issuer or name; NotFound saying which exist otherwise."""
    text = str(named).strip()
    found: OidcProvider | None = None
    if text.isdigit() and int(text) <= _LARGEST_ID:
        found = session.get(OidcProvider, int(text))
    if found is None:
        for provider in list_providers(session):
            if provider.issuer == text.rstrip("/") or provider.name.casefold() == text.casefold():
                found = provider
                break
    if found is None:
        known = ", ".join(f"{p.id} ({p.name})" for p in list_providers(session)) or "none"
        raise NotFound(f"No sign-in provider is {text!r}; the providers set are: {known}.")
    return found


def set_provider(
    session: Session,
    box: SecretBox,
    actor: Actor,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None = None,
    client_secret_env: str | None = None,
    name: str | None = None,
    domain: str | None = None,
    admin_group: str | None = None,
    from_environment: bool = False,
) -> OidcProvider:
    """Add a provider, or change the one with this issuer (administrators only). Exactly one
    of `client_secret` (stored sealed) and `client_secret_env` (read at run time) is given."""
    require_admin(actor, "set sign-in providers")
    stored_issuer = check_issuer(issuer)
    client_id = client_id.strip()
    if not client_id or len(client_id) > 500:
        raise InvalidInput("Give the client ID the provider gave sislink when you registered it.")
    secret = (client_secret or "").strip()
    env_name = (client_secret_env or "").strip()
    if bool(secret) == bool(env_name):
        raise InvalidInput(
            "Give the client secret either sealed in sislink (the console's field) or as the "
            "name of an environment variable that holds it (--client-secret-env VAR), not both "
            "and not neither."
        )
    if env_name and not _ENV_NAME.match(env_name):
        raise InvalidInput(
            f"{env_name!r} is not an environment variable name; use letters, digits and _, "
            "e.g. SISLINK_GOOGLE_CLIENT_SECRET."
        )
    shown_name = (name or "").strip() or default_name(stored_issuer)
    if len(shown_name) > 100:
        raise InvalidInput("A provider's name has at most 100 characters.")
    wanted_domain = (domain or "").strip().lstrip("@").casefold() or None
    if wanted_domain is not None and (
        "." not in wanted_domain or "/" in wanted_domain or len(wanted_domain) > 255
    ):
        raise InvalidInput(
            f"{domain!r} is not an email domain; give the school's domain, e.g. district.org."
        )
    group = (admin_group or "").strip() or None
    if group is not None and len(group) > 255:
        raise InvalidInput("An administrators' group name has at most 255 characters.")
    provider = session.scalars(
        select(OidcProvider).where(OidcProvider.issuer == stored_issuer)
    ).first()
    created = provider is None
    if provider is None:
        provider = OidcProvider(issuer=stored_issuer, created_at=utc_now())
        session.add(provider)
    provider.name = shown_name
    provider.client_id = client_id
    provider.client_secret_sealed = box.seal(secret) if secret else None
    provider.client_secret_env = env_name or None
    provider.domain = wanted_domain
    provider.admin_group = group
    provider.from_environment = from_environment
    session.flush()
    record_event(
        session,
        actor,
        "sign_in.provider_added" if created else "sign_in.provider_changed",
        f"oidc_provider:{provider.id}",
        {
            "issuer": stored_issuer,
            "name": shown_name,
            "client_id": client_id,
            "secret": "sealed" if secret else f"${env_name}",
            "domain": wanted_domain,
            "admin_group": group,
        },
    )
    return provider


def remove_provider(session: Session, actor: Actor, named: str | int) -> OidcProvider:
    """Remove a provider (administrators only); its sessions end. Refused when password
    sign-in is off and no other provider has signed anyone in: nobody could sign in then."""
    require_admin(actor, "remove sign-in providers")
    provider = get_provider(session, named)
    if not password_sign_in_enabled(session) and not any(
        other.last_sign_in_at is not None
        for other in list_providers(session)
        if other.id != provider.id
    ):
        raise Conflict(
            f"Password sign-in is off and {provider.name} is the only provider that has signed "
            "anyone in, so nobody could sign in without it; turn password sign-in on first "
            "(sislink sign-in password on)."
        )
    record_event(
        session,
        actor,
        "sign_in.provider_removed",
        f"oidc_provider:{provider.id}",
        {"issuer": provider.issuer, "name": provider.name},
    )
    session.delete(provider)
    session.flush()
    return provider


def client_secret(
    provider: OidcProvider, box: SecretBox, env: Mapping[str, str] | None = None
) -> str:
    """The provider's client secret: opened from its seal, or read from its variable now."""
    if provider.client_secret_sealed:
        return box.open(provider.client_secret_sealed)
    variables = os.environ if env is None else env
    value = variables.get(provider.client_secret_env or "", "")
    if not value:
        raise InvalidInput(
            f"The client secret for {provider.name} is to come from ${provider.client_secret_env}, "
            "which is empty or not set where the console runs; set it and restart the console."
        )
    return value


def apply_environment(
    session: Session, box: SecretBox, env: Mapping[str, str] | None = None
) -> list[OidcProvider]:
    """Set the providers a deployment names in SISLINK_OIDC_PROVIDERS (a JSON list of
    {"issuer", "client_id", "client_secret_env", "name", "domain", "admin_group"}), and
    password sign-in from SISLINK_PASSWORD_SIGN_IN (on/off) when it is set. Providers set
    this way earlier and no longer named are removed. InvalidInput names what is wrong."""
    variables = os.environ if env is None else env
    raw = variables.get(ENVIRONMENT_VARIABLE, "").strip()
    system = Actor.system()
    applied: list[OidcProvider] = []
    if raw:
        try:
            entries = json.loads(raw)
        except ValueError:
            raise InvalidInput(
                f"${ENVIRONMENT_VARIABLE} is not JSON; give a list such as "
                '[{"issuer": "https://accounts.google.com", "client_id": "ID", '
                '"client_secret_env": "GOOGLE_SECRET"}].'
            ) from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InvalidInput(f"${ENVIRONMENT_VARIABLE} must be a JSON list of objects.")
        for entry in entries:
            if "client_secret" in entry:
                raise InvalidInput(
                    f"${ENVIRONMENT_VARIABLE} names the secret's variable (client_secret_env), "
                    "never the secret itself."
                )
            applied.append(
                set_provider(
                    session,
                    box,
                    system,
                    issuer=str(entry.get("issuer", "")),
                    client_id=str(entry.get("client_id", "")),
                    client_secret_env=str(entry.get("client_secret_env", "")),
                    name=_text_or_none(entry.get("name")),
                    domain=_text_or_none(entry.get("domain")),
                    admin_group=_text_or_none(entry.get("admin_group")),
                    from_environment=True,
                )
            )
    kept = {provider.id for provider in applied}
    for provider in list_providers(session):
        if provider.from_environment and provider.id not in kept:
            session.delete(provider)
    password = variables.get(PASSWORD_VARIABLE, "").strip().casefold()
    if password:
        if password not in ("on", "off"):
            raise InvalidInput(f"${PASSWORD_VARIABLE} is 'on' or 'off', not {password!r}.")
        _setting(session).password_enabled = password == "on"  # noqa: S105
    session.flush()
    if not list_providers(session) and not password_sign_in_enabled(session):
        # No provider left (the deployment dropped them): the sign-in page shows the password
        # form again, and it must work, or nobody could sign in at all.
        row = _setting(session)
        row.password_enabled = True
        row.updated_at = utc_now()
        record_event(
            session, system, "sign_in.password_on", "", {"why": "no sign-in provider is set"}
        )
        session.flush()
    return applied


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ---- password sign-in on or off ------------------------------------------------------------


def _setting(session: Session) -> SignInSetting:
    row = session.get(SignInSetting, 1)
    if row is None:
        row = SignInSetting(id=1, password_enabled=True, updated_at=utc_now())
        session.add(row)
        session.flush()
    return row


def password_sign_in_enabled(session: Session) -> bool:
    row = session.get(SignInSetting, 1)
    return True if row is None else row.password_enabled


def set_password_sign_in(session: Session, actor: Actor, enabled: bool) -> None:
    """Offer the password form or not (administrators only). Turning it off is refused until a
    provider has signed someone in, so that nobody is locked out; password sessions then end."""
    require_admin(actor, "turn password sign-in on or off")
    if not enabled and not any(p.last_sign_in_at is not None for p in list_providers(session)):
        raise Conflict(
            "Password sign-in stays on until someone has signed in with a provider (so that "
            "nobody is locked out); set a provider, sign in with it once, then turn passwords off."
        )
    if not enabled and not _an_administrator_signed_in_with_a_provider(session):
        raise Conflict(
            "Password sign-in stays on until an administrator has signed in with a provider "
            "(so that someone can still manage sislink without a password); sign in with it "
            "once as an administrator, then turn passwords off."
        )
    row = _setting(session)
    row.password_enabled = enabled
    row.updated_at = utc_now()
    record_event(session, actor, "sign_in.password_" + ("on" if enabled else "off"), "", {})


def _an_administrator_signed_in_with_a_provider(session: Session) -> bool:
    from sislink.classroom.models import AuditEvent

    subjects = session.scalars(
        select(AuditEvent.subject).where(AuditEvent.action == "account.signed_in").distinct()
    ).all()
    ids = [int(s.removeprefix("person:")) for s in subjects if s.removeprefix("person:").isdigit()]
    if not ids:
        return False
    admin = session.scalars(
        select(Person.id).where(Person.id.in_(ids), Person.is_admin, Person.active).limit(1)
    ).first()
    return admin is not None


# ---- sign-ins sent to a provider -----------------------------------------------------------


@dataclass(frozen=True)
class PendingSignIn:
    """What a sign-in needs when the provider's answer comes back."""

    provider_id: int
    nonce: str
    code_verifier: str = field(repr=False)
    redirect_uri: str
    next_path: str


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def start_pending(
    session: Session, box: SecretBox, provider_id: int, redirect_uri: str, next_path: str
) -> tuple[str, PendingSignIn]:
    """A new sign-in: its `state` (for the browser's cookie and the provider) and the rest.
    A page to go on to longer than the column holds is not kept: the start page instead."""
    if len(next_path) > MAX_NEXT_PATH:
        next_path = "/"
    if len(redirect_uri) > MAX_NEXT_PATH:  # oidc_pending.redirect_uri has the same size
        raise SignInRefused(
            "This console's address (the host name the browser asked for) is too long to "
            "sign in with a provider; open the console at its usual address."
        )
    now = utc_now()
    session.execute(delete(OidcPending).where(OidcPending.expires_at < now))
    # Anyone may start a sign-in: a bound on those under way keeps the table small. The oldest
    # go to make room (refusing new ones instead would let anyone who starts MAX_PENDING
    # sign-ins in ten minutes keep everybody out).
    under_way = session.scalar(select(func.count()).select_from(OidcPending)) or 0
    if under_way >= MAX_PENDING:
        oldest = session.scalars(
            select(OidcPending.id)
            .order_by(OidcPending.created_at, OidcPending.id)
            .limit(under_way - MAX_PENDING + 1)
        ).all()
        session.execute(delete(OidcPending).where(OidcPending.id.in_(oldest)))
    state = secrets.token_urlsafe(32)
    pending = PendingSignIn(
        provider_id=provider_id,
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),
        redirect_uri=redirect_uri,
        next_path=next_path,
    )
    session.add(
        OidcPending(
            state_hash=_hash(state),
            provider_id=provider_id,
            nonce=pending.nonce,
            code_verifier_sealed=box.seal(pending.code_verifier),
            redirect_uri=redirect_uri,
            next_path=next_path,
            created_at=now,
            expires_at=now + PENDING_VALID_FOR,
        )
    )
    session.flush()
    return state, pending


def take_pending(session: Session, box: SecretBox, state: str) -> PendingSignIn:
    """The sign-in this `state` started, used up now; SignInRefused if it is unknown, used or
    expired (a replayed answer from the provider ends here)."""
    row = session.scalars(select(OidcPending).where(OidcPending.state_hash == _hash(state))).first()
    if row is None:
        raise SignInRefused(
            "This answer from the sign-in provider was already used or does not belong to a "
            "sign-in started here; start again from the sign-in page."
        )
    # Two answers with the same state at once: only the one whose DELETE takes the row goes on.
    taken = session.execute(delete(OidcPending).where(OidcPending.id == row.id))
    if getattr(taken, "rowcount", 1) != 1:
        raise SignInRefused(
            "This answer from the sign-in provider was already used; start again from the "
            "sign-in page."
        )
    if row.expires_at < utc_now():
        raise SignInRefused(
            "This sign-in took more than ten minutes at the provider and has expired; start "
            "again from the sign-in page."
        )
    return PendingSignIn(
        provider_id=row.provider_id,
        nonce=row.nonce,
        code_verifier=box.open(row.code_verifier_sealed),
        redirect_uri=row.redirect_uri,
        next_path=row.next_path,
    )


# ---- who the token is ----------------------------------------------------------------------


def _verified(claims: Mapping[str, Any], provider: OidcProvider) -> bool:
    verified = claims.get("email_verified")
    if verified is None and urlsplit(provider.issuer).hostname == "login.microsoftonline.com":
        # Microsoft Entra ID sends the optional claim xms_edov (email domain owner verified).
        verified = claims.get("xms_edov")
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")


def _groups(claims: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("groups", "roles"):
        value = claims.get(name)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found.update(str(item) for item in value)
    return found


def _groups_elsewhere(claims: Mapping[str, Any]) -> bool:
    """Whether the ID token says the person's groups are not in it but elsewhere (OpenID
    Connect's distributed claims, `_claim_names`): Microsoft Entra ID does so for someone in
    more groups than a token holds (200, "groups overage"). Their groups are then unknown
    here, not empty."""
    names = claims.get("_claim_names")
    return isinstance(names, dict) and "groups" in names and "groups" not in claims


def _checked_email(provider: OidcProvider, claims: Mapping[str, Any]) -> str:
    """The ID token's email, once it is verified and in the provider's domain (if one is set);
    SignInRefused otherwise."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SignInRefused(
            f"{provider.name} did not send an email address for this account, so sislink cannot "
            "tell who you are; ask your administrator to let sislink read your email (scope email)."
        )
    if not _verified(claims, provider):
        raise SignInRefused(
            f"{provider.name} says the email {email} is not verified, so sislink will not sign "
            "you in with it; verify the address with your provider, or use your school account."
        )
    if provider.domain is not None:
        hosted = str(claims.get("hd") or "").casefold()
        if email.rsplit("@", 1)[1].casefold() != provider.domain or (
            hosted and hosted != provider.domain
        ):
            raise SignInRefused(
                f"Only {provider.domain} accounts may sign in with {provider.name}; {email} is "
                "not one. Sign in with your school account."
            )
        if urlsplit(provider.issuer).hostname == "accounts.google.com" and not hosted:
            raise SignInRefused(
                f"{email} is a personal Google account, not one of the school's "
                f"{provider.domain} Google Workspace; sign in with your school account."
            )
    return email


ADMIN_FROM_GROUP = "sign_in.admin_from_group"
ADMIN_GROUP_LEFT = "sign_in.admin_group_left"


def follow_admin_group(
    session: Session, provider: OidcProvider, claims: Mapping[str, Any]
) -> Person | None:
    """With an administrators' group set for the provider, its word is followed both ways: a
    person in the group is given the admin role (added as a person if sislink did not know
    them); one who was given it by the group and is no longer in it loses it (an administrator
    named in sislink, by `users create-admin` or the People page, keeps it). Returns the person
    the verified email names, None if nobody; SignInRefused as `identify` for a bad email.

    The console runs this in a transaction of its own before `identify`, so that a role taken
    away stays taken away even when the sign-in is then refused."""
    email = _checked_email(provider, claims)
    person = find_person_by_email(session, email)
    if provider.admin_group is None:
        return person
    system = Actor.system()
    if provider.admin_group not in _groups(claims) and _groups_elsewhere(claims):
        # Unknown is not "out of the group": nothing changes either way (the administrators'
        # group is then best sent as an app role, which is never left out; docs/sign-in.md).
        logger.warning(
            "%s sent no groups for %s (too many for the token: groups overage), so whether "
            "they are in the administrators' group is unknown; their roles were left as they "
            "are. Send the group as an app role, or only the groups assigned to sislink.",
            provider.issuer,
            email,
        )
        return person
    if provider.admin_group in _groups(claims):
        if person is None:
            name = str(claims.get("name") or email)[:300]
            person = create_person(session, system, name=name, email=email, roles=[Role.ADMIN])
        elif not person.is_admin and person.active and not _disabled(session, person.id):
            set_roles(session, system, person.id, person.roles | {Role.ADMIN})
        else:
            return person
        session.flush()
        record_event(
            session, system, ADMIN_FROM_GROUP, f"person:{person.id}", {"issuer": provider.issuer}
        )
    elif person is not None and person.is_admin and _admin_by_group(session, person.id):
        set_roles(session, system, person.id, person.roles - {Role.ADMIN})
        record_event(
            session, system, ADMIN_GROUP_LEFT, f"person:{person.id}", {"issuer": provider.issuer}
        )
    session.flush()
    return person


def _admin_by_group(session: Session, person_id: int) -> bool:
    """Whether the person's roles were last set by an administrators' group claim (not by an
    administrator, nor by `users create-admin`, since)."""
    from sislink.classroom.models import AuditEvent

    last = session.scalars(
        select(AuditEvent.action)
        .where(
            AuditEvent.subject == f"person:{person_id}",
            AuditEvent.action.in_(("person.created", "person.roles_changed", ADMIN_FROM_GROUP)),
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    return last == ADMIN_FROM_GROUP


def identify(session: Session, provider: OidcProvider, claims: Mapping[str, Any]) -> Person:
    """The person a verified ID token names, from the roster; SignInRefused otherwise, with
    nothing created, except an administrator named by the provider's admin group claim, who
    is given the admin role (added as a person if sislink did not know them); one out of the
    group again loses a role the group gave (`follow_admin_group`)."""
    person = follow_admin_group(session, provider, claims)
    email = str(claims["email"])
    if person is None or not may_sign_in(person):
        raise SignInRefused(
            f"{email} is not a teacher or administrator in sislink, so you cannot sign in. "
            "Teachers come from the school's SIS roster; if you should have access, ask an "
            "administrator."
        )
    if _disabled(session, person.id):
        raise SignInRefused(
            f"An administrator disabled the sislink account of {email}; ask one to let you in "
            "again with an invitation (sislink users invite EMAIL)."
        )
    return person


def _disabled(session: Session, person_id: int) -> bool:
    """Whether an administrator disabled the person's account (`sislink users disable`) and
    nothing let them in since (an invitation, a password set by an administrator)."""
    from sislink.classroom.models import AuditEvent

    last = session.scalars(
        select(AuditEvent.action)
        .where(
            AuditEvent.subject == f"person:{person_id}",
            AuditEvent.action.in_(("account.disabled", "account.invited", "account.password_set")),
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    return last == "account.disabled"


def signed_in(session: Session, provider: OidcProvider, person: Person) -> str:
    """Start the person's console session (tied to the provider) and note that the provider
    works; returns the session key for the browser's cookie."""
    provider.last_sign_in_at = utc_now()
    key = start_console_session(session, person.id, provider_id=provider.id)
    record_event(
        session,
        Actor.of(person),
        "account.signed_in",
        f"person:{person.id}",
        {"provider": provider.name, "issuer": provider.issuer},
    )
    return key


def session_provider(session: Session, session_key: str | None) -> OidcProvider | None:
    """The provider a console session was started with (None: a password session, or none)."""
    from sislink.classroom.models import ConsoleSession

    if not session_key:
        return None
    row = session.scalars(
        select(ConsoleSession).where(ConsoleSession.key_hash == _hash(session_key))
    ).first()
    if row is None or row.provider_id is None:
        return None
    return session.get(OidcProvider, row.provider_id)
