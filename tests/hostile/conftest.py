"""Fixtures for the hostile-SIS suite: async tests on asyncio, a bystander that must hear
nothing. The SIS itself is `hostile_sis.HostileSIS`, started by each test in its shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hostile.hostile_sis import HostileSIS, recording_bystander


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bystander() -> Iterator[HostileSIS]:
    """A server on another loopback port: every test that uses it asserts it received nothing."""
    with recording_bystander() as server:
        yield server
