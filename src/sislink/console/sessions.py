"""Console sessions: signed, HttpOnly, SameSite cookies, and the CSRF token every form carries.

The cookie holds the session's CSRF token and, once signed in, a random session key whose
SHA-256 is a row in the database (`accounts.start_console_session`): the row, not the cookie,
says who is signed in, so deleting it (signing out, a password change, a disabled account) ends
the session at once, whatever copy of the cookie a browser kept. The cookie is also signed
with HMAC-SHA256 under the console's key (`accounts.session_signing_key`), so it cannot be
forged or changed, and scripts in a page cannot read it (HttpOnly). Anonymous visitors get a
cookie too (no row), so that the sign-in form has a CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.classroom.services.accounts import session_signing_key

COOKIE_NAME = "sislink_session"
FLASH_COOKIE = "sislink_flash"
MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class SessionData:
    """One browser's session: anonymous (person_id None) or signed in."""

    csrf_token: str = field(default_factory=new_csrf_token)
    session_key: str | None = field(default=None, repr=False)
    issued_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def signed_in(self) -> bool:
        return self.session_key is not None

    def signed_in_with(self, session_key: str) -> SessionData:
        """A fresh session under this key (new CSRF token: nothing carries over from before)."""
        return SessionData(session_key=session_key)

    def renewed(self) -> SessionData:
        return replace(self, issued_at=int(time.time()))

    def csrf_matches(self, submitted: str | None) -> bool:
        # compare_digest raises TypeError for text outside ASCII, which no token of ours is.
        return (
            bool(submitted)
            and (submitted or "").isascii()
            and hmac.compare_digest(self.csrf_token, submitted or "")
        )


class SessionCodec:
    """Turns SessionData into a signed cookie value and back (None when forged or expired)."""

    def __init__(self, key: bytes, *, max_age_s: int = MAX_AGE_S) -> None:
        if len(key) < 32:
            raise ValueError("the session key must have at least 32 bytes")
        self._key = key
        self.max_age_s = max_age_s

    def __repr__(self) -> str:
        return "SessionCodec(key=<hidden>)"

    def dumps(self, data: SessionData) -> str:
        body = {
            "c": data.csrf_token,
            "s": data.session_key,
            "t": data.issued_at,
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def loads(self, value: str | None, *, now: float | None = None) -> SessionData | None:
        # Only ASCII can be ours (and be signed or compared): a cookie outside it, set by
        # another site of the domain or mangled, is foreign, not a 500 on every page.
        if not value or not value.isascii() or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            body: dict[str, Any] = json.loads(_unb64(payload))
            data = SessionData(
                csrf_token=str(body["c"]),
                session_key=None if body["s"] is None else str(body["s"]),
                issued_at=int(body["t"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if (now if now is not None else time.time()) - data.issued_at > self.max_age_s:
            return None
        return data

    def sign_text(self, text: str) -> str:
        """A short message (a flash notice) signed so that it cannot be planted by others."""
        payload = _b64(text.encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def unsign_text(self, value: str | None) -> str | None:
        if not value or not value.isascii() or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            return _unb64(payload).decode("utf-8")
        except ValueError:
            return None

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()
        return _b64(digest)


def write_session(
    request: Request, response: Response, codec: SessionCodec, data: SessionData
) -> None:
    """Set the session cookie: HttpOnly, SameSite=Lax, Secure over https, whole site."""
    response.set_cookie(
        COOKIE_NAME,
        codec.dumps(data),
        max_age=codec.max_age_s,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")


def write_flash(request: Request, response: Response, codec: SessionCodec, text: str) -> None:
    """A one-time notice shown on the next page (e.g. "Saved.")."""
    response.set_cookie(
        FLASH_COOKIE,
        codec.sign_text(text),
        max_age=120,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_codec(app: Any, classroom: Classroom) -> SessionCodec:
    """The app's codec, made once from the classroom's stored key (`app.state.session_codec`)."""
    found = getattr(app.state, "session_codec", None)
    if isinstance(found, SessionCodec):
        return found
    with classroom.transaction() as session:
        key = session_signing_key(session, classroom.secret_box)
    codec = SessionCodec(key)
    app.state.session_codec = codec
    return codec
