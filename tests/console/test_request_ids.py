"""Each console answer names its request id (X-Request-ID); a proxy's plain id is kept, any
other is replaced, so nothing a client sends reaches the logs unchecked."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sislink.classroom import Classroom
from sislink.console.app import create_app


def test_every_answer_carries_a_fresh_request_id(classroom: Classroom) -> None:
    with TestClient(create_app(classroom)) as client:
        first = client.get("/healthz").headers["x-request-id"]
        second = client.get("/login").headers["x-request-id"]
    assert len(first) == 32 and first != second


def test_a_proxys_plain_request_id_is_kept_and_a_strange_one_replaced(
    classroom: Classroom,
) -> None:
    with TestClient(create_app(classroom)) as client:
        kept = client.get("/healthz", headers={"X-Request-ID": "lb-42.a_b"})
        replaced = client.get("/healthz", headers={"X-Request-ID": 'x" client_secret=1 ' * 9})
    assert kept.headers["x-request-id"] == "lb-42.a_b"
    assert "client_secret" not in replaced.headers["x-request-id"]
    assert len(replaced.headers["x-request-id"]) == 32
