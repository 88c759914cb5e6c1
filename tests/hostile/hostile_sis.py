"""A misbehaving OneRoster SIS on 127.0.0.1, in the shape a test chooses.

A raw asyncio HTTP/1.1 server in its own thread (raw, so that it can do what a well-behaved
framework would not: hold its headers back, dribble a body one byte at a time, send a body
without end). Every request it receives is recorded (method, target, headers), so a test can
say what reached it, and what did not.

A shape is a function of the request to a `Reply`; `shapes` below are the usual ones. The
token endpoint (`/oauth/token`) answers with a token unless the shape takes it over.

    with HostileSIS(endless_new_records(claimed_total=10**9)) as sis:
        settings = sis.settings(max_records_per_collection=500)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sislink.oneroster.consumer import ConnectionSettings, OAuth2Settings

CLIENT_ID = "hostile-client"
CLIENT_SECRET = "hostile-secret-code"
ACCESS_TOKEN = "hostile-bearer-token"
ROSTERING = "/ims/oneroster/rostering/v1p2"


@dataclass(frozen=True)
class Received:
    """One request as the hostile SIS received it."""

    method: str
    target: str  # path and query
    headers: dict[str, str]  # names lowercased

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query).items()}


@dataclass
class Reply:
    """What the hostile SIS answers. `body` is sent as it is, or, with `dribble_every_s`, one
    byte at a time; `endless` sends chunks of `body` for ever (chunked encoding)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_headers_s: float = 0.0
    dribble_every_s: float | None = None
    endless: bool = False


Shape = Callable[[Received], Reply]


def json_reply(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(data).encode(),
    )


