"""/readyz's broker check against the real brokers on loopback (Redis 6379, RabbitMQ 5672): the
broker must answer as a broker (its protocol, our credentials), for any URL Celery takes;
a port that merely accepts TCP is not a broker. Status words only, never a host or password."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sislink.classroom import Classroom
from sislink.console.app import create_app
from sislink.operations.health import Readiness, broker_word, check_readiness_within

REDIS = "redis://127.0.0.1:6379/0"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def not_a_broker() -> Iterator[int]:
    """A loopback port that accepts TCP connections and says nothing, like a wrong service."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.mark.parametrize(
    "url",
    [
        REDIS,
        RABBITMQ,
        "pyamqp://guest:guest@127.0.0.1//",  # Celery's own scheme, its default port
        f"amqp://guest:guest@127.0.0.1:{closed_port()}//;{RABBITMQ}",  # a failover list
    ],
    # Fixed ids: the failover URL holds a free port that differs in each pytest-xdist process,
    # and the processes must collect the same tests.
    ids=["redis", "amqp", "pyamqp", "failover"],
)
def test_a_broker_celery_can_use_is_ok(url: str) -> None:
    assert broker_word({"SISLINK_BROKER_URL": url}) == "ok"


def test_rabbitmq_refusing_the_credentials_is_not_ready() -> None:
    wrong = "amqp://guest:Zq7-not-the-password@127.0.0.1:5672//"
    assert broker_word({"SISLINK_BROKER_URL": wrong}) == "unreachable"


def test_a_port_that_is_not_a_broker_is_not_ready(not_a_broker: int) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{not_a_broker}//"
    assert broker_word({"SISLINK_BROKER_URL": url}, deadline_s=0.5) == "unreachable"


def test_readyz_with_rabbitmq_refusing_says_only_the_word(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_BROKER_URL", "amqp://guest:Zq7-not-the-password@127.0.0.1:5672//")
    with TestClient(create_app(classroom)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not_ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "unreachable"},
    }
    assert "Zq7" not in answer.text and "5672" not in answer.text


class CountingListener:
    """A loopback port that accepts TCP connections, counts them, and never answers."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port: int = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.accepted:
            connection.close()


def test_probes_at_once_share_one_check_and_a_fresh_answer(classroom: Classroom) -> None:
    """An unauthenticated probe must not multiply work: probes that come while a check runs
    wait for its answer, and one just after is answered from it (one broker connection, not
    one per probe; a hung broker cannot fill the process's threads)."""
    listener = CountingListener()
    env = {"SISLINK_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{listener.port}//"}

    async def probes() -> list[Readiness]:
        first = await asyncio.gather(
            *(check_readiness_within(classroom, env, deadline_s=0.5) for _ in range(8))
        )
        again = await check_readiness_within(classroom, env, deadline_s=0.5)
        return [*first, again]

    try:
        answers = asyncio.run(probes())
    finally:
        listener.close()
    assert {a.broker for a in answers} == {"unreachable"}
    assert len(listener.accepted) == 1
