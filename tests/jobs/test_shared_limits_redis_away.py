"""The SIS connection's limits shared in Redis (sync/shared_limits.py) when Redis is away: one
that refuses connections, and one that takes them and never answers (paused, or its packets
dropped on the way). A call's turn fails in words (naming Redis without its password, saying
what to do) instead of an error of the Redis client, or a wait for ever; a job asking for one
ends failed, its lock given back."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connected_for_jobs import save_authorised_connection
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.jobs.roster import run_roster_import
from sislink.sync import shared_limits
from sislink.sync.shared_limits import RedisGate, SharedLimitsUnavailable

# Only a guard against a hang of the code under test: what is tested ends long before.
HANG_S = 60


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A port that takes connections and never answers anything (a Redis that is paused)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(50)
    taken: list[socket.socket] = []
    stop = threading.Event()

    def take() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            taken.append(connection)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        server.close()
        for connection in taken:
            connection.close()


@pytest.fixture
def refusing_redis() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_limits, "REDIS_TIMEOUT_S", 0.3)


async def _one_turn(url: str) -> None:
    gate = RedisGate(url, name="sislink-test-away", max_concurrency=2, requests_per_second=5)
    try:
        async with asyncio.timeout(HANG_S), gate.turn():
            raise AssertionError("a turn was given without Redis")
    finally:
        await gate.aclose()


@pytest.mark.parametrize("away", ["silent", "refusing"])
def test_a_turn_asked_of_a_redis_that_is_away_fails_in_words_without_its_password(
    away: str, short_timeout: None, request: pytest.FixtureRequest
) -> None:
    port: int = request.getfixturevalue(f"{away}_redis")
    with pytest.raises(SharedLimitsUnavailable) as failed:
        asyncio.run(_one_turn(f"redis://:redis-pw-77x@127.0.0.1:{port}/0"))
    said = str(failed.value)
    assert f"Redis at redis://127.0.0.1:{port}," in said
    assert "so no call was sent to the SIS" in said
    assert "Check that Redis is up and that SISLINK_REDIS_URL" in said
    assert "redis-pw-77x" not in said


@pytest.fixture
def connected(tmp_path: Path) -> Iterator[tuple[Classroom, int]]:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'away.db'}")
    connection_id = save_authorised_connection(classroom, token_url="https://sis.example.org/t")
    try:
        yield classroom, connection_id
    finally:
        classroom.close()


def test_an_import_whose_redis_stopped_answering_ends_failed_in_words_and_frees_its_lock(
    connected: tuple[Classroom, int],
    silent_redis: int,
    short_timeout: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    classroom, connection_id = connected
    monkeypatch.setenv("SISLINK_REDIS_URL", f"redis://127.0.0.1:{silent_redis}/0")
    monkeypatch.delenv("SISLINK_BROKER_URL", raising=False)

    async def importing() -> JobStatus:
        async with asyncio.timeout(HANG_S):
            outcome = await run_roster_import(classroom, Actor.system())
        assert outcome.error is not None
        assert f"Redis at redis://127.0.0.1:{silent_redis}, which keeps" in outcome.error
        return outcome.status

    assert asyncio.run(importing()) == JobStatus.FAILED
    with classroom.session() as session:
        lock = job_service.lock_key_for(connection_id=connection_id)
        assert job_service.find_unfinished(session, lock) is None
