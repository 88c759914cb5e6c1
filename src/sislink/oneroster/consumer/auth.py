"""Authentication, one small class per kind: an OAuth 2 token cache and an OAuth 1.0a signer.

- `OAuth2TokenCache` keeps one client-credentials token until shortly before it expires; when
  it must be renewed, one caller fetches it and every concurrent caller waits for that one
  (an `asyncio.Lock`), so a thousand PUTs never ask for a thousand tokens. After a 401,
  `refresh_after(failed)` renews only if nobody has already.
- `OAuth1Signer` signs each attempt afresh (new nonce and timestamp), query string included
  in the base string, JSON body not signed (OneRoster 1.1, RFC 5849 one-legged).

Neither ever puts a secret, token or signature in a message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, quote_plus, urlencode

import httpx
from oauthlib.oauth1 import (  # type: ignore[import-untyped]
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    Client,
)

from sislink.oneroster.consumer.exceptions import TokenResponseInvalid
from sislink.oneroster.consumer.settings import OAuth1Settings, OAuth2Settings

REFRESH_MARGIN_S = 60.0
"""Renew a token this long before it expires (or at 90% of its life, if that is sooner)."""

DEFAULT_TOKEN_LIFETIME_S = 3600.0
"""Assumed when the token response has no usable `expires_in` (missing, zero, negative, not a
number): RFC 6749 leaves it optional, and renewing on every call would hammer the endpoint."""

MAX_TOKEN_LENGTH = 8192
"""Longer than any bearer token a SIS issues (JWTs included): anything longer is not a token."""

_TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")
"""A token goes in an HTTP header: visible ASCII only (RFC 6750's b64token is a subset), so a
line break or a control character in it could add headers of the SIS's choosing."""

MAX_REFUSAL_TEXT = 300
"""How much of a token endpoint's `error` / `error_description` is shown."""


@dataclass(frozen=True)
class Token:
    """A bearer token and when (time.monotonic) it should be renewed."""

    access_token: str = field(repr=False)
    renew_at: float
    scope: str | None = None
    serial: int = 0  # which token of this cache it is (1 = the first one fetched)

    def is_fresh(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.renew_at


def build_token_request(settings: OAuth2Settings, scope: str) -> httpx.Request:
    """The client-credentials POST: form body, credentials in Basic or in the form."""
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    headers = {"Accept": "application/json"}
    if settings.credentials_in == "basic":
        # RFC 6749 section 2.3.1: form-encode id and secret before joining them.
        pair = f"{quote(settings.client_id, safe='')}:{quote(settings.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    else:
        form["client_id"] = settings.client_id
        form["client_secret"] = settings.client_secret
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return httpx.Request(
        "POST", settings.token_url, headers=headers, content=urlencode(form).encode("ascii")
    )


def read_token_response(response: httpx.Response, *, serial: int, now: float) -> Token:
    """The token in a 200 answer from the token endpoint; TokenResponseInvalid (naming the
    token endpoint, never the token) when the answer holds no usable token."""
    where = f"The token endpoint (POST {response.request.url.path}) answered 200"

    def invalid(what: str) -> TokenResponseInvalid:
        return TokenResponseInvalid(
            f"{where} {what}: check the token URL, or ask the SIS vendor to fix its token "
            "endpoint.",
            method="POST",
            path=response.request.url.path,
        )

    try:
        data = response.json()
    except ValueError:
        raise invalid("with a body that is not JSON (a web page?)") from None
    if not isinstance(data, dict):
        raise invalid("with JSON that is not an object")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise invalid("without an access_token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise invalid(f"with an access_token of {len(token):,} characters, too long to be one")
    if not _TOKEN_CHARACTERS.fullmatch(token):
        # Never shown: a token is a secret, and this one could rewrite a log line or a header.
        raise invalid("with an access_token holding spaces, line breaks or control characters")
    token_type = data.get("token_type")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        raise invalid(f"with a token of type {printable(token_type, 40)!r}, not Bearer")
    lifetime = token_lifetime(data.get("expires_in"))
    margin = min(REFRESH_MARGIN_S, lifetime * 0.1)
    scope = data.get("scope")
    granted = scope if isinstance(scope, str) and printable(scope, len(scope)) == scope else None
    return Token(token, now + lifetime - margin, granted, serial)


def token_lifetime(expires_in: object) -> float:
    """Seconds a token lives: `expires_in` when it is a positive, finite number (or a string of
    one), else DEFAULT_TOKEN_LIFETIME_S."""
    if isinstance(expires_in, bool):
        return DEFAULT_TOKEN_LIFETIME_S
    try:
        lifetime = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_TOKEN_LIFETIME_S
    if not math.isfinite(lifetime) or lifetime <= 0:
        return DEFAULT_TOKEN_LIFETIME_S
    return lifetime


def printable(text: str, limit: int = MAX_REFUSAL_TEXT) -> str:
    """`text` as sislink may show it: control characters and line breaks as spaces, cut to
    `limit` characters."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


@dataclass(frozen=True)
class TokenRefusal:
    """What a token endpoint said when it refused (RFC 6749 section 5.2), as text to show."""

    error: str | None
    description: str | None

    @property
    def words(self) -> str:
        """`invalid_client: Client authentication failed`, or "" when it said nothing usable."""
        return ": ".join(x for x in (self.error, self.description) if x)


def scopes_asked(request: httpx.Request) -> str:
    """The `scope` a token request asked for (from its form body), "" if none."""
    try:
        form = parse_qs(request.content.decode("ascii"))
    except (UnicodeDecodeError, httpx.RequestNotRead):
        return ""
    return " ".join(form.get("scope", []))


def read_token_refusal(response: httpx.Response) -> TokenRefusal:
    """The `error` and `error_description` of a refusal, only where they are strings (a server
    that sends an object there gets neither shown as a Python dict)."""
    try:
        data = response.json()
    except ValueError:
        return TokenRefusal(None, None)
    if not isinstance(data, dict):
        return TokenRefusal(None, None)
    error, description = data.get("error"), data.get("error_description")
    return TokenRefusal(
        printable(error, 80) or None if isinstance(error, str) else None,
        printable(description) or None if isinstance(description, str) else None,
    )


HIDDEN = "[hidden]"
"""What a secret the SIS echoed back becomes in a message."""

SHORTEST_HIDDEN = 4
"""Shorter values are not searched for: hiding every "1" of a message would hide nothing real
and garble the rest (no SIS issues a secret or token that short)."""


def hide_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` (words a SIS sent) with each of `secrets` in it replaced by [hidden], the longest
    first, so a secret that holds another is hidden whole."""
    for secret in sorted({s for s in secrets if len(s) >= SHORTEST_HIDDEN}, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def secrets_held(
    auth: OAuth2Settings | OAuth1Settings, headers: Iterable[Mapping[str, str]]
) -> list[str]:
    """Every secret a client holds, as it is and as it went out: the client or OAuth 1 secret,
    form-encoded (as in a token request's body), percent-encoded (as in a Basic pair) and the
    Basic value itself, and the values of the vendor and gradebook headers. The current token
    is added by the caller (it changes)."""
    held = [value for header in headers for value in header.values()]
    if isinstance(auth, OAuth2Settings):
        secret = auth.client_secret
        pair = f"{quote(auth.client_id, safe='')}:{quote(secret, safe='')}"
        held += [secret, quote(secret, safe=""), quote_plus(secret)]
        held.append(base64.b64encode(pair.encode()).decode("ascii"))
    else:
        held += [auth.secret, quote(auth.secret, safe="")]
    return held


class OAuth2TokenCache:
    """One token shared by every call of a client, renewed once for all concurrent callers."""

    def __init__(self, fetch: Callable[[int], Awaitable[Token]]) -> None:
        """`fetch(serial)` asks the token endpoint for a new token (the client does the I/O)."""
        self._fetch = fetch
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.tokens_fetched = 0
        self.previous: Token | None = None  # a late answer may echo the token it refused

    @property
    def current(self) -> Token | None:
        """The token in use, if any (to hide it in the SIS's words, never to show it)."""
        return self._token

    async def token(self) -> Token:
        token = self._token
        if token is not None and token.is_fresh():
            return token
        async with self._lock:
            token = self._token
            if token is not None and token.is_fresh():
                return token  # someone renewed it while we waited
            return await self._renew()

    async def refresh_after(self, failed: Token) -> Token:
        """A new token after `failed` was refused, fetched only if nobody already has."""
        async with self._lock:
            token = self._token
            if token is not None and token.serial != failed.serial:
                return token
            return await self._renew()

    async def _renew(self) -> Token:
        token = await self._fetch(self.tokens_fetched + 1)
        self.tokens_fetched += 1
        self.previous, self._token = self._token, token
        return token

    async def authorise(self, request: httpx.Request) -> Token:
        """Puts the bearer token on `request`; returns it, to renew it if it is refused."""
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        return token


def _keeps_signatures_out(record: logging.LogRecord) -> bool:
    """oauthlib logs each signature it computes at DEBUG ("Signature: ..."), and parameters
    that may include one: such lines never reach a log, whatever its level."""
    text = str(record.msg)
    return not (text.startswith("Signature") or "oauth_signature" in text)


logging.getLogger("oauthlib.oauth1.rfc5849").addFilter(_keeps_signatures_out)


class OAuth1Signer:
    """Signs requests with OAuth 1.0a (HMAC-SHA256 or HMAC-SHA1), the query string included."""

    def __init__(self, settings: OAuth1Settings) -> None:
        method = (
            SIGNATURE_HMAC_SHA1
            if settings.signature_method == "HMAC-SHA1"
            else SIGNATURE_HMAC_SHA256
        )
        self._client = Client(settings.key, client_secret=settings.secret, signature_method=method)

    def __repr__(self) -> str:
        return "OAuth1Signer(<credentials hidden>)"

    def sign(self, request: httpx.Request) -> None:
        """Sets `Authorization: OAuth ...` for this exact URL and method (a fresh nonce each time).

        The body is not part of the signature: OneRoster sends JSON, which RFC 5849 leaves out.
        """
        _, headers, _ = self._client.sign(str(request.url), http_method=request.method)
        request.headers["Authorization"] = headers["Authorization"]
