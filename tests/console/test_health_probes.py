"""/healthz and /readyz: up, ready, and not ready when the database or the broker is gone;
status words only, never a host or an error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.db import create_classroom_engine, migrate
from sislink.classroom.secrets import SecretBox
from sislink.console.app import create_app


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_healthz_answers_without_signing_in(classroom: Classroom) -> None:
    with TestClient(create_app(classroom)) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database_without_a_broker(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SISLINK_BROKER_URL", raising=False)
    with TestClient(create_app(classroom)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "not_checked"},
    }


def test_readyz_is_not_ready_when_the_database_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SISLINK_BROKER_URL", raising=False)
    port = closed_port()
    gone = Classroom(
        create_classroom_engine(f"postgresql://postgres@127.0.0.1:{port}/test"),
        SecretBox.generate(),
    )
    with TestClient(create_app(gone)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "unreachable"
    assert str(port) not in answer.text and "127.0.0.1" not in answer.text


def test_readyz_is_not_ready_when_migrations_are_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SISLINK_BROKER_URL", raising=False)
    behind = open_classroom(f"sqlite:///{tmp_path / 'old.db'}", migrate_schema=False)
    try:
        migrate(behind.engine, "0010")
        with TestClient(create_app(behind)) as client:
            answer = client.get("/readyz")
    finally:
        behind.close()
    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "database": "ok",
        "migrations": "behind",
        "broker": "not_checked",
    }
    assert "0010" not in answer.text


def test_readyz_is_ready_when_the_broker_answers(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real Redis on loopback: a port that only accepts TCP is not a broker
    # (tests/operations/test_readiness_broker.py).
    monkeypatch.setenv("SISLINK_BROKER_URL", "redis://127.0.0.1:6379/0")
    with TestClient(create_app(classroom)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"]["broker"] == "ok"


def test_readyz_is_not_ready_when_the_broker_is_down(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("SISLINK_BROKER_URL", f"redis://:hunter2@127.0.0.1:{port}/0")
    with TestClient(create_app(classroom)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "broker": "unreachable",
    }
    assert "hunter2" not in answer.text and str(port) not in answer.text
