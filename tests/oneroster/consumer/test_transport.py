"""The consumer's HTTP transport (httpx and httpcore's pool on plain asyncio streams) behaves as
httpx's default one does: keep-alive, a connection the server closed is not reused, and each
failure is the httpx error with its cause kept (refused, unknown host, timeout, TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from sislink.oneroster.consumer import ConnectionSettings, OneRosterClient
from sislink.oneroster.consumer.transport import AsyncioBackend, asyncio_transport

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@contextlib.asynccontextmanager
async def tiny_server(
    answers_per_connection: int | None, *, reply: bool = True, speak_first: bool = False
) -> AsyncIterator[tuple[str, list[int]]]:
    """A raw HTTP/1.1 server on loopback that answers `{}`; after `answers_per_connection`
    answers it closes the connection without saying so (None: never); with `speak_first` it
    answers as soon as a client connects (what a TLS client takes for a broken handshake).
    Yields its origin and a list holding, per connection, how many requests it served."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(0)
        mine = len(served) - 1
        if speak_first:
            writer.write(ANSWER)
        try:
            while answers_per_connection is None or served[mine] < answers_per_connection:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                if not reply:
                    await asyncio.sleep(3600)
                writer.write(ANSWER)
                await writer.drain()
                served[mine] += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", served
    finally:
        server.close()
        await server.wait_closed()


def client_on(transport: httpx.AsyncHTTPTransport, **timeouts: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, **timeouts))


@pytest.mark.anyio
async def test_sequential_calls_reuse_one_kept_alive_connection() -> None:
    async with tiny_server(None) as (origin, served), client_on(asyncio_transport(LIMITS)) as http:
        for _ in range(5):
            assert (await http.get(origin + "/x")).json() == {}
    assert served == [5]


@pytest.mark.anyio
async def test_a_connection_the_server_closed_is_not_reused() -> None:
    async with tiny_server(1) as (origin, served), client_on(asyncio_transport(LIMITS)) as http:
        for _ in range(3):
            assert (await http.get(origin + "/x")).status_code == 200
            await asyncio.sleep(0.05)  # let the server's close reach this side
    assert served == [1, 1, 1]


@pytest.mark.anyio
async def test_nothing_listening_is_a_connect_error_caused_by_the_refusal() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    async with client_on(asyncio_transport(LIMITS)) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(f"http://127.0.0.1:{port}/x")
    causes = []
    cause: BaseException | None = caught.value
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(c, ConnectionRefusedError) for c in causes)


@pytest.mark.anyio
async def test_an_unknown_host_is_a_connect_error_caused_by_the_lookup() -> None:
    backend = AsyncioBackend()
    with pytest.raises(httpcore.ConnectError) as caught:
        await backend.connect_tcp("no-such-host.invalid", 80, timeout=5)
    assert isinstance(caught.value.__cause__, socket.gaierror)


@pytest.mark.anyio
async def test_a_server_that_does_not_answer_is_a_read_timeout() -> None:
    silent = tiny_server(None, reply=False)
    async with silent as (origin, _), client_on(asyncio_transport(LIMITS), read=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(origin + "/x")


@pytest.mark.anyio
async def test_https_to_a_plain_http_server_is_a_tls_connect_error() -> None:
    plain = tiny_server(None, speak_first=True)
    async with plain as (origin, _), client_on(asyncio_transport(LIMITS)) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(origin.replace("http://", "https://") + "/x")
    assert "ssl" in str(caught.value).lower() or "wrong version" in str(caught.value).lower()


@pytest.mark.anyio
async def test_a_tls_handshake_that_never_finishes_is_a_connect_timeout_not_a_hang() -> None:
    mute = tiny_server(None)
    async with mute as (origin, _), client_on(asyncio_transport(LIMITS), connect=0.3) as http:
        with pytest.raises(httpx.ConnectTimeout):
            await http.get(origin.replace("http://", "https://") + "/x")


@pytest.mark.anyio
async def test_the_oneroster_client_sends_through_the_asyncio_backend(
    oauth2_settings: ConnectionSettings,
) -> None:
    async with OneRosterClient(oauth2_settings) as sis:
        transport = sis._client._transport
        assert isinstance(transport, httpx.AsyncHTTPTransport)
        pool = transport._pool
        assert isinstance(pool, httpcore.AsyncConnectionPool)
        assert isinstance(pool._network_backend, AsyncioBackend)
        assert pool._max_connections == oauth2_settings.max_concurrency


@pytest.mark.anyio
async def test_a_sis_behind_an_environment_proxy_keeps_httpx_proxy_routing(
    oauth2_settings: ConnectionSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.school.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with OneRosterClient(oauth2_settings) as sis:
        transport = sis._client._transport
        assert isinstance(transport, httpx.AsyncHTTPTransport)
        assert not isinstance(transport._pool._network_backend, AsyncioBackend)  # type: ignore[union-attr]
        sis_url = httpx.URL(oauth2_settings.root_url)
        proxied = [m for p, m in sis._client._mounts.items() if p.matches(sis_url) and m]
        assert proxied, "the SIS's calls would not go through the proxy"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with OneRosterClient(oauth2_settings) as sis:
        transport = sis._client._transport
        assert isinstance(transport, httpx.AsyncHTTPTransport)
        assert isinstance(transport._pool, httpcore.AsyncConnectionPool)
        assert isinstance(transport._pool._network_backend, AsyncioBackend)


def test_the_backend_connects_on_uvloop_as_on_asyncio() -> None:
    # The console serves under uvicorn on uvloop, and its SIS calls run on that loop.
    import uvloop

    async def one_call() -> int:
        async with tiny_server(None) as (origin, _), client_on(asyncio_transport(LIMITS)) as http:
            return (await http.get(origin + "/x")).status_code

    for loop_factory in (uvloop.new_event_loop, asyncio.new_event_loop):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            assert runner.run(one_call()) == 200
