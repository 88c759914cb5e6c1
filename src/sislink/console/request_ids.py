"""Each console request gets an id: every line logged while it is served carries it
(sislink.operations.logs), and the answer says it in X-Request-ID, so a person who reports a
problem can quote it. An id sent by a proxy in front is kept when it looks like one."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sislink.operations.logs import log_context

HEADER = b"x-request-id"
# A proxy's id is kept only when it is short and plain: it goes into every log line.
_PLAIN_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class RequestIds:
    """ASGI middleware: a request id in the log context and in the X-Request-ID header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"")
        request_id = given.decode() if _PLAIN_ID.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [pair for pair in message.get("headers", []) if pair[0] != HEADER]
                message["headers"] = [*headers, (HEADER, request_id.encode())]
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)
