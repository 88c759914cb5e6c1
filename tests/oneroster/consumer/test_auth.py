"""OAuth 1.0a signatures that a standard verifier accepts, and the OAuth 2 token cache."""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature

from sislink.oneroster.consumer import OAuth1Settings, OAuth2Settings
from sislink.oneroster.consumer.auth import (
    OAuth1Signer,
    OAuth2TokenCache,
    Token,
    build_token_request,
    read_token_response,
)
from sislink.oneroster.consumer.paging import with_query
from sislink.oneroster.filters import both, where

USERS = "http://127.0.0.1:8100/ims/oneroster/v1p1/users"


def _verifies(url: str, method: str, authorization: str, secret: str, algorithm: str) -> bool:
    """What a OneRoster 1.1 server does: rebuild the base string from the URL it received."""
    oauth_params = signature.collect_parameters(
        headers={"Authorization": authorization}, exclude_oauth_signature=False
    )
    request = OAuthRequest(url, http_method=method, headers={"Authorization": authorization})
    request.params = signature.collect_parameters(
        uri_query=urlsplit(url).query,
        headers={"Authorization": authorization},
        exclude_oauth_signature=True,
    )
    request.signature = dict(oauth_params)["oauth_signature"]
    verify = {
        "HMAC-SHA256": signature.verify_hmac_sha256,
        "HMAC-SHA1": signature.verify_hmac_sha1,
    }[algorithm]
    return bool(verify(request, client_secret=secret))


def _signed(url: str, method: str, settings: OAuth1Settings) -> str:
    request = httpx.Request(method, url)
    OAuth1Signer(settings).sign(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize("algorithm", ["HMAC-SHA256", "HMAC-SHA1"])
def test_oauth1_signature_over_a_filter_with_spaces_and_quotes_verifies(algorithm: str) -> None:
    settings = OAuth1Settings(key="k-1", secret="s3cret&more", signature_method=algorithm)  # type: ignore[arg-type]
    flt = both(where("email", "=", "o'neil mary@school.org"), where("status", "=", "active"))
    url = with_query(USERS, {"filter": flt.render(), "limit": "100", "offset": "200"})
    authorization = _signed(url, "GET", settings)
    assert f'oauth_signature_method="{algorithm}"' in authorization
    assert _verifies(url, "GET", authorization, "s3cret&more", algorithm)


def test_oauth1_signature_covers_the_query_string() -> None:
    settings = OAuth1Settings(key="k-1", secret="s3cret")
    url = with_query(USERS, {"limit": "100", "offset": "0"})
    authorization = _signed(url, "GET", settings)
    tampered = with_query(USERS, {"limit": "100", "offset": "100"})
    assert _verifies(url, "GET", authorization, "s3cret", "HMAC-SHA256")
    assert not _verifies(tampered, "GET", authorization, "s3cret", "HMAC-SHA256")
    assert not _verifies(url, "GET", authorization, "wrong", "HMAC-SHA256")


def test_oauth1_signs_each_attempt_with_a_fresh_nonce() -> None:
    settings = OAuth1Settings(key="k-1", secret="s3cret")
    nonces = {
        dict(
            signature.collect_parameters(headers={"Authorization": _signed(USERS, "PUT", settings)})
        )["oauth_nonce"]
        for _ in range(5)
    }
    assert len(nonces) == 5


def test_oauth1_signer_repr_shows_no_secret() -> None:
    assert "s3cret" not in repr(OAuth1Signer(OAuth1Settings(key="k", secret="s3cret")))


def test_token_request_sends_credentials_in_basic_by_default() -> None:
    settings = OAuth2Settings(
        token_url="http://127.0.0.1:1/token", client_id="id:1", client_secret="p@ss word"
    )
    request = build_token_request(settings, "scope-a scope-b")
    form = parse_qs(request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["scope-a scope-b"]}
    scheme, encoded = request.headers["Authorization"].split(" ")
    user, password = base64.b64decode(encoded).decode().split(":")
    assert scheme == "Basic"
    assert (unquote(user), unquote(password)) == ("id:1", "p@ss word")


def test_token_request_can_send_credentials_in_the_form() -> None:
    settings = OAuth2Settings(
        token_url="http://127.0.0.1:1/token",
        client_id="id",
        client_secret="sec",
        credentials_in="form",
    )
    request = build_token_request(settings, "")
    form = parse_qs(request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["id"],
        "client_secret": ["sec"],
    }
    assert "Authorization" not in request.headers


def test_token_is_renewed_before_it_expires() -> None:
    response = httpx.Response(
        200,
        json={"access_token": "t", "expires_in": 3600, "scope": "a b"},
        request=httpx.Request("POST", "http://127.0.0.1:1/token"),
    )
    token = read_token_response(response, serial=1, now=1000.0)
    assert token.renew_at == 1000.0 + 3600 - 60
    assert token.scope == "a b"
    short = httpx.Response(
        200,
        json={"access_token": "t", "expires_in": 10},
        request=httpx.Request("POST", "http://127.0.0.1:1/token"),
    )
    assert read_token_response(short, serial=1, now=0.0).renew_at == pytest.approx(9.0)
    assert "t" not in repr(token).replace("Token", "").replace("renew_at", "").replace("scope", "")


@pytest.mark.anyio
async def test_concurrent_callers_share_one_token_fetch() -> None:
    fetched: list[int] = []

    async def fetch(serial: int) -> Token:
        fetched.append(serial)
        await asyncio.sleep(0.01)
        return Token(f"token-{serial}", time.monotonic() + 3600, None, serial)

    cache = OAuth2TokenCache(fetch)
    tokens = await asyncio.gather(*(cache.token() for _ in range(100)))
    assert fetched == [1]
    assert {t.access_token for t in tokens} == {"token-1"}


@pytest.mark.anyio
async def test_a_refused_token_is_renewed_once_for_all_who_saw_it_refused() -> None:
    fetched: list[int] = []

    async def fetch(serial: int) -> Token:
        fetched.append(serial)
        await asyncio.sleep(0.01)
        return Token(f"token-{serial}", time.monotonic() + 3600, None, serial)

    cache = OAuth2TokenCache(fetch)
    refused = await cache.token()
    renewed = await asyncio.gather(*(cache.refresh_after(refused) for _ in range(50)))
    assert fetched == [1, 2]
    assert {t.serial for t in renewed} == {2}


@pytest.mark.anyio
async def test_an_expired_token_is_fetched_again() -> None:
    async def fetch(serial: int) -> Token:
        return Token(f"token-{serial}", time.monotonic() - 1, None, serial)  # born stale

    cache = OAuth2TokenCache(fetch)
    await cache.token()
    await cache.token()
    assert cache.tokens_fetched == 2
