"""The built-in SIS in other shapes, for the roster import tests: a plain OneRoster 1.2 SIS
(categories without sislink's `metadata.classSourcedId`), and a SIS that fails one endpoint.

The SIS is the real built-in one over HTTP on 127.0.0.1; an ASGI layer in front of it changes
what goes on the wire, as another SIS would send it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from sislink.oneroster.provider.app import create_app
from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import RunningProvider, bind_socket, build_config, describe
from sislink.oneroster.provider.store import ProviderStore

CLIENT_ID, CLIENT_SECRET = "sislink-test", "s3cret-test"


@dataclass
class Shape:
    """What the layer changes; tests may change it while the SIS runs."""

    plain_categories: bool = False  # categories carry no metadata.classSourcedId
    failing_path: str | None = None  # a path part answered `failing_status` (after the first page)
    failing_status: int = 500
    failing_after: int = 0  # requests of that path answered normally first
    # `classes/{id}/categories` answers 404 (a 1.2 SIS without that optional endpoint).
    no_class_categories: bool = False
    class_category_calls: int = 0  # how many times it was asked (counted by the layer)


class _Shaper:
    def __init__(self, app: Any, shape: Shape) -> None:
        self.app = app
        self.shape = shape
        self.seen: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/ims/oneroster/" not in scope["path"]:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if "/classes/" in path and path.endswith("/categories"):
            self.shape.class_category_calls += 1
        if self.shape.no_class_categories and "/classes/" in path and path.endswith("/categories"):
            await send(
                {"type": "http.response.start", "status": 404,
                 "headers": [(b"content-type", b"application/json")]}
            )  # fmt: skip
            await send({"type": "http.response.body", "body": b"{}"})
            return
        failing = self.shape.failing_path
        if failing is not None and path.endswith(failing):
            self.seen[failing] = self.seen.get(failing, 0) + 1
            if self.seen[failing] > self.shape.failing_after:
                await send(
                    {"type": "http.response.start", "status": self.shape.failing_status,
                     "headers": [(b"content-type", b"application/json")]}
                )  # fmt: skip
                await send({"type": "http.response.body", "body": b"{}"})
                return
        if not (self.shape.plain_categories and "categor" in path):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = bytearray()

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, keep)
        data = _without_class_metadata(bytes(body))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _without_class_metadata(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except ValueError:
        return body
    for key in ("categories", "category"):
        found = document.get(key) if isinstance(document, dict) else None
        for item in found if isinstance(found, list) else [found] if found else []:
            metadata = item.get("metadata")
            if isinstance(metadata, dict):
                metadata.pop("classSourcedId", None)
                if not metadata:
                    item.pop("metadata")
    return json.dumps(document).encode()


@contextlib.contextmanager
def shaped_provider(
    shape: Shape, *, students: int = 60, store: ProviderStore | None = None
) -> Iterator[RunningProvider]:
    """The built-in SIS (generic 1.2) with `shape` in front of it."""
    chosen = profile_named("generic-1.2")
    own_store = store is None
    if store is None:
        store = ProviderStore()
        summary = seed_district(store, seed=7, students=students)
        teacher_email = summary.teacher_email
    else:
        teacher_email = ""
    config = build_config(chosen, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    app = _Shaper(create_app(store, config), shape)
    sock = bind_socket("127.0.0.1", 0)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the shaped SIS did not start"
            time.sleep(0.01)
        urls = describe(chosen, origin)
        yield RunningProvider(
            profile=chosen.name,
            version=str(chosen.version),
            host_url=urls["host_url"],
            base_url=urls["base_url"],
            token_url=urls["token_url"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            teacher_email=teacher_email,
            store=store,
            origin=origin,
            auth_kinds=chosen.auth_kinds,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if own_store:
            store.close()
