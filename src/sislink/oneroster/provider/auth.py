"""Authentication of the built-in SIS: OAuth 2 client credentials and OAuth 1.0a signed requests.

OAuth 2: a token endpoint takes the client id and secret by HTTP Basic or in the form, checks the
requested scopes (1.1 or 1.2 scope URIs, or their short names) and issues a bearer token that
expires. OAuth 1.0a: each request is verified with oauthlib's signature functions, the query
string included in the base string, HMAC-SHA256 or HMAC-SHA1, within a timestamp window, and a
nonce is accepted once. Either way the request gets a `Grant`: the client and its scopes.

Secrets and tokens are compared in constant time; tokens are kept only as hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from oauthlib.oauth1.rfc5849 import signature as oauth1_signature  # type: ignore[import-untyped]
from oauthlib.oauth1.rfc5849.utils import (  # type: ignore[import-untyped]
    escape,
    parse_authorization_header,
)

from sislink.oneroster.versions import (
    CLASSROOM_SCOPES,
    DEMOGRAPHICS_READ,
    GRADEBOOK_CORE_READ,
    ROSTER_CORE_READ,
    VERSIONS,
)

ALL_SCOPES: tuple[str, ...] = (
    *CLASSROOM_SCOPES,
    ROSTER_CORE_READ,
    DEMOGRAPHICS_READ,
    GRADEBOOK_CORE_READ,
)
"""Every scope the provider knows, by short name."""


class AuthError(Exception):
    """Why a request or token request is refused; `status` is 400, 401 or 403."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Grant:
    """Who is calling and what they may do."""

    client_id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class IssuedToken:
    access_token: str = field(repr=False)
    expires_in: int
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str = field(repr=False)
    scopes: frozenset[str]  # what this client may be granted (short names)


