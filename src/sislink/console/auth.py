"""Who is calling the REST API: the classroom the app serves, and the actor behind a bearer token.

    @router.get("/things")
    def things(actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)):
        ...

Tokens come from `sislink users token EMAIL` (shown once, stored as a SHA-256 hash). The
classroom is `app.state.classroom` when the app was given one (tests, the demo), otherwise
the installation's, opened once from the environment (SISLINK_HOME / SISLINK_DATABASE_URL).
"""

from __future__ import annotations

import threading

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import ApiToken, Person
from sislink.classroom.services.accounts import may_sign_in
from sislink.classroom.services.api_tokens import (
    create_api_token,
    person_for_token,
    revoke_api_tokens,
    token_hash,
)
from sislink.settings import Settings

__all__ = [
    "ApiToken",
    "admin_actor",
    "create_api_token",
    "current_actor",
    "get_classroom",
    "person_for_token",
    "revoke_api_tokens",
    "token_hash",
]

_bearer = HTTPBearer(auto_error=False, description="An API token from `sislink users token`.")
_opening = threading.Lock()


def get_classroom(request: Request) -> Classroom:
    """The classroom this app serves (set `app.state.classroom`, or opened from the env)."""
    state = request.app.state
    found = getattr(state, "classroom", None)
    if found is None:
        with _opening:
            found = getattr(state, "classroom", None)
            if found is None:
                found = open_classroom(Settings.from_env())
                state.classroom = found
    assert isinstance(found, Classroom)
    return found


def current_actor(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    classroom: Classroom = Depends(get_classroom),
) -> Actor:
    """The person behind `Authorization: Bearer <token>`; 401 without a valid token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            {
                "problem": "unauthorised",
                "message": "Send an API token as 'Authorization: Bearer <token>'; an "
                "administrator makes one with `sislink users token EMAIL`.",
            },
            headers={"WWW-Authenticate": "Bearer"},
        )
    with classroom.transaction() as session:
        person: Person | None = person_for_token(session, credentials.credentials)
        if person is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                {
                    "problem": "unauthorised",
                    "message": "This API token is unknown or revoked; ask an administrator for "
                    "a new one (`sislink users token EMAIL`).",
                },
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not may_sign_in(person):
            # As the pages: only administrators and teachers. A person whose roles were taken
            # away keeps no use of a token made before (the roster may still name them a
            # class's teacher, which is what the class checks look at).
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                {
                    "problem": "forbidden",
                    "message": "This API token's owner is no longer an administrator or teacher "
                    "in sislink, so it cannot be used; ask an administrator to give the role "
                    "back if it should work.",
                },
            )
        return Actor.of(person)


def admin_actor(actor: Actor = Depends(current_actor)) -> Actor:
    """The calling person if they are an administrator; 403 otherwise."""
    if not actor.is_admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            {
                "problem": "forbidden",
                "message": "Only an administrator may do this; ask one to give you the admin role.",
            },
        )
    return actor


# ---- console pages: the person behind a session cookie (added for the web console) ---------


def session_actor(request: Request, classroom: Classroom = Depends(get_classroom)) -> Actor | None:
    """The person signed in to the console by session cookie, or None (anonymous, forged,
    signed out, expired, password changed since, or no longer an active administrator or
    teacher with a password).

    Pages use this; the REST API stays on bearer tokens (a cookie would need CSRF checks there).
    """
    from sislink.classroom.services import accounts
    from sislink.console.sessions import COOKIE_NAME, session_codec

    data = session_codec(request.app, classroom).loads(request.cookies.get(COOKIE_NAME))
    if data is None or data.session_key is None:
        return None
    with classroom.session() as session:
        person = accounts.console_session_person(session, data.session_key)
        if person is not None:
            return Actor.of(person)
        owner = accounts.console_session_owner(session, data.session_key)
    if owner is not None:
        # A person no longer allowed in keeps no session that could come back with them.
        with classroom.transaction() as session:
            accounts.end_sessions_if_not_allowed(session, owner)
    return None
