"""Fixtures for the consumer tests: the anyio backend, and settings that need no server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sislink.oneroster.consumer import ConnectionSettings, OAuth1Settings, OAuth2Settings
from sislink.oneroster.provider.server import RunningProvider, running_provider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def oauth2_settings() -> ConnectionSettings:
    return ConnectionSettings(
        version="1.2",
        base_url="http://127.0.0.1:9/ims/oneroster",
        auth=OAuth2Settings(
            token_url="http://127.0.0.1:9/oauth/token",
            client_id="sislink-test",
            client_secret="s3cret-test",
        ),
    )


@pytest.fixture
def oauth1_settings() -> ConnectionSettings:
    return ConnectionSettings(
        version="1.1",
        base_url="http://127.0.0.1:9/ims/oneroster",
        auth=OAuth1Settings(key="sislink-test", secret="s3cret-test"),
    )


# ---- the built-in SIS over HTTP ------------------------------------------------------------

# (profile, auth kind): every profile with its usual auth, plus the other kind where a profile
# accepts both, so both auth kinds run on both versions.
PROFILE_AUTH: list[tuple[str, str]] = [
    ("generic-1.2", "oauth2"),
    ("generic-1.1", "oauth1"),
    ("generic-1.1", "oauth2"),
    ("infinite-campus", "oauth2"),
    ("skyward", "oauth2"),
    ("skyward", "oauth1"),
    ("aspen", "oauth2"),
    ("aeries", "oauth2"),
]


def settings_for(sis: RunningProvider, auth_kind: str = "", **overrides: Any) -> ConnectionSettings:
    """Settings for the consumer to reach a running built-in SIS, as an administrator would
    configure it (the vendor header of a profile goes on gradebook calls only)."""
    kind = auth_kind or sis.auth_kinds[0]
    auth: OAuth1Settings | OAuth2Settings
    if kind == "oauth1":
        auth = OAuth1Settings(key=sis.client_id, secret=sis.client_secret)
    else:
        auth = OAuth2Settings(
            token_url=sis.token_url, client_id=sis.client_id, client_secret=sis.client_secret
        )
    values: dict[str, Any] = {
        "version": sis.version,
        "base_url": sis.base_url,
        "auth": auth,
        "gradebook_headers": sis.extra_headers,
        "backoff_base_s": 0.02,
        "backoff_max_s": 0.5,
    }
    values.update(overrides)
    return ConnectionSettings(**values)


@pytest.fixture
def connect() -> Callable[..., ConnectionSettings]:
    """`connect(running_sis, auth_kind="", **setting_overrides)` -> ConnectionSettings."""
    return settings_for


@pytest.fixture(scope="module", params=PROFILE_AUTH, ids=[f"{p}-{a}" for p, a in PROFILE_AUTH])
def profile_sis(request: pytest.FixtureRequest) -> Iterator[tuple[RunningProvider, str]]:
    """A running built-in SIS per profile and auth kind, shared by a module's tests."""
    profile, auth_kind = request.param
    with running_provider(profile=profile, students=120) as sis:
        yield sis, auth_kind
