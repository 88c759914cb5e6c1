"""Fixtures for the consumer tests: the anyio backend, and settings that need no server."""

from __future__ import annotations

import pytest

from sislink.oneroster.consumer import ConnectionSettings, OAuth1Settings, OAuth2Settings


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
