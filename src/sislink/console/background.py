"""Where the console runs long work: one event loop in a background thread (mark exports, roster
imports started from a page, and the roster-import scheduler of `sislink serve`).

A page queues the job (so it has a job id to show and poll at once) and hands the run to this
loop; the web server's own loop stays free to answer the progress polls meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any

from sislink.classroom import Classroom
from sislink.console.i18n import forget_reader

logger = logging.getLogger("sislink.console.background")


class BackgroundWork:
    """A daemon thread with its own asyncio loop; `submit` runs a coroutine there."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._scheduler_stop: asyncio.Event | None = None
        self._pending: set[Future[Any]] = set()
        self._scheduler: Future[Any] | None = None

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="sislink-background", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, work: Coroutine[Any, Any, Any]) -> Future[Any]:
        """Run `work` in the background loop; failures are logged (jobs record their own)."""
        loop = self._ensure_started()
        # The task takes a copy of the caller's context (request ids for the logs stay), minus
        # the reader's language and zone: a job is nobody's page.
        context = contextvars.copy_context()
        context.run(forget_reader)
        future = context.run(asyncio.run_coroutine_threadsafe, work, loop)
        self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.error("background work failed", exc_info=future.exception())

    def start_scheduler(self, classroom: Classroom, *, tick_s: float | None = None) -> None:
        """Start the roster-import scheduler loop (`sislink serve`)."""
        from sislink.jobs.schedule import TICK_S, scheduler_loop

        async def run() -> None:
            self._scheduler_stop = asyncio.Event()
            await scheduler_loop(
                classroom, tick_s=TICK_S if tick_s is None else tick_s, stop=self._scheduler_stop
            )

        self._scheduler = self.submit(run())
        logger.info("roster import scheduler started")

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait for submitted work to end (tests; shutdown), the scheduler excepted."""
        for future in list(self._pending):
            if future is not self._scheduler:  # the scheduler never ends by itself
                future.result(timeout=timeout_s)

    def stop(self) -> None:
        """Stop the scheduler and the loop; running jobs are cancelled (recorded as such)."""
        loop = self._loop
        if loop is None:
            return
        if self._scheduler_stop is not None:
            loop.call_soon_threadsafe(self._scheduler_stop.set)

        async def cancel_everything() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_everything(), loop).result(timeout=15)
        except Exception:  # a job that will not stop must not keep sislink from stopping
            logger.warning("background work did not stop in time", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not loop.is_running():
            loop.close()
        self._loop = None
        self._thread = None
        self._pending.clear()
