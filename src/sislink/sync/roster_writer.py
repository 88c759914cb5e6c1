"""The roster import's one write transaction, on a thread of its own, fed while the SIS is read.

`TransactionThread` opens one transaction on one thread and runs every write of the import
there, in the order given (a SQLAlchemy session is not thread-safe: one session, one thread).
The event loop reads the next page meanwhile: `submit` hands a page's write to the thread and
returns at once unless `MAX_WRITES_WAITING` writes are already waiting, so at most that many
pages are held in memory between the reader and the writer (a bounded queue). The first write
that fails stops the others (they are skipped, not run on a broken transaction) and its error
comes back from the next `submit`, `run` or `finish`.

The transaction ends with `finish` (commit, or roll back for a dry run) or `abandon` (roll
back, whatever happened): nothing is written outside it, so a failure anywhere, a cancel or a
kill -9 leaves the classroom as it was.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")

# Pages whose writes may wait behind the one being written: the reader runs at most this far
# ahead of the writer (each page is a few thousand compact rows).
MAX_WRITES_WAITING = 2


class TransactionThread:
    """One transaction, on one thread, for the whole import (see the module's docstring)."""

    def __init__(self, open_transaction: Callable[[], AbstractContextManager[Session]]) -> None:
        self._open_transaction = open_transaction
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roster-writer")
        self._stack = contextlib.ExitStack()
        self._session: Session | None = None
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._failed = threading.Event()
        self._ended = False  # finish or abandon ran: the transaction is over either way

    async def start(self) -> None:
        """Open the transaction (on SQLite this takes the database's one write lock)."""
        await asyncio.wrap_future(self._executor.submit(self._begin))

    def _begin(self) -> None:
        self._session = self._stack.enter_context(self._open_transaction())

    def _guarded(self, work: Callable[[Session], T]) -> T:
        if self._failed.is_set():
            raise _Skipped()
        assert self._session is not None
        try:
            result = work(self._session)
        except BaseException:
            self._failed.set()  # the writes queued behind this one are skipped
            raise
        return result

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` on the thread after every write submitted before it; its result."""
        await self.drain()
        return await asyncio.wrap_future(self._executor.submit(self._guarded, work))

    async def submit(self, work: Callable[[Session], Any]) -> None:
        """Queue `work(session)` behind the writes already queued; wait only while the queue
        is full (then the reader waits for the writer). Raises a queued write's error."""
        while len(self._waiting) >= MAX_WRITES_WAITING:
            await self._waiting.popleft()
        concurrent: Future[Any] = self._executor.submit(self._guarded, work)
        self._waiting.append(asyncio.wrap_future(concurrent))
        # A write that fails while the reader is between pages is seen at the next submit.
        if self._waiting[0].done():
            await self._waiting.popleft()

    async def drain(self) -> None:
        """Wait for every queued write; raises the first one's error."""
        while self._waiting:
            await self._waiting.popleft()

    async def finish(self) -> None:
        """Wait for the queued writes, then end the transaction as its opener says (commit)."""
        await self.drain()
        self._ended = True  # a commit that fails has rolled back: nothing left to abandon
        try:
            await asyncio.wrap_future(self._executor.submit(self._stack.close))
        finally:
            self._executor.shutdown(wait=False)

    async def abandon(self, error: BaseException) -> None:
        """Roll back: wait for the write under way (a thread cannot be interrupted), skip
        the others, then end the transaction with `error` (its opener rolls back)."""
        if self._ended:
            return
        self._ended = True
        self._failed.set()
        for waiting in self._waiting:
            with contextlib.suppress(BaseException):
                await asyncio.shield(waiting)
        self._waiting.clear()

        def close_with_error() -> None:
            with contextlib.suppress(BaseException):
                self._stack.__exit__(type(error), error, error.__traceback__)

        try:
            await asyncio.shield(asyncio.wrap_future(self._executor.submit(close_with_error)))
        finally:
            self._executor.shutdown(wait=False)


class _Skipped(Exception):
    """A write queued behind one that failed: not run."""
