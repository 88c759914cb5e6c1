"""Sign in with the school's accounts: OpenID Connect, authorisation code flow with PKCE
(issue 18). The provider settings and who a person is are `classroom.services.sign_in`; this
module is the protocol and the two pages of the flow:

- `GET /login/oidc/start/{provider}`: a new sign-in (random `state`, `nonce` and PKCE
  verifier, kept server-side and used once; the `state` also goes in an HttpOnly cookie, so
  that the answer is taken only in the browser that asked), then off to the provider's
  authorisation endpoint from its discovery document;
- `GET /login/oidc/callback`: the provider's answer. The `state` must be this browser's and
  not used before; the code is exchanged (with the PKCE verifier and the client secret); the
  ID token's signature is checked against the provider's JWKS (fetched at run time, again when
  a key id is new), and its issuer, audience (and `azp`), expiry, issue time and `nonce`;
  the person is then found in the roster. Every refusal is one sentence on the sign-in page.

Discovery documents and key sets are cached per issuer for ten minutes.
"""

from __future__ import annotations

import hmac
import json
import logging
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpcore
import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from fastapi import APIRouter, Depends, Request
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from starlette.responses import RedirectResponse, Response

from sislink.classroom import Classroom, ClassroomError
from sislink.classroom.models import OidcProvider
from sislink.classroom.services import sign_in
from sislink.classroom.services.sign_in import PendingSignIn, SignInRefused
from sislink.console.auth import get_classroom
from sislink.console.i18n import _
from sislink.console.pages.base import current_session, redirect, render, set_session
from sislink.oneroster.consumer.transport import environment_proxy_for

logger = logging.getLogger("sislink.console.oidc")
router = APIRouter()

