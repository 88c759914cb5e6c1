"""Mark export when the SIS answers a write oddly. 1EdTech's 1.2 OpenAPI answers a lineItem's
or a result's PUT with 201 and no body; a SIS that says more (a plain "Created", an echo of the
object in its own shape) has still stored it: the write is exported, the ledger remembers it,
and the next export sends nothing. A web page is not taken as the SIS's word (a gateway in front
of it answers so when it stops a request): the write is failed, and sent again next time.

The built-in SIS is reached through a small proxy on 127.0.0.1 that hands every call on and,
for a 2xx answer to a gradebook PUT, replaces the body with the odd one."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sislink.classroom import Classroom, open_classroom
from sislink.oneroster.consumer import OAuth2Settings
from sislink.oneroster.provider.server import RunningProvider, bind_socket, running_provider
from sislink.sync.export_report import ExportOutcome, Outcome
from sislink.sync.mark_export import export_class_marks
from sync.mark_export_world import World, build_world, sis_gradebook

ODD_ANSWERS = {
    "plain_text": (b"Created", "text/plain"),
    "echo_missing_fields": (
        b'{"lineItem": {"sourcedId": "x"}, "result": {"sourcedId": "x"}}',
        "application/json",
    ),
    "echo_of_another_shape": (
        b'{"lineItem": {"sourcedId": "x", "title": 5, "dueDate": "soon"}, '
        b'"result": {"sourcedId": "x", "score": "eighty", "scoreDate": "today"}}',
        "application/json",
    ),
}


class _OddWrites:
    """An ASGI proxy to `origin` that answers gradebook PUTs the SIS took with `body`."""

    def __init__(self, origin: str, body: bytes, content_type: str) -> None:
        self.origin = origin
        self.body = body
        self.content_type = content_type
        self.replaced = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
        query = scope.get("query_string", b"").decode()
        url = self.origin + scope["raw_path"].decode() + (f"?{query}" if query else "")
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                scope["method"], url, headers=headers, content=b"".join(chunks)
            )
        body, kept_headers = (
            answer.content,
            [
                (k.encode(), v.encode())
                for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
            ],
        )
        path = scope["path"]
        if (
            scope["method"] == "PUT"
            and answer.is_success
            and ("/lineItems/" in path or "/results/" in path)
        ):
            self.replaced += 1
            body = self.body
            kept_headers = [(k, v) for k, v in kept_headers if k.lower() != b"content-type"]
            kept_headers.append((b"content-type", self.content_type.encode()))
        kept_headers.append((b"content-length", str(len(body)).encode()))
        await send(
            {"type": "http.response.start", "status": answer.status_code, "headers": kept_headers}
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=10) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


WEB_PAGE = (b"<html><body>Request blocked</body></html>", "text/html; charset=utf-8")


@contextlib.contextmanager
def _proxy(
    sis: RunningProvider, body: bytes, content_type: str
) -> Iterator[tuple[str, _OddWrites]]:
    app = _OddWrites(sis.origin, body, content_type)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(params=sorted(ODD_ANSWERS))
def proxy(request: pytest.FixtureRequest, sis: RunningProvider) -> Iterator[tuple[str, _OddWrites]]:
    with _proxy(sis, *ODD_ANSWERS[request.param]) as running:
        yield running


@pytest.fixture
def web_page_proxy(sis: RunningProvider) -> Iterator[tuple[str, _OddWrites]]:
    with _proxy(sis, *WEB_PAGE) as running:
        yield running


def _through(world: World, origin: str) -> dict[str, Any]:
    """Client settings that reach the SIS through the proxy at `origin`."""
    settings = world.settings()
    auth = settings.auth
    assert isinstance(auth, OAuth2Settings)
    return {
        "base_url": settings.base_url.replace(world.sis.origin, origin),
        "auth": replace(auth, token_url=auth.token_url.replace(world.sis.origin, origin)),
    }


@pytest.mark.anyio
async def test_a_write_the_sis_took_but_answered_oddly_is_exported_and_not_sent_again(
    sis: RunningProvider, classroom: Classroom, proxy: tuple[str, _OddWrites]
) -> None:
    origin, odd = proxy
    world = await build_world(sis, classroom, students=2)
    work = world.add_coursework("Essay")
    world.mark(work, world.students[0], score=7)
    world.mark(work, world.students[1], excused=True)
    async with world.client(**_through(world, origin)) as client:
        first = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert odd.replaced == 3
        assert first.outcome is ExportOutcome.SUCCEEDED, [i.reason for i in first.items]
        assert {i.outcome for i in first.items} == {Outcome.EXPORTED}
        again = await export_class_marks(classroom, client, world.teacher, world.class_id)
    assert again.writes == 0
    (item,), results = await sis_gradebook(world)
    assert item.title == "Essay"
    assert {r.student.sourced_id: r.score for r in results[item.sourced_id]} == {
        world.sis_students[world.students[0]]: 7.0,
        world.sis_students[world.students[1]]: None,
    }


@pytest.mark.anyio
async def test_a_write_answered_with_a_web_page_is_failed_in_words_and_sent_again(
    sis: RunningProvider, classroom: Classroom, web_page_proxy: tuple[str, _OddWrites]
) -> None:
    origin, odd = web_page_proxy
    world = await build_world(sis, classroom, students=1)
    work = world.add_coursework("Essay")
    world.mark(work, world.students[0], score=7)
    async with world.client(**_through(world, origin)) as client:
        first = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert odd.replaced >= 1
        assert first.outcome is not ExportOutcome.SUCCEEDED
        said = " ".join(i.reason or "" for i in first.items)
        assert "with a web page" in said and "sends it again" in said, said
        again = await export_class_marks(classroom, client, world.teacher, world.class_id)
    assert again.writes >= 1  # not remembered as sent: asked again
