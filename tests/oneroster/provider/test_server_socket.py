"""The built-in SIS's listening socket: keep-alive calls must not wait on Nagle's algorithm."""

from __future__ import annotations

import socket

from sislink.oneroster.provider.server import bind_socket


def test_listening_socket_says_tcp_so_asyncio_disables_nagle_on_accepted_connections() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        try:
            # asyncio's own rule (base_events._set_nodelay) looks at exactly these three.
            assert accepted.family == socket.AF_INET
            assert accepted.type == socket.SOCK_STREAM
            assert accepted.proto == socket.IPPROTO_TCP
        finally:
            accepted.close()
            client.close()
    finally:
        sock.close()