STATE_COOKIE = "sislink_oidc_state"
SCOPES = "openid email profile"
CACHE_S = 600.0
LEEWAY_S = 60
TIMEOUT_S = 10.0
# A discovery document, key set or token answer is a few kB (Microsoft's key set, the largest
# seen, about 10 kB): more than this is not a provider's answer, and is not read into memory.
MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Discovery:
    """What sislink uses from a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: tuple[str, ...]
    auth_methods: tuple[str, ...]


class OidcProtocol:
    """Discovery, keys, the code exchange and the ID token checks, for any provider."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, timeout_s: float = TIMEOUT_S
    ) -> None:
        self.clock = clock
        # How long one answer of the provider may take in all, dribbled or not (a sign-in
        # waits for it, and so does one of the console's worker threads).
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._discovery: dict[str, tuple[float, Discovery]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}

    def discover(self, issuer: str) -> Discovery:
        with self._lock:
            cached = self._discovery.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        document = self._get_json(f"{issuer}/.well-known/openid-configuration", issuer)
        # The issuer is stored without a trailing slash, but some providers' issuers end in
        # one (Auth0's do): the document's own issuer is then the one ID tokens must name.
        named = document.get("issuer")
        if named not in (issuer, f"{issuer}/"):
            raise SignInRefused(
                f"The discovery document at {issuer} names another issuer "
                f"({str(document.get('issuer'))[:200]!r}); check the issuer URL set for this "
                "provider (for Microsoft Entra ID: https://login.microsoftonline.com/TENANT/v2.0)."
            )
        try:
            found = Discovery(
                issuer=str(named),
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
                end_session_endpoint=(
                    str(document["end_session_endpoint"])
                    if document.get("end_session_endpoint")
                    else None
                ),
                algorithms=tuple(
                    alg
                    for alg in document.get("id_token_signing_alg_values_supported", ["RS256"])
                    if isinstance(alg, str) and alg != "none" and not alg.startswith("HS")
                ),
                auth_methods=tuple(
                    document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
                ),
            )
        except KeyError as missing:
            raise SignInRefused(
                f"The provider at {issuer} has no {missing.args[0]} in its discovery document, "
                "so sislink cannot sign in with it; check the issuer URL."
            ) from None
        for endpoint in (found.authorization_endpoint, found.token_endpoint, found.jwks_uri):
            _check_endpoint(issuer, endpoint)
        if found.end_session_endpoint is not None:
            # It becomes a link on sislink's sign-in page: https (or a loopback test
            # provider's http) or none at all, never e.g. a javascript: URL.
            try:
                _check_endpoint(issuer, found.end_session_endpoint)
            except SignInRefused:
                logger.warning("%s names an end-session endpoint that is not https", issuer)
                found = replace(found, end_session_endpoint=None)
        with self._lock:
            self._discovery[issuer] = (time.monotonic(), found)
        return found

    def _get_json(self, url: str, issuer: str) -> dict[str, Any]:
        return _get_json_within(url, issuer, self.timeout_s)

    def keys(self, discovery: Discovery, *, fresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys.get(discovery.issuer)
        if not fresh and cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        document = self._get_json(discovery.jwks_uri, discovery.issuer)
        try:
            key_set = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise SignInRefused(
                f"The signing keys that {discovery.issuer} publishes cannot be read; try again "
                "later, or ask the provider's administrator."
            ) from None
        with self._lock:
            self._keys[discovery.issuer] = (time.monotonic(), key_set)
        return key_set

    def authorization_url(
        self, provider: OidcProvider, discovery: Discovery, state: str, pending: PendingSignIn
    ) -> str:
        extra: dict[str, str] = {}
        if provider.domain:
            extra["hd"] = provider.domain  # Google Workspace: offer only the school's accounts
        return str(
            prepare_grant_uri(
                discovery.authorization_endpoint,
                provider.client_id,
                "code",
                redirect_uri=pending.redirect_uri,
                scope=SCOPES,
                state=state,
                nonce=pending.nonce,
                code_challenge=create_s256_code_challenge(pending.code_verifier),
                code_challenge_method="S256",
                **extra,
            )
        )

    def exchange_code(
        self,
        provider: OidcProvider,
        secret: str,
        discovery: Discovery,
        pending: PendingSignIn,
        code: str,
    ) -> dict[str, Any]:
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        if "client_secret_basic" in discovery.auth_methods or (
            "client_secret_post" not in discovery.auth_methods
        ):
            # RFC 6749 2.3.1: both parts form-encoded before they are joined.
            auth = httpx.BasicAuth(quote_plus(provider.client_id), quote_plus(secret))
        else:
            body.update(client_id=provider.client_id, client_secret=secret)
        try:
            status, token = _bounded_answer(
                "POST",
                discovery.token_endpoint,
                self.timeout_s,
                data=body,
                auth=auth,
                headers={"Accept": "application/json"},
            )
        except _AnswerOutOfBounds as exc:
            logger.warning("the provider %s's token answer %s", provider.issuer, exc)
            raise SignInRefused(
                f"{provider.name}'s answer to finish signing you in {exc}, so sislink stopped "
                "reading it; try again in a minute, and if it goes on, tell your administrator."
            ) from None
        except (httpx.HTTPError, ValueError):
            raise SignInRefused(
                f"sislink could not reach {provider.name} to finish signing you in; try again in "
                "a minute."
            ) from None
        if not isinstance(token, dict):
            token = {}
        if status != 200 or "error" in token:
            error = str(token.get("error") or f"HTTP {status}")[:80]
            logger.info("the provider %s refused a code: %s", provider.issuer, error)
            raise SignInRefused(
                f"{provider.name} did not accept this sign-in's code ({error}): it may have "
                "been used already, or sislink's client ID or secret are not the ones "
                "registered there; start again, and if it goes on, tell your administrator."
            )
        if not token.get("id_token"):
            raise SignInRefused(
                f"{provider.name} answered without an ID token; check that the openid scope is "
                "allowed for sislink at the provider."
            )
        return token

    def verify_id_token(
        self,
        provider: OidcProvider,
        discovery: Discovery,
        id_token: str,
        *,
        nonce: str,
        access_token: str | None = None,
    ) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, times and nonce are
        right; SignInRefused saying which is wrong otherwise."""
        algorithms = list(discovery.algorithms) or ["RS256"]
        try:
            try:
                decoded = jwt.decode(id_token, self.keys(discovery), algorithms=algorithms)
            except InvalidKeyIdError:
                # The provider may have rotated its keys since they were cached.
                decoded = jwt.decode(
                    id_token, self.keys(discovery, fresh=True), algorithms=algorithms
                )
        except (JoseError, ValueError, TypeError):
            raise SignInRefused(
                f"The ID token from {provider.name} is not signed with the provider's keys, so "
                "sislink will not trust it; start again from the sign-in page."
            ) from None
        claims: dict[str, Any] = dict(decoded.claims)
        now = self.clock()
        if claims.get("iss") != discovery.issuer:
            raise SignInRefused(
                f"The ID token was issued by {str(claims.get('iss'))[:200]!r}, not by "
                f"{discovery.issuer}; sislink will not sign you in with it."
            )
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or provider.client_id not in audiences:
            raise SignInRefused(
                f"The ID token was made for another application (audience {audience!r}), not "
                "for sislink; sislink will not sign you in with it."
            )
        if len(audiences) > 1 and claims.get("azp") != provider.client_id:
            raise SignInRefused(
                "The ID token names several applications and sislink is not the one it was "
                "given to (azp); sislink will not sign you in with it."
            )
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or now > expires + LEEWAY_S:
            raise SignInRefused(
                "The ID token has expired (or says no expiry); start again from the sign-in "
                "page, and check this server's clock if it goes on."
            )
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or issued > now + LEEWAY_S:
            raise SignInRefused(
                "The ID token says it was issued in the future; check this server's clock."
            )
        if not isinstance(claims.get("nonce"), str) or not _same(str(claims["nonce"]), nonce):
            raise SignInRefused(
                "The ID token does not belong to this sign-in (its nonce differs): it was "
                "replayed or swapped; start again from the sign-in page."
            )
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInRefused("The ID token names nobody (no subject); start again.")
        try:
            # Authlib's own checks too (at_hash against the access token, auth_time, azp).
            CodeIDToken(
                claims,
                decoded.header,
                {"iss": {"essential": True, "values": [discovery.issuer]}},
                {"nonce": nonce, "client_id": provider.client_id, "access_token": access_token},
            ).validate(now=int(now), leeway=LEEWAY_S)
        except (JoseError, ValueError, TypeError) as exc:
            raise SignInRefused(
                f"The ID token from {provider.name} failed a check ({type(exc).__name__}); "
                "start again from the sign-in page."
            ) from None
        return claims

    def end_session_url(self, provider: OidcProvider, after: str) -> str | None:
        """Where to sign out at the provider too, if it offers that (RP-initiated logout)."""
        try:
            discovery = self.discover(provider.issuer)
        except SignInRefused:
            return None
        if discovery.end_session_endpoint is None:
            return None
        query = urlencode({"client_id": provider.client_id, "post_logout_redirect_uri": after})
        joiner = "&" if "?" in discovery.end_session_endpoint else "?"
        return f"{discovery.end_session_endpoint}{joiner}{query}"


def _same(given: str, kept: str) -> bool:
    """Constant-time equality of two texts, whatever characters they hold (hmac.compare_digest
    raises TypeError for a str that is not ASCII)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), kept.encode("utf-8", "surrogatepass")
    )


