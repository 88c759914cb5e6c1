"""A sign-in provider's answers, more ways to misbehave than `test_oidc_answers_bounded`'s: the
status line and headers dribbled a byte at a time (httpx's timeout is per read, and the check
of the time allowed came only with the body), a compressed body that inflates far past the
bound inside one network read, a JSON nested too deep for Python's parser, a body that does
not inflate. Each must end in a sentence (SignInRefused), in bounded time and memory, never
in an exception the console turns into a 500. The provider is a raw socket server on
loopback, one scripted answer per path."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from joserfc.jwk import ECKey

from sislink.classroom.services.sign_in import SignInRefused
from sislink.console.oidc import OidcProtocol

TIME_ALLOWED_S = 1.0


@dataclass
class Scripted:
    """The bytes answered (status line, headers, body), and the pause before each byte
    (after the first `at_once`)."""

    raw: bytes
    every_s: float = 0.0
    at_once: int = 0  # the first bytes sent without a pause


def _answer(status: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


class RawProvider:
    """A raw HTTP/1.1 server on loopback: `script(path)` gives what a request to `path` gets;
    every request's headers are recorded."""

    def __init__(self, script: Callable[[str], Scripted]) -> None:
        self.script = script
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = threading.Event()
        self.origin = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                more = conn.recv(65536)
                if not more:
                    return
                received += more
            head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:])}
            self.requests.append((path, headers))
            scripted = self.script(path)
            try:
                if not scripted.every_s:
                    conn.sendall(scripted.raw)
                    return
                conn.sendall(scripted.raw[: scripted.at_once])
                for i in range(scripted.at_once, len(scripted.raw)):
                    if self._closed.wait(scripted.every_s):
                        return
                    conn.sendall(scripted.raw[i : i + 1])
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str], Scripted]], RawProvider]]:
    started: list[RawProvider] = []

    def start(script: Callable[[str], Scripted]) -> RawProvider:
        started.append(RawProvider(script))
        return started[-1]

    yield start
    for provider in started:
        provider.close()


def _json_answer(data: Any) -> Scripted:
    body = json.dumps(data).encode()
    return Scripted(
        _answer(
            "200 OK",
            {"Content-Type": "application/json", "Content-Length": str(len(body))},
            body,
        )
    )


def _discovery_then(path: str, bad: Scripted) -> Callable[[str], Scripted]:
    """A discovery document naming this server, and `bad` at `path`."""
    holder: dict[str, str] = {}

    def script(asked: str) -> Scripted:
        if asked == path:
            return bad
        origin = holder["origin"]
        return _json_answer(
            {
                "issuer": origin,
                "authorization_endpoint": f"{origin}/authorize",
                "token_endpoint": f"{origin}/token",
                "jwks_uri": f"{origin}/jwks",
            }
        )

    script.holder = holder  # type: ignore[attr-defined]
    return script


def _start_at(
    serve: Callable[[Callable[[str], Scripted]], RawProvider], path: str, bad: Scripted
) -> RawProvider:
    script = _discovery_then(path, bad)
    provider = serve(script)
    script.holder["origin"] = provider.origin  # type: ignore[attr-defined]
    return provider


def _read(protocol: OidcProtocol, provider: RawProvider, path: str) -> None:
    discovery = protocol.discover(provider.origin)
    if path == "/jwks":
        protocol.keys(discovery)


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks"])
def test_headers_dribbled_a_byte_at_a_time_end_within_the_time_allowed(
    serve: Callable[[Callable[[str], Scripted]], RawProvider], path: str
) -> None:
    # Each byte comes well within the per-read timeout; the whole status line and headers
    # would take about 6 s.
    raw = _answer("200 OK", {"Content-Type": "application/json", "X-Pad": "p" * 80}, b"{}")
    provider = _start_at(serve, path, Scripted(raw, every_s=0.05))
    protocol = OidcProtocol(timeout_s=TIME_ALLOWED_S)
    if path == "/jwks":
        protocol.discover(provider.origin)  # the document itself is quick
    started = time.monotonic()
    with pytest.raises(SignInRefused) as refused:
        _read(protocol, provider, path)
    took = time.monotonic() - started
    assert f"took longer than {TIME_ALLOWED_S:g} s" in refused.value.message
    # Without the bound the headers alone take about 6 s: a wide margin for a loaded machine.
    assert took < TIME_ALLOWED_S + 3


