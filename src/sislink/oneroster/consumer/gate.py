"""A gate every call to one SIS passes, shared with other clients (other processes, machines).

`OneRosterClient(settings, gate=...)` asks the gate for a turn before each attempt and holds it
while the attempt is in flight, on top of its own `max_concurrency` and `requests_per_second`;
a 429 answer's Retry-After is told to the gate, so that every client sharing it waits, not only
the one that was answered. The consumer knows nothing of how a gate is shared: sislink's one
(sync/shared_limits.py) keeps its counts in Redis, for Celery workers on many machines.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class CallGate(Protocol):
    """What the client asks of a shared gate."""

    def turn(self) -> AbstractAsyncContextManager[None]:
        """Wait for a turn (a free place among the shared in-flight calls, the next shared rate
        slot, the end of any pause) and hold the place while the call is in flight."""
        ...

    async def pause(self, seconds: float) -> None:
        """The SIS asked to wait (a 429's Retry-After): no turn starts for `seconds`."""
        ...