def _check_endpoint(issuer: str, endpoint: str) -> None:
    """A provider's endpoints are https (the client secret and codes go there); plain http
    only on loopback, and only for a loopback issuer (a test provider)."""
    from sislink.classroom.services.sign_in import check_issuer

    parts = urlsplit(endpoint)
    if parts.scheme == "https" and parts.hostname:
        return
    try:
        check_issuer(endpoint)
        loopback_issuer = urlsplit(issuer).scheme == "http"
    except ClassroomError:
        loopback_issuer = False
    if not (parts.scheme == "http" and loopback_issuer):
        raise SignInRefused(
            f"The provider at {issuer} names an endpoint that is not https "
            f"({endpoint[:200]}), so sislink will not send it codes or secrets; check the "
            "issuer URL."
        )


class _AnswerOutOfBounds(Exception):
    """A provider's answer larger than MAX_ANSWER_BYTES, or slower than the time allowed; its
    text ends the sentence "the answer ...", e.g. "was larger than 1 MiB"."""


def _bounded_answer(method: str, url: str, timeout_s: float, **send: Any) -> tuple[int, Any]:
    """The status and JSON body of one answer of the provider, read at most MAX_ANSWER_BYTES
    and `timeout_s` in all. httpx's own timeout is per read: a provider that dribbles its
    answer (a byte every few seconds, the status line and headers too) or never ends it would
    hold the sign-in, and a console thread, for as long as it likes, and fill memory with what
    it sends. So every read and write on the connection waits at most the time left
    (`_DeadlineBackend`), and the body is asked for as it is (`identity`): one sent compressed
    anyway is inflated here a bounded step at a time, never a whole network read at once as
    httpx would (a few kB of gzip in two layers are hundreds of MB)."""
    deadline = time.monotonic() + timeout_s
    headers = {**send.pop("headers", {}), "Accept-Encoding": "identity"}
    transport = None if environment_proxy_for(url) else _deadline_transport(deadline)
    try:
        with (
            httpx.Client(transport=transport, timeout=timeout_s, follow_redirects=False) as client,
            client.stream(method, url, headers=headers, **send) as answer,
        ):
            declared = answer.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise _AnswerOutOfBounds(_TOO_LARGE)
            inflater = _inflater_for(answer.headers.get("content-encoding", ""))
            body = bytearray()
            for raw in answer.iter_raw():
                body += raw if inflater is None else _inflated(inflater, raw, body)
                if len(body) > MAX_ANSWER_BYTES:
                    raise _AnswerOutOfBounds(_TOO_LARGE)
                if time.monotonic() > deadline:
                    raise _AnswerOutOfBounds(f"took longer than {timeout_s:g} s")
            status = answer.status_code
    except httpx.TimeoutException:
        if time.monotonic() < deadline:
            raise
        raise _AnswerOutOfBounds(f"took longer than {timeout_s:g} s") from None
    try:
        return status, json.loads(body)
    except RecursionError:
        # Nested deeper than Python's parser goes: not a provider's answer either.
        raise ValueError("JSON nested too deep") from None