def scope_short_name(text: str) -> str | None:
    """`https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly` (or 1.1's, or the bare
    name) -> `roster.readonly`; None for a scope the provider does not know."""
    for spec in VERSIONS.values():
        if text.startswith(spec.scope_prefix):
            text = text[len(spec.scope_prefix) :]
            break
    return text if text in ALL_SCOPES else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Authenticator:
    """The provider's clients, the tokens it issued, and the OAuth 1.0a nonces it has seen."""

    def __init__(
        self,
        clients: Iterable[Client],
        *,
        token_ttl_s: int = 3600,
        timestamp_window_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clients = {c.client_id: c for c in clients}
        self.token_ttl_s = token_ttl_s
        self.timestamp_window_s = timestamp_window_s
        self._clock = clock
        self._tokens: dict[str, tuple[Grant, float]] = {}
        self._nonces: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    # ---- OAuth 2 --------------------------------------------------------------------------

    def client_credentials(
        self,
        authorization: str | None,
        form: dict[str, str],
        accepted: Collection[str] = ("basic", "post"),
    ) -> tuple[str, str]:
        """The client id and secret of a token request: HTTP Basic first, else the form.
        `accepted` names the methods this SIS takes ("basic", "post"); another is refused."""
        basic = bool(authorization and authorization.lower().startswith("basic "))
        if basic and "basic" not in accepted:
            raise AuthError(
                401,
                "invalid_client",
                "This SIS does not take client credentials by HTTP Basic: send client_id and "
                "client_secret in the form body (client_secret_post).",
            )
        if not basic and form.get("client_id") and "post" not in accepted:
            raise AuthError(
                401,
                "invalid_client",
                "This SIS does not take client credentials in the form body: send them by "
                "HTTP Basic (client_secret_basic).",
            )
        if basic and authorization:
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                client_id, _, secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                raise AuthError(
                    401,
                    "invalid_client",
                    "The Basic credentials are not valid base64 of id:secret.",
                ) from None
            return unquote(client_id), unquote(secret)
        if form.get("client_id"):
            return form["client_id"], form.get("client_secret", "")
        raise AuthError(
            401,
            "invalid_client",
            "No client credentials: send them as HTTP Basic or as client_id and client_secret in the form.",
        )

    def issue_token(
        self, client_id: str, secret: str, scope: str | None, *, scope_required: bool = False
    ) -> IssuedToken:
        client = self._authenticate(client_id, secret)
        requested = (scope or "").split()
        if not requested:
            if scope_required:
                raise AuthError(
                    400, "invalid_scope", "This SIS needs at least one scope in the token request."
                )
            granted = tuple(sorted(client.scopes))
        else:
            names = []
            for text in requested:
                name = scope_short_name(text)
                if name is None:
                    raise AuthError(400, "invalid_scope", f"Unknown scope {text!r}.")
                names.append(name)
            granted = tuple(n for n in dict.fromkeys(names) if n in client.scopes)
            if not granted:
                raise AuthError(
                    400, "invalid_scope", "None of the requested scopes is allowed for this client."
                )
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[_token_hash(token)] = (
                Grant(client.client_id, frozenset(granted)),
                self._clock() + self.token_ttl_s,
            )
        return IssuedToken(token, self.token_ttl_s, granted)

    def bearer(self, token: str) -> Grant:
        with self._lock:
            entry = self._tokens.get(_token_hash(token))
            if entry is not None and entry[1] <= self._clock():
                del self._tokens[_token_hash(token)]
                raise AuthError(
                    401, "invalid_token", "The access token has expired; request a new one."
                )
        if entry is None:
            raise AuthError(401, "invalid_token", "The access token is not known to this SIS.")
        return entry[0]

    def _authenticate(self, client_id: str, secret: str) -> Client:
        client = self._clients.get(client_id)
        # Compare against something even for an unknown id, so timing tells nothing.
        expected = client.secret if client else secrets.token_hex(16)
        if client is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            raise AuthError(401, "invalid_client", "Unknown client id or wrong secret.")
        return client

    # ---- OAuth 1.0a -----------------------------------------------------------------------

    def verify_oauth1(
        self,
        method: str,
        url: str,
        authorization: str,
        form_params: Sequence[tuple[str, str]] = (),
    ) -> Grant:
        """Verify an OAuth 1.0a signed request. `url` is the full URL as the client addressed it,
        query string included (it is part of the signature base string)."""
        try:
            # Header values are percent-encoded (RFC 5849 section 3.5.1).
            header_params = {k: unquote(v) for k, v in parse_authorization_header(authorization)}
        except (ValueError, IndexError):
            raise AuthError(
                401, "invalid_request", "The OAuth Authorization header cannot be parsed."
            ) from None
        for required in (
            "oauth_consumer_key",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_nonce",
        ):
            if required not in header_params:
                raise AuthError(401, "invalid_request", f"The OAuth header lacks {required}.")
        method_name = header_params["oauth_signature_method"]
        if method_name not in ("HMAC-SHA256", "HMAC-SHA1"):
            raise AuthError(
                401,
                "invalid_request",
                f"Signature method {method_name} is not supported; use HMAC-SHA256 or HMAC-SHA1.",
            )
        client = self._clients.get(header_params["oauth_consumer_key"])
        if client is None:
            raise AuthError(401, "invalid_client", "Unknown consumer key.")
        try:
            timestamp = int(header_params["oauth_timestamp"])
        except ValueError:
            raise AuthError(401, "invalid_request", "oauth_timestamp is not a number.") from None
        now = self._clock()
        if abs(now - timestamp) > self.timestamp_window_s:
            raise AuthError(
                401,
                "invalid_request",
                f"oauth_timestamp is {int(now - timestamp)} s away from this server's clock "
                f"(allowed: {self.timestamp_window_s} s); check the client's clock.",
            )
        base_uri, _, query = url.partition("?")
        params = [(k, v) for k, v in header_params.items() if k not in ("oauth_signature", "realm")]
        params += parse_qsl(query, keep_blank_values=True)
        params += list(form_params)
        base_string = oauth1_signature.signature_base_string(
            method.upper(),
            oauth1_signature.base_string_uri(base_uri),
            oauth1_signature.normalize_parameters(params),
        )
        key = f"{escape(client.secret)}&{escape(header_params.get('oauth_token_secret', ''))}"
        digest = hashlib.sha256 if method_name == "HMAC-SHA256" else hashlib.sha1
        expected = base64.b64encode(
            hmac.new(key.encode(), base_string.encode(), digest).digest()
        ).decode()
        if not hmac.compare_digest(expected, header_params["oauth_signature"]):
            raise AuthError(
                401,
                "invalid_signature",
                "The OAuth signature does not match; sign the method, the URL without its query, "
                "and every query parameter (limit, offset, filter ...) with the secret.",
            )
        nonce_key = (client.client_id, header_params["oauth_nonce"], str(timestamp))
        with self._lock:
            self._forget_old_nonces(now)
            if nonce_key in self._nonces:
                raise AuthError(
                    401, "invalid_nonce", "This oauth_nonce was already used; send a fresh one."
                )
            self._nonces[nonce_key] = now
        return Grant(client.client_id, client.scopes)

    def _forget_old_nonces(self, now: float) -> None:
        # A nonce older than the window cannot come back: its timestamp would be refused.
        horizon = now - 2 * self.timestamp_window_s
        if len(self._nonces) > 10000:
            for key in [k for k, seen in self._nonces.items() if seen < horizon]:
                del self._nonces[key]