def test_a_body_dribbled_just_under_the_read_timeout_ends_at_the_time_allowed(
    serve: Callable[[Callable[[str], Scripted]], RawProvider],
) -> None:
    # Headers at once, then a body byte every 1.9 s: each read within the 2 s timeout, the
    # second byte already past the time allowed (without a bound on each read, it is seen
    # only once that byte came, at 3.8 s; with it, at 2 s: the margin between is for a
    # loaded machine).
    allowed_s = 2.0
    body = b'{"keys": []}'
    head = _answer("200 OK", {"Content-Length": str(len(body))}, b"")
    provider = _start_at(serve, "/jwks", Scripted(head + body, every_s=1.9, at_once=len(head)))
    protocol = OidcProtocol(timeout_s=allowed_s)
    discovery = protocol.discover(provider.origin)
    started = time.monotonic()
    with pytest.raises(SignInRefused) as refused:
        protocol.keys(discovery)
    took = time.monotonic() - started
    assert f"took longer than {allowed_s:g} s" in refused.value.message
    assert took < 3.0


def _double_gzip_bomb(inflated_bytes: int) -> bytes:
    inner = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = b"\0" * (1 << 20)
    parts = [inner.compress(zeros) for _ in range(inflated_bytes >> 20)]
    return gzip.compress(b"".join(parts) + inner.flush(), 9)


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks", "/token"])
def test_a_compressed_bomb_is_refused_without_inflating_it_in_memory(
    serve: Callable[[Callable[[str], Scripted]], RawProvider], path: str
) -> None:
    # Two layers of gzip: a few kB on the wire, 256 MiB inflated. httpx inflates each network
    # read whole (and each layer of it), so reading it its way holds hundreds of MB at once.
    bomb = _double_gzip_bomb(256 << 20)
    assert len(bomb) < 64 * 1024
    raw = _answer(
        "200 OK",
        {"Content-Encoding": "gzip, gzip", "Content-Length": str(len(bomb))},
        bomb,
    )
    provider = _start_at(serve, path, Scripted(raw))
    protocol = OidcProtocol(timeout_s=10.0)
    tracemalloc.start()
    try:
        with pytest.raises(SignInRefused):
            discovery = protocol.discover(provider.origin)
            if path == "/jwks":
                protocol.keys(discovery)
            elif path == "/token":
                _exchange(protocol, discovery, provider.origin)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024
    # sislink asks for the answer as it is (nothing to inflate); the bomb is sent anyway.
    asked = dict(provider.requests)[path]
    assert asked.get("accept-encoding") == "identity"


def _exchange(protocol: OidcProtocol, discovery: Any, issuer: str) -> None:
    from sislink.classroom.models import OidcProvider
    from sislink.classroom.services.sign_in import PendingSignIn

    provider = OidcProvider(name="School accounts", issuer=issuer, client_id="sislink")
    pending = PendingSignIn(1, "nonce", "verifier", "http://127.0.0.1/cb", "/")
    protocol.exchange_code(provider, "secret", discovery, pending, "code")


def test_a_gzip_answer_sent_unasked_is_still_read(
    serve: Callable[[Callable[[str], Scripted]], RawProvider],
) -> None:
    key_set = {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}
    body = gzip.compress(json.dumps(key_set).encode())
    raw = _answer("200 OK", {"Content-Encoding": "gzip", "Content-Length": str(len(body))}, body)
    provider = _start_at(serve, "/jwks", Scripted(raw))
    protocol = OidcProtocol(timeout_s=TIME_ALLOWED_S)
    assert len(protocol.keys(protocol.discover(provider.origin)).keys) == 1


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b"[" * 200_000 + b"]" * 200_000),  # deeper than Python's recursion limit
        ({"Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00not gzip at all"),
        ({"Content-Encoding": "br"}, b"{}"),
    ],
    ids=["nested-too-deep", "not-gzip", "not-asked-encoding"],
)
@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks", "/token"])
def test_an_unreadable_answer_is_a_sentence_not_an_error(
    serve: Callable[[Callable[[str], Scripted]], RawProvider],
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    raw = _answer("200 OK", {**headers, "Content-Length": str(len(body))}, body)
    provider = _start_at(serve, path, Scripted(raw))
    protocol = OidcProtocol(timeout_s=5.0)
    with pytest.raises(SignInRefused):
        discovery = protocol.discover(provider.origin)
        if path == "/jwks":
            protocol.keys(discovery)
        elif path == "/token":
            _exchange(protocol, discovery, provider.origin)
