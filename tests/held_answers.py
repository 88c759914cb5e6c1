"""An ASGI wrapper that holds a loopback server's answers back while a test makes something
happen meanwhile (a cancel landing while a job waits for the SIS or for Classroom)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class HeldAnswers:
    """Wraps a server's app: while `holding` is set, its answers wait for it to be cleared;
    `waiting` counts the requests held."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.holding = threading.Event()
        self.released = threading.Event()
        self.waiting = 0

    def hold(self) -> None:
        self.waiting = 0
        self.released.clear()
        self.holding.set()

    def release(self) -> None:
        self.holding.clear()
        self.released.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.holding.is_set():
            self.waiting += 1
            await asyncio.to_thread(self.released.wait)
        await self.app(scope, receive, send)