_TOO_LARGE = f"was larger than {MAX_ANSWER_BYTES // 1024 // 1024} MiB"


def _inflater_for(encoding: str) -> zlib._Decompress | None:
    """The decompressor of a body sent with this Content-Encoding though sislink asked for
    none (gzip or deflate); None for none; ValueError for any other (not asked, not read)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise ValueError(f"a Content-Encoding sislink did not ask for: {encoding[:40]!r}")


def _inflated(inflater: zlib._Decompress, raw: bytes, body: bytearray) -> bytes:
    """`raw` inflated, but no more than one byte past what the body may still grow by (more
    is refused at once, the rest of `raw` left unread); ValueError if it does not inflate."""
    try:
        return inflater.decompress(raw, MAX_ANSWER_BYTES - len(body) + 1)
    except zlib.error:
        raise ValueError("a body that does not inflate") from None


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until the answer's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(self._deadline, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(self._deadline, timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(
            ssl_context, server_hostname, _time_left(self._deadline, timeout)
        )
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, each connection a `_DeadlineStream`."""

    def __init__(self, deadline: float) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _time_left(self._deadline, timeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover - providers are reached over TCP
        stream = self._backend.connect_unix_socket(
            path, _time_left(self._deadline, timeout), socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore's retries only
        self._backend.sleep(seconds)


def _time_left(deadline: float, timeout: float | None) -> float:
    """The wait allowed for one read, write or connect: httpx's own, cut to the time left;
    httpcore's timeout at once when none is left (httpx maps it to its TimeoutException)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the time allowed for the answer is spent")
    return left if timeout is None else min(timeout, left)


def _deadline_transport(deadline: float) -> httpx.HTTPTransport:
    """httpx's transport (its certificate checks), its pool on `_DeadlineBackend`. httpx has no
    argument for httpcore's network backend, so its pool is replaced by the same pool on ours
    (`_pool`, where httpx, pinned in requirements.lock, keeps it; as
    `oneroster.consumer.transport` does). A call through an environment proxy keeps httpx's
    own transport (only the checks between reads of the body then bound its time)."""
    context = httpx.create_ssl_context()
    transport = httpx.HTTPTransport(verify=context)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context, network_backend=_DeadlineBackend(deadline)
    )
    return transport


def _get_json_within(url: str, issuer: str, timeout_s: float) -> dict[str, Any]:
    try:
        status, document = _bounded_answer("GET", url, timeout_s)
    except _AnswerOutOfBounds as exc:
        logger.warning("%s from the sign-in provider %s %s", url, issuer, exc)
        raise SignInRefused(
            f"The answer of the sign-in provider {issuer} at {url} {exc}, so sislink stopped "
            "reading it; try again in a minute, and if it goes on, ask an administrator to "
            "check the issuer URL."
        ) from None
    except (httpx.HTTPError, ValueError):
        status, document = 0, None
    if not 200 <= status < 300:
        raise SignInRefused(
            f"sislink could not read {url} from the sign-in provider {issuer}; try again in a "
            "minute, and if it goes on, ask an administrator to check the issuer URL."
        )
    if not isinstance(document, dict):
        raise SignInRefused(f"{url} did not answer with a JSON object; check the issuer URL.")
    return document


def protocol_of(request: Request) -> OidcProtocol:
    """The app's protocol helper (`app.state.oidc`), made on first use."""
    found = getattr(request.app.state, "oidc", None)
    if not isinstance(found, OidcProtocol):
        found = OidcProtocol()
        request.app.state.oidc = found
    return found


def apply_environment_once(request: Request, classroom: Classroom) -> None:
    """Providers named by SISLINK_OIDC_PROVIDERS are set when the console first needs them."""
    state = request.app.state
    if getattr(state, "oidc_environment_applied", False):
        return
    try:
        with classroom.transaction() as session:
            sign_in.apply_environment(session, classroom.secret_box)
    except ClassroomError as exc:
        logger.error("sign-in providers from the environment not set: %s", exc.message)
    state.oidc_environment_applied = True


def _refused(request: Request, message: str, status_code: int = 403) -> Response:
    from sislink.console.pages.login import login_context

    classroom = get_classroom(request)
    current_session(request, classroom)
    answer = render(
        request,
        "login.html",
        {**login_context(request, classroom, "/"), "problem": message},
        status_code=status_code,
    )
    answer.delete_cookie(STATE_COOKIE, path="/login/oidc")
    return answer


@router.get("/login/oidc/start/{provider_id}")
def start(
    request: Request,
    provider_id: int,
    next: str = "/",
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    from sislink.console.pages.login import safe_next

    apply_environment_once(request, classroom)
    protocol = protocol_of(request)
    try:
        with classroom.session() as session:
            provider = sign_in.get_provider(session, provider_id)
            session.expunge(provider)
        discovery = protocol.discover(provider.issuer)
        with classroom.transaction() as session:
            state, pending = sign_in.start_pending(
                session,
                classroom.secret_box,
                provider.id,
                str(request.url_for("oidc_callback")),
                safe_next(next),
            )
        url = protocol.authorization_url(provider, discovery, state, pending)
    except ClassroomError as exc:
        return _refused(request, exc.message, 502 if isinstance(exc, SignInRefused) else 404)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(sign_in.PENDING_VALID_FOR.total_seconds()),
        httponly=True,
        samesite="lax",  # the provider's redirect back is a top-level GET: Lax lets it through
        secure=request.url.scheme == "https",
        path="/login/oidc",
    )
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
def callback(
    request: Request,
    state: str = "",
    code: str = "",
    error: str = "",
    iss: str = "",
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not cookie or not _same(state, cookie):
        return _refused(
            request,
            _(
                "This answer from the sign-in provider does not match a sign-in started in "
                "this browser (its state differs or is missing); start again from the sign-in "
                "page."
            ),
            400,
        )
    protocol = protocol_of(request)
    try:
        with classroom.transaction() as session:
            pending = sign_in.take_pending(session, classroom.secret_box, state)
            provider = sign_in.get_provider(session, pending.provider_id)
            secret = sign_in.client_secret(provider, classroom.secret_box)
            session.expunge(provider)
        if error or not code:
            raise SignInRefused(
                f"{provider.name} did not sign you in ({error[:80] or 'no code came back'}); "
                "start again from the sign-in page."
            )
        discovery = protocol.discover(provider.issuer)
        if iss and iss != discovery.issuer:
            # RFC 9207: the answer names the provider that gave it; with several providers
            # set, a code from another one must not go to this one's token endpoint.
            raise SignInRefused(
                f"This answer came from {iss[:200]}, not from {provider.name} where this "
                "sign-in started; start again from the sign-in page."
            )
        token = protocol.exchange_code(provider, secret, discovery, pending, code)
        claims = protocol.verify_id_token(
            provider,
            discovery,
            str(token["id_token"]),
            nonce=pending.nonce,
            access_token=token.get("access_token"),
        )
        with classroom.transaction() as session:
            # The provider's administrators' group first, on its own: a role it no longer
            # gives is taken away even if this sign-in is then refused.
            sign_in.follow_admin_group(
                session, sign_in.get_provider(session, pending.provider_id), claims
            )
        with classroom.transaction() as session:
            provider = sign_in.get_provider(session, pending.provider_id)
            person = sign_in.identify(session, provider, claims)
            key = sign_in.signed_in(session, provider, person)
    except SignInRefused as exc:
        logger.info("a sign-in with a provider was refused: %s", exc.message)
        return _refused(request, exc.message)
    except ClassroomError as exc:
        return _refused(request, exc.message, 409)
    set_session(request, current_session(request, classroom).signed_in_with(key))
    response = redirect(request, pending.next_path)
    response.delete_cookie(STATE_COOKIE, path="/login/oidc")
    return response
