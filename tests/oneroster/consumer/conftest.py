"""Fixtures for the consumer tests: the anyio backend, settings, and the built-in SIS (also\nwatched from the server side, to see what the consumer put on the wire)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from sislink.oneroster.consumer import ConnectionSettings, OAuth1Settings, OAuth2Settings
from sislink.oneroster.provider.app import create_app
from sislink.oneroster.provider.faults import FaultMiddleware
from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import (
    RunningProvider,
    bind_socket,
    build_config,
    describe,
    running_provider,
)
from sislink.oneroster.provider.store import ProviderStore


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


# ---- a built-in SIS watched from the server side -------------------------------------------


@dataclass
class Seen:
    """One HTTP request as the SIS received it; times are time.monotonic() in this process."""

    method: str
    path: str
    query: str
    authorization: str
    started: float
    answered: float | None = None  # when the last byte of the answer was handed to the socket
    status: int | None = None  # None: no answer (the connection was dropped)
    answer_headers: dict[str, str] = field(default_factory=dict)


class Watch:
    """An ASGI middleware in front of the built-in SIS that records what reaches it: every
    request with its times and answer, and the most requests it ever had in flight at once.

    `fail_with`, when set, answers OneRoster calls with that status instead of the SIS (the
    next `fail_count` calls, or all of them while it is None), to make a SIS go down, then
    come back. `ignores_filter` makes the SIS behave as one that ignores `filter`.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_with: int | None = None
        self.fail_count: int | None = None
        self.ignores_filter = False

    def calls(self, method: str | None = None, path_part: str = "/ims/oneroster/") -> list[Seen]:
        """The OneRoster calls received (token requests left out), in arrival order."""
        return [
            r
            for r in list(self.requests)
            if path_part in r.path and (method is None or r.method == method)
        ]

    def _fails(self, path: str) -> bool:
        if self.fail_with is None or "/ims/oneroster/" not in path:
            return False
        if self.fail_count is None:
            return True
        if self.fail_count <= 0:
            return False
        self.fail_count -= 1
        return True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        seen = Seen(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode(),
            headers.get(b"authorization", b"").decode(),
            time.monotonic(),
        )
        self.requests.append(seen)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

        def done() -> None:
            if seen.answered is None:
                seen.answered = time.monotonic()
                self.in_flight -= 1

        async def watched_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
                seen.answer_headers = {
                    k.decode().lower(): v.decode() for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Counted out before the client can have the answer, so a client that sends
                # its next call on receiving this one is never counted twice.
                done()
            await send(message)

        if self.ignores_filter:
            kept = "&".join(p for p in seen.query.split("&") if not p.startswith("filter="))
            scope = {**scope, "query_string": kept.encode()}
        try:
            if self._fails(scope["path"]):
                await watched_send(
                    {"type": "http.response.start", "status": self.fail_with, "headers": []}
                )
                await watched_send({"type": "http.response.body", "body": b""})
            else:
                await self.app(scope, receive, watched_send)
        finally:
            done()


@dataclass
class WatchedSis:
    sis: RunningProvider
    watch: Watch


@contextlib.contextmanager
def watched_provider(
    *, profile: str = "generic-1.2", students: int = 40, **faults: Any
) -> Iterator[WatchedSis]:
    """Like `running_provider`, with a `Watch` in front of the SIS (faults, if any, behind it)."""
    chosen = profile_named(profile)
    store = ProviderStore()
    summary = seed_district(
        store, seed=7, students=students, staff_id_prefix=chosen.staff_id_prefix
    )
    config = build_config(chosen, client_id="sislink-test", client_secret="s3cret-test", **faults)
    app = create_app(store, config)
    watch = Watch(app)
    sock = bind_socket("127.0.0.1", 0)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(
            watch,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the watched SIS did not start"
            time.sleep(0.01)
        urls = describe(chosen, origin)
        extra = (
            {chosen.gradebook_header: config.vendor_header_value} if chosen.gradebook_header else {}
        )
        sis = RunningProvider(
            profile=chosen.name,
            version=str(chosen.version),
            host_url=urls["host_url"],
            base_url=urls["base_url"],
            token_url=urls["token_url"],
            client_id="sislink-test",
            client_secret="s3cret-test",
            teacher_email=summary.teacher_email,
            store=store,
            origin=origin,
            auth_kinds=chosen.auth_kinds,
            extra_headers=extra,
            scope_required=chosen.scope_required,
            affinity_cookie=chosen.affinity_cookie,
            faults_met=app.met if isinstance(app, FaultMiddleware) else Counter(),
        )
        yield WatchedSis(sis, watch)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


@pytest.fixture
def watched() -> Callable[..., contextlib.AbstractContextManager[WatchedSis]]:
    """`with watched(students=40, **faults) as w:` a built-in SIS (`w.sis`) and its `w.watch`."""
    return watched_provider
