"""No secret, token or signature in any log line (at DEBUG, every logger) or error message,
through runs that renew tokens, retry, and fail: OAuth 2 and OAuth 1.0a."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import unquote

import pytest

from sislink.oneroster.consumer import (
    AuthenticationFailed,
    ConnectionSettings,
    NotFound,
    OAuth1Settings,
    OAuth2Settings,
    OneRosterClient,
    TokenRequestFailed,
)

pytestmark = pytest.mark.anyio
Connect = Callable[..., ConnectionSettings]
Watched = Callable[..., AbstractContextManager[Any]]
WRONG_SECRET = "wrong-secret-9f3a7c"


def _credentials_on_the_wire(authorizations: Iterable[str]) -> set[str]:
    """Every bearer token, Basic credential and OAuth 1.0a signature the SIS received."""
    found: set[str] = set()
    for header in authorizations:
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            found.add(value)
        elif scheme == "Basic":
            found.add(value)
            found.add(base64.b64decode(value).decode().partition(":")[2])
        elif scheme == "OAuth":
            for part in value.split(","):
                name, _, quoted = part.strip().partition("=")
                if name == "oauth_signature":
                    signature = quoted.strip('"')
                    found |= {signature, unquote(signature)}
    return {secret for secret in found if secret}


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    lines = [caplog.text]
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
    return "\n".join(lines)


async def _busy_run(sis: OneRosterClient, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = await sis.page("teachers", limit=1, filter="status='active'")
        assert len(page.records) == 1


async def test_oauth2_tokens_and_secrets_never_reach_a_log_line(
    connect: Connect, watched: Watched, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with watched(token_ttl_s=1, rate_503=0.15) as w:
        settings = connect(w.sis, max_retries=10, failure_threshold=25)
        async with OneRosterClient(settings) as sis:
            await _busy_run(sis, 2.2)  # tokens renewed, 503s retried
            # A token the SIS revokes while we still trust it: a 401, renewed and retried.
            cache = sis._tokens
            assert cache is not None and cache._token is not None
            cache._token = dataclasses.replace(cache._token, renew_at=math.inf)
            await asyncio.sleep(1.1)
            await asyncio.gather(*(sis.page("teachers", limit=1) for _ in range(3)))
            with pytest.raises(NotFound) as not_found:
                await sis.get("class", id="no-such-class")
            errors.append(str(not_found.value))
            tokens = sis.tokens_fetched
        wrong = dataclasses.replace(
            settings,
            auth=OAuth2Settings(
                token_url=w.sis.token_url, client_id=w.sis.client_id, client_secret=WRONG_SECRET
            ),
        )
        async with OneRosterClient(wrong) as sis:
            with pytest.raises(TokenRequestFailed) as refused:
                await sis.page("teachers", limit=1)
            errors.append(str(refused.value))
        secrets = _credentials_on_the_wire(r.authorization for r in w.watch.requests)

    logged = _everything_logged(caplog)
    assert tokens >= 3  # renewed on time, and once after the 401
    assert "renewing the OAuth 2 token" in logged and "retry" in logged
    assert {w.sis.client_secret, WRONG_SECRET} <= secrets
    assert sum(1 for s in secrets if len(s) > 30) >= tokens  # the bearer tokens are there too
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in error for error in errors)


async def test_oauth1_secrets_and_signatures_never_reach_a_log_line(
    connect: Connect, watched: Watched, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with watched(profile="generic-1.1", rate_503=0.15) as w:
        settings = connect(w.sis, "oauth1", max_retries=10, failure_threshold=25)
        async with OneRosterClient(settings) as sis:
            await _busy_run(sis, 0.5)
            with pytest.raises(NotFound) as not_found:
                await sis.get("class", id="no-such-class")
            errors.append(str(not_found.value))
        wrong = dataclasses.replace(
            settings, auth=OAuth1Settings(key=w.sis.client_id, secret=WRONG_SECRET)
        )
        async with OneRosterClient(wrong) as sis:
            with pytest.raises(AuthenticationFailed) as refused:
                await sis.page("teachers", limit=1)
            errors.append(str(refused.value))
        signatures = _credentials_on_the_wire(r.authorization for r in w.watch.requests)

    logged = _everything_logged(caplog)
    assert "retry" in logged and len(signatures) >= 10
    for secret in {w.sis.client_secret, WRONG_SECRET, *signatures}:
        assert secret not in logged
        assert all(secret not in error for error in errors)