def token_reply() -> Reply:
    return json_reply({"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 3600})


def user(sourced_id: str, role: str = "student") -> dict[str, Any]:
    """A valid OneRoster 1.2 user."""
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "dateLastModified": "2026-01-01T00:00:00.000Z",
        "enabledUser": True,
        "givenName": "Invented",
        "familyName": sourced_id,
        "username": sourced_id,
        "email": f"{sourced_id}@hostile.example",
        "roles": [
            {
                "roleType": "primary",
                "role": role,
                "org": {"href": "x", "sourcedId": "school-1", "type": "org"},
            }
        ],
        "grades": [],
    }


class HostileSIS:
    """The server; use as a context manager. `origin` is `http://127.0.0.1:PORT`."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.received: list[Received] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/ims/oneroster"

    @property
    def token_url(self) -> str:
        return f"{self.origin}/oauth/token"

    def settings(self, **overrides: Any) -> ConnectionSettings:
        """Consumer settings for this SIS (fast retries; `overrides` set the bounds)."""
        values: dict[str, Any] = {
            "version": "1.2",
            "base_url": self.base_url,
            "auth": OAuth2Settings(
                token_url=self.token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
            ),
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
        }
        values.update(overrides)
        return ConnectionSettings(**values)

    def calls(self) -> list[Received]:
        """The OneRoster calls received (the token requests left out)."""
        return [r for r in list(self.received) if r.path.startswith("/ims/oneroster/")]

    def __enter__(self) -> HostileSIS:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        started.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                request = Received(method, target, headers)
                self.received.append(request)
                if request.path == "/oauth/token" and method == "POST":
                    reply = self._token_or_shape(request)
                else:
                    reply = self.shape(request)
                await self._answer(writer, reply)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    def _token_or_shape(self, request: Received) -> Reply:
        reply = self.shape(request)
        return reply if reply.status != 404 or reply.body else token_reply()

    async def _answer(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.delay_headers_s:
            await asyncio.sleep(reply.delay_headers_s)
        headers = dict(reply.headers)
        if reply.endless:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(reply.body))
        head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        writer.write(head.encode("latin-1") + b"\r\n")
        await writer.drain()
        if reply.endless:
            chunk = f"{len(reply.body):x}\r\n".encode() + reply.body + b"\r\n"
            while True:
                writer.write(chunk)
                await writer.drain()
        elif reply.dribble_every_s is not None:
            for byte in reply.body:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(reply.dribble_every_s)
        else:
            writer.write(reply.body)
            await writer.drain()


# ---- shapes ---------------------------------------------------------------------------------


def not_found(request: Received) -> Reply:
    return Reply(404)


def one_page_of(records: list[dict[str, Any]], key: str = "users") -> Reply:
    return json_reply({key: records}, headers={"X-Total-Count": str(len(records))})


def endless_new_records(*, claimed_total: int | None = 10**9, page: int = 100) -> Shape:
    """Every page holds new users and a next link to the page after it, for ever."""
    counter = itertools.count()

    def shape(request: Received) -> Reply:
        if request.path != f"{ROSTERING}/users":
            return not_found(request)
        offset = int(request.query.get("offset", "0"))
        records = [user(f"invented-{next(counter)}") for _ in range(page)]
        headers = {"Link": f'<{ROSTERING}/users?limit={page}&offset={offset + page}>; rel="next"'}
        if claimed_total is not None:
            headers["X-Total-Count"] = str(claimed_total)
        return json_reply({"users": records}, headers=headers)

    return shape


def alternating_pages(*, with_nonce: bool) -> Shape:
    """Two pages whose next links point at each other (with a fresh nonce in each link, when
    asked, so that no URL repeats: only the records do)."""
    nonce = itertools.count()

    def shape(request: Received) -> Reply:
        if request.path != f"{ROSTERING}/users":
            return not_found(request)
        side = request.query.get("side", "a")
        other = "b" if side == "a" else "a"
        extra = f"&n={next(nonce)}" if with_nonce else ""
        records = [user(f"{side}-{i}") for i in range(3)]
        link = f'<{ROSTERING}/users?side={other}{extra}>; rel="next"'
        return json_reply({"users": records}, headers={"Link": link, "X-Total-Count": "6"})

    return shape


def next_link_to(target: str) -> Shape:
    """The first page of users has a next link to `target` (an absolute URL elsewhere)."""

    def shape(request: Received) -> Reply:
        if request.path != f"{ROSTERING}/users":
            return not_found(request)
        return json_reply(
            {"users": [user("u-1"), user("u-2")]},
            headers={"Link": f'<{target}>; rel="next"', "X-Total-Count": "4"},
        )

    return shape


def redirect_to(target: str, *, status: int = 302) -> Shape:
    """Every OneRoster call is redirected to `target`."""

    def shape(request: Received) -> Reply:
        if request.path.startswith("/ims/oneroster/"):
            return Reply(status, {"Location": target})
        return not_found(request)

    return shape


def slow_headers(seconds: float) -> Shape:
    """OneRoster calls answer only after `seconds` (a short valid page)."""

    def shape(request: Received) -> Reply:
        if not request.path.startswith("/ims/oneroster/"):
            return not_found(request)
        reply = one_page_of([user("u-1")])
        reply.delay_headers_s = seconds
        return reply

    return shape


def dribbled_body(every_s: float) -> Shape:
    """OneRoster calls answer at once, then send their body one byte every `every_s`."""

    def shape(request: Received) -> Reply:
        if not request.path.startswith("/ims/oneroster/"):
            return not_found(request)
        reply = one_page_of([user("u-1")])
        reply.dribble_every_s = every_s
        return reply

    return shape


def huge_body(*, endless: bool, size: int = 0) -> Shape:
    """OneRoster calls answer with a body that never ends (chunked) or of `size` bytes."""

    def shape(request: Received) -> Reply:
        if not request.path.startswith("/ims/oneroster/"):
            return not_found(request)
        if endless:
            return Reply(200, {"Content-Type": "application/json"}, b" " * 65536, endless=True)
        return Reply(200, {"Content-Type": "application/json"}, b" " * size)

    return shape


def huge_token() -> Shape:
    """The token endpoint answers with a body without end."""

    def shape(request: Received) -> Reply:
        if request.path == "/oauth/token":
            return Reply(200, {"Content-Type": "application/json"}, b" " * 65536, endless=True)
        return one_page_of([user("u-1")])

    return shape


@contextlib.contextmanager
def recording_bystander() -> Iterator[HostileSIS]:
    """A second server on another port that must receive nothing: it records whatever
    reaches it (and answers 200 with an empty page, to look like a SIS)."""

    def shape(request: Received) -> Reply:
        return one_page_of([])

    with HostileSIS(shape) as bystander:
        yield bystander


def gzip_bomb(*, decoded_size: int, layers: int = 1) -> Shape:
    """OneRoster calls answer with a small gzip body that inflates to `decoded_size` bytes;
    with `layers` > 1 it is gzipped again that many times and says so (`gzip, gzip`): a few
    hundred bytes that inflate to the whole size at once."""
    import gzip
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * 1_000_000
    parts = [packer.compress(block) for _ in range(decoded_size // len(block))]
    parts.append(packer.compress(b" " * (decoded_size % len(block))))
    parts.append(packer.flush())
    body = b"".join(parts)
    for _ in range(layers - 1):
        body = gzip.compress(body, compresslevel=9)

    def shape(request: Received) -> Reply:
        if not request.path.startswith("/ims/oneroster/"):
            return not_found(request)
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": ", ".join(["gzip"] * layers),
        }
        return Reply(200, headers, body)

    return shape


def unread_encoding(encoding: str) -> Shape:
    """OneRoster calls answer with a Content-Encoding sislink does not ask for."""

    def shape(request: Received) -> Reply:
        if not request.path.startswith("/ims/oneroster/"):
            return not_found(request)
        return Reply(200, {"Content-Type": "application/json", "Content-Encoding": encoding}, b"x")

    return shape
