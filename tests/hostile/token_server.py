"""The built-in SIS (generic 1.2) on 127.0.0.1 with its token endpoint taken over by a test.

`token_answers(reply)` serves the built-in SIS as usual, except that each token request is
answered by `reply(request_number, issue)`: a status and body chosen by the test (a token with
a line break, no `expires_in`, a refusal whose `error` is an object, a web page ...); `issue()`
gives a real token of the SIS, for answers whose token must then work.
Every request is counted by path, and every Authorization header the OneRoster API received is
kept, so a test can say what reached the SIS, and what did not.

    with token_answers(lambda n, issue: TokenReply.token("a\\nb")) as sis:
        settings = sis.settings()
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from sislink.oneroster.consumer import ConnectionSettings, OAuth2Settings
from sislink.oneroster.provider.app import create_app
from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import bind_socket, build_config, describe
from sislink.oneroster.provider.store import ProviderStore

CLIENT_ID = "token-test-client"
CLIENT_SECRET = "token-test-secret-code"


@dataclass(frozen=True)
class TokenReply:
    """What the token endpoint answers."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200) -> TokenReply:
        return cls(status, json.dumps(data).encode())

    @classmethod
    def token(cls, access_token: str, **fields: Any) -> TokenReply:
        return cls.json({"access_token": access_token, "token_type": "Bearer", **fields})


Reply = Callable[[int, Callable[[], str]], TokenReply]


@dataclass
class TokenServer:
    """Where the SIS is, and what reached it."""

    host_url: str
    base_url: str
    token_url: str
    teacher_email: str
    requests: Counter[str] = field(default_factory=Counter)  # by path
    authorizations: list[str] = field(default_factory=list)  # seen on OneRoster calls

    @property
    def token_requests(self) -> int:
        return sum(n for path, n in self.requests.items() if "/ims/oneroster/" not in path)

    @property
    def oneroster_calls(self) -> int:
        return sum(n for path, n in self.requests.items() if "/ims/oneroster/" in path)

    def settings(self, **overrides: Any) -> ConnectionSettings:
        values: dict[str, Any] = {
            "version": "1.2",
            "base_url": self.base_url,
            "auth": OAuth2Settings(
                token_url=self.token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
            ),
            "max_retries": 1,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
        }
        values.update(overrides)
        return ConnectionSettings(**values)


class _TakesOverTokens:
    """ASGI: token requests answered by `reply`; everything else goes to the built-in SIS."""

    def __init__(
        self,
        app: Any,
        token_path: str,
        reply: Reply,
        seen: TokenServer,
        issue: Callable[[], str],
    ) -> None:
        self.app = app
        self.issue = issue
        self.token_path = token_path
        self.reply = reply
        self.seen = seen
        self.lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.lock:
            self.seen.requests[scope["path"]] += 1
            number = self.seen.requests[scope["path"]]
        if scope["path"] != self.token_path:
            headers = dict(scope["headers"])
            self.seen.authorizations.append(headers.get(b"authorization", b"").decode("latin-1"))
            await self.app(scope, receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        answer = self.reply(number, self.issue)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", answer.content_type.encode()),
                    (b"content-length", str(len(answer.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


@contextlib.contextmanager
def token_answers(reply: Reply, *, students: int = 20) -> Iterator[TokenServer]:
    """A generic 1.2 built-in SIS whose token endpoint answers `reply(n, issue)` to the n-th
    request.
    Its OneRoster API still wants a token it issued: a made-up token is refused with 401."""
    chosen = profile_named("generic-1.2")
    store = ProviderStore()
    summary = seed_district(store, seed=7, students=students)
    config = build_config(chosen, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    sock = bind_socket("127.0.0.1", 0)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    urls = describe(chosen, origin)
    seen = TokenServer(urls["host_url"], urls["base_url"], urls["token_url"], summary.teacher_email)
    assert chosen.token_path is not None

    def issue() -> str:
        return config.authenticator.issue_token(CLIENT_ID, CLIENT_SECRET, None).access_token

    app = _TakesOverTokens(create_app(store, config), chosen.token_path, reply, seen, issue)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the token test SIS did not start"
            time.sleep(0.01)
        yield seen
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()
