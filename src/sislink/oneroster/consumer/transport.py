"""The HTTP transport under `OneRosterClient`: httpx's own, on a plain-asyncio network backend.

Why: at 16 calls in flight the consumer is CPU-bound, and the profile of 2,000 PUTs put a
third of its time in httpcore's default (anyio) network streams: cancel scopes around every
read and write, and, each time the pool hands out a connection, an `is_readable` check on
every idle connection that rebuilds anyio's table of socket attributes. `AsyncioStream` does
the same work with asyncio's own streams, keeps its socket at hand, and adds no scope when no
timeout is asked. Measured with `benchmarks/consumer_writes.py`: docs/benchmarks.md.

Everything above the socket is unchanged: httpcore's connection pool and HTTP/1.1 (h11), and
httpx's mapping of httpcore's errors (`httpcore.ReadTimeout` -> `httpx.ReadTimeout`, ...).
Errors keep their cause (`raise ... from exc`), which is how `client._reason` and
`sync.connection_checks` tell a refused connection, an unknown host and a TLS failure apart.
"""

# The `timeout` parameters are httpcore's interface, which these classes implement.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import ssl
import urllib.request
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


def _is_readable(sock: socket.socket | None, poller: Any = None) -> bool:
    """True when a read would not block: for an idle keep-alive connection that means the
    server closed it (or sent something unasked), so the pool must not reuse it. `poller`: a
    `select.poll` with the socket registered (the stream keeps one: the pool asks this of
    every idle connection each time a request starts or ends)."""
    if sock is None or sock.fileno() < 0:
        return True
    if poller is None:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _racing(loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """As anyio does, try the next address (IPv4 after IPv6) after 250 ms, so that a host whose
    IPv6 route drops packets does not time out. asyncio's own loops do it when asked; uvloop's
    (the console's, under uvicorn) has no such option and connects to one address at a time."""
    if isinstance(loop, asyncio.BaseEventLoop):
        return {"happy_eyeballs_delay": 0.25, "interleave": 1}
    return {}


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection, as httpcore's connections expect it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._socket: socket.socket | None = writer.get_extra_info("socket")
        self._poller: Any = None
        if self._socket is not None and self._socket.fileno() >= 0:
            self._poller = select.poll()
            self._poller.register(self._socket.fileno(), select.POLLIN)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout(f"no answer within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ReadError(_why(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not send within {timeout} s") from None
        except OSError as exc:
            raise httpcore.WriteError(_why(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def _abort(self) -> None:
        """Drops a connection whose TLS handshake failed. Not `aclose`: asyncio handed the
        socket to its TLS protocol, so the stream's own close would wait for ever."""
        self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            # Our own deadline, so that running out of time is a timeout: asyncio's
            # ssl_handshake_timeout ends in ConnectionAbortedError instead.
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._abort()
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout} s") from None
        except (OSError, ssl.SSLError) as exc:
            self._abort()
            raise httpcore.ConnectError(_why(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _is_readable(self._socket, self._poller)
        if info == "socket":
            return self._socket
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream`s (asyncio sets TCP_NODELAY on them, as anyio does)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    **_racing(asyncio.get_running_loop()),
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(_why(exc)) from exc
        stream = AsyncioStream(reader, writer)
        if stream._socket is not None:
            for option in socket_options or ():
                stream._socket.setsockopt(*option)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("sislink reaches a SIS over TCP, not a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_ssl_contexts: dict[tuple[str, str, float], ssl.SSLContext] = {}


def _verifying_ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), made once per
    process for each of those settings: loading the CAs costs ~20 ms of CPU, which every class
    export job on a worker paid twice (a client per job) before. A context only verifies; the
    connections made with it share nothing else."""
    cert_file = os.environ.get("SSL_CERT_FILE", "")
    cert_dir = os.environ.get("SSL_CERT_DIR", "")
    try:  # a CA file rewritten in place is loaded again
        changed = os.stat(cert_file).st_mtime if cert_file else 0.0
    except OSError:
        changed = -1.0
    key = (cert_file, cert_dir, changed)
    context = _ssl_contexts.get(key)
    if context is None:
        context = _ssl_contexts[key] = httpx.create_ssl_context()
    return context


class _ConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, with its bookkeeping made linear in its connections.

    httpcore 1.0.9 (pinned) runs `_assign_requests_to_connections` each time a request
    starts or ends; for every idle connection it counts the pool's connections by building a
    list of them (`len([c.is_idle() for c in self._connections])`, every connection counted,
    idle or not), so 16 connections cost 256 `is_idle` calls a pass: ~0.4 ms of CPU a write
    at 16 calls in flight (docs/benchmarks.md). This is the same method with that count taken
    as `len(self._connections)`, which is what the list's length is; nothing else changes.
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing_connections: list[httpcore.AsyncConnectionInterface] = []
        connections = self._connections
        # Closed, expired (keep-alive out, or the server closed it), or surplus idle ones.
        for connection in list(connections):
            if connection.is_closed():
                connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(connections) > self._max_keepalive_connections
            ):
                connections.remove(connection)
                closing_connections.append(connection)

        for pool_request in [request for request in self._requests if request.is_queued()]:
            origin = pool_request.request.url.origin
            available = [
                c for c in connections if c.can_handle_request(origin) and c.is_available()
            ]
            if available:
                pool_request.assign_to_connection(available[0])
            elif len(connections) < self._max_connections:
                connection = self.create_connection(origin)
                connections.append(connection)
                pool_request.assign_to_connection(connection)
            else:
                idle = [c for c in connections if c.is_idle()]
                if idle:
                    connections.remove(idle[0])
                    closing_connections.append(idle[0])
                    connection = self.create_connection(origin)
                    connections.append(connection)
                    pool_request.assign_to_connection(connection)
        return closing_connections


def asyncio_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport (certificate checks as httpx's defaults, SSL_CERT_FILE honoured),
    with its connection pool on `AsyncioBackend`.

    httpx offers no argument for httpcore's `network_backend`, so the pool httpx built is
    replaced by the same pool on our backend; `transport._pool` is where httpx (pinned in
    requirements.lock) keeps it, and a test checks that the backend is the one in use.
    """
    context = _verifying_ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits)
    built = transport._pool
    if not isinstance(built, httpcore.AsyncConnectionPool):  # pragma: no cover - a proxy
        return transport
    transport._pool = _ConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=AsyncioBackend(),
    )
    return transport


def environment_proxy_for(url: str) -> bool:
    """Whether HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (less NO_PROXY) send calls to `url` through
    a proxy. httpx routes those itself, but only when it builds its own transport: with ours it
    would ignore them, so a client that needs a proxy keeps httpx's transport."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")
