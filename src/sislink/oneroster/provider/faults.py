"""Deterministic faults for the built-in SIS: latency, 500/503, 429 with Retry-After, dropped connections.

An ASGI middleware draws one decision per API request from a seeded random generator, so a run
with the same seed and the same request order sees the same faults. Latency is an `asyncio.sleep`:
concurrent requests wait side by side, never one after another.

A connection is dropped either before the request reaches the SIS (`drop_rate`: nothing
happened) or after the SIS has handled it (`drop_after_rate`: a write was applied, but its
answer is lost), which is the case a client retrying a PUT or DELETE must survive.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from sislink.oneroster.errors import INTERNAL_SERVER_ERROR, SERVER_BUSY, failure

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# The rates in the order a roll is checked against them. The newer ones come last, so a seed
# gives the same faults as before to a configuration that does not use them.
# `fault_rate` (500 or 503, half each) comes first, before them all.
RATE_KINDS: tuple[tuple[str, str], ...] = (
    ("rate_429", "429"),
    ("drop_rate", "drop"),
    ("rate_500", "500"),
    ("rate_503", "503"),
    ("drop_after_rate", "drop_after"),
)


@dataclass(frozen=True)
class FaultConfig:
    """What to inject. Rates are shares of API requests (0..1); they add up, checked in order.

    `fault_rate` is answered 500 or 503, half each; `rate_500` and `rate_503` add exactly that
    status. `drop_rate` drops the connection before the request reaches the SIS;
    `drop_after_rate` drops it after the SIS has handled the request (the answer is lost).
    """

    seed: int = 7
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rate: float = 0.0
    rate_429: float = 0.0
    drop_rate: float = 0.0
    retry_after_s: int = 1
    rate_500: float = 0.0
    rate_503: float = 0.0
    drop_after_rate: float = 0.0

    def __post_init__(self) -> None:
        names = ["fault_rate", *(name for name, _ in RATE_KINDS)]
        for name in names:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a share of requests between 0 and 1, not {value}")
        if sum(getattr(self, name) for name in names) > 1.0:
            raise ValueError(f"{' + '.join(names)} must not exceed 1")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms cannot be negative")

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms
            or self.jitter_ms
            or self.fault_rate
            or any(getattr(self, name) for name, _ in RATE_KINDS)
        )


@dataclass(frozen=True)
class FaultDecision:
    delay_s: float
    kind: str | None  # None, "500", "503", "429", "drop", "drop_after"


class FaultPlan:
    """The seeded sequence of decisions, one per request, safe to draw from many threads."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def next(self) -> FaultDecision:
        c = self.config
        with self._lock:
            jitter = self._rng.uniform(-c.jitter_ms, c.jitter_ms) if c.jitter_ms else 0.0
            roll = self._rng.random()
        delay = max(0.0, c.latency_ms + jitter) / 1000.0
        if roll < c.fault_rate:
            return FaultDecision(delay, "500" if roll < c.fault_rate / 2 else "503")
        ceiling = c.fault_rate
        for name, kind in RATE_KINDS:
            ceiling += getattr(c, name)
            if roll < ceiling:
                return FaultDecision(delay, kind)
        return FaultDecision(delay, None)


class FaultMiddleware:
    """Applies a FaultPlan to HTTP requests whose path passes `applies_to`.

    `met` counts the faults injected by (HTTP method, kind), e.g. `met["PUT", "drop_after"]`,
    so a test can tell which faults its calls actually met.
    """

    def __init__(self, app: ASGIApp, plan: FaultPlan, applies_to: Callable[[str], bool]) -> None:
        self.app = app
        self.plan = plan
        self.applies_to = applies_to
        self.met: Counter[tuple[str, str]] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        decision = self.plan.next()
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.kind is None:
            await self.app(scope, receive, send)
            return
        self.met[scope["method"], decision.kind] += 1
        if decision.kind == "drop":
            await _drop_connection(send)
        elif decision.kind == "drop_after":
            await self.app(scope, receive, _discard)
            await _drop_connection(send)
        elif decision.kind == "429":
            await _send_status(
                send,
                429,
                failure(
                    SERVER_BUSY, "Too many requests (injected fault); retry after the delay."
                ).body(),
                {"retry-after": str(self.plan.config.retry_after_s)},
            )
        else:
            status = int(decision.kind)
            minor = SERVER_BUSY if status == 503 else INTERNAL_SERVER_ERROR
            await _send_status(
                send, status, failure(minor, f"Injected fault: HTTP {status}.").body(), {}
            )


async def _send_status(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def _discard(message: Message) -> None:
    """Where the answer of a request whose connection is dropped after it was handled goes."""


async def _drop_connection(send: Send) -> None:
    """Close the TCP connection without answering, as a crashing load balancer does."""
    # uvicorn's `send` is a bound method of the request cycle, which holds the transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.close()
        return
    # Elsewhere: promise a body and break off, which also leaves the client without a response.
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
    )
    raise ConnectionAbortedError("Injected fault: connection dropped")
