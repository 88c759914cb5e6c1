"""Is this process ready to serve? The database answers, its schema is current, and the job
broker (when one is configured) answers as a broker.

The answers are status words only ("ok", "unreachable", "behind", "not_checked"): a readiness
probe is unauthenticated, so it never says which host, which error or which revision.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from kombu.connection import Connection

from sislink.classroom import Classroom
from sislink.classroom.db import alembic_config

logger = logging.getLogger("sislink.operations")

BROKER_URL_VARIABLE = "SISLINK_BROKER_URL"
# How long each check may take before the process is called not ready: a probe that hangs on
# a database that stopped answering would hang the orchestrator's probe too.
CHECK_DEADLINE_S = 5.0

CheckWord = Literal["ok", "unreachable", "behind", "not_checked"]


@dataclass(frozen=True)
class Readiness:
    """Each check's word; ready when none is "unreachable" or "behind"."""

    database: CheckWord
    migrations: CheckWord
    broker: CheckWord

    @property
    def ready(self) -> bool:
        return all(word in ("ok", "not_checked") for word in self.checks().values())

    def checks(self) -> dict[str, CheckWord]:
        return {"database": self.database, "migrations": self.migrations, "broker": self.broker}

    def to_dict(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "not_ready", "checks": self.checks()}


def schema_words(classroom: Classroom) -> tuple[CheckWord, CheckWord]:
    """The database's word and the migrations' word, from one connection."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    try:
        with classroom.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception:  # any failure to reach or read it: the probe says only "unreachable"
        logger.warning("readiness: the database did not answer", exc_info=True)
        return "unreachable", "not_checked"
    return "ok", ("ok" if current == heads else "behind")


def broker_word(
    environ: Mapping[str, str] | None = None, *, deadline_s: float = CHECK_DEADLINE_S
) -> CheckWord:
    """The word "ok" when the broker in SISLINK_BROKER_URL answers as a broker (kombu, as the
    workers connect: its protocol, our credentials, any URL Celery takes: `pyamqp://`, a
    failover list); "not_checked" when none is configured. A port that only accepts TCP, or a
    broker that refuses the credentials, is "unreachable"."""
    env = os.environ if environ is None else environ
    url = env.get(BROKER_URL_VARIABLE, "").strip()
    if not url:
        return "not_checked"
    try:
        with Connection(  # type: ignore[no-untyped-call]  # untyped upstream
            url,
            connect_timeout=deadline_s,
            transport_options={
                "socket_connect_timeout": deadline_s,
                "socket_timeout": deadline_s,
                "max_retries": 0,
            },
        ) as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=deadline_s
            )
            connection.default_channel  # noqa: B018 (opens a channel: the broker answered)
    except Exception:  # whatever failed (network, protocol, credentials): only the word
        logger.warning("readiness: the broker did not answer as a broker", exc_info=True)
        return "unreachable"
    return "ok"


def check_readiness(
    classroom: Classroom | None,
    environ: Mapping[str, str] | None = None,
    *,
    deadline_s: float = CHECK_DEADLINE_S,
) -> Readiness:
    """Every check, synchronously. `classroom` None means it could not even be opened."""
    database: CheckWord
    migrations: CheckWord
    if classroom is None:
        database, migrations = "unreachable", "not_checked"
    else:
        database, migrations = schema_words(classroom)
    return Readiness(database, migrations, broker_word(environ, deadline_s=deadline_s))


# ---- probes share checks -----------------------------------------------------------------------
# /readyz is unauthenticated: a burst of probes must not become a burst of database and broker
# connections, nor fill the process's threads while a broker hangs. Each check runs on its own
# thread, one at a time per database and per broker; probes that come meanwhile wait for its
# answer, and one within FRESH_S after it is answered from it.

FRESH_S = 1.0
_shared_lock = threading.Lock()
_running: dict[tuple[str, object], Future[Any]] = {}
_answered: dict[tuple[str, object], tuple[float, Any]] = {}


def _shared(key: tuple[str, object], check: Callable[[], Any]) -> Future[Any]:
    """The running (or fresh) answer of the check named `key`, starting it when there is none."""
    with _shared_lock:
        fresh = _answered.get(key)
        if fresh is not None and time.monotonic() - fresh[0] < FRESH_S:
            done: Future[Any] = Future()
            done.set_result(fresh[1])
            return done
        running = _running.get(key)
        if running is not None:
            return running
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()  # nobody's cancel stops it for the others
        _running[key] = future

    def run() -> None:
        try:
            answer = check()
        except BaseException as exc:  # handed to whoever waits
            with _shared_lock:
                _running.pop(key, None)
            future.set_exception(exc)
            return
        with _shared_lock:
            _running.pop(key, None)
            _answered[key] = (time.monotonic(), answer)
        future.set_result(answer)

    threading.Thread(target=run, name=f"sislink-readiness-{key[0]}", daemon=True).start()
    return future


async def _within(future: Future[Any], deadline_s: float) -> Any:
    return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout=deadline_s)


async def check_readiness_within(
    classroom: Classroom | None,
    environ: Mapping[str, str] | None = None,
    *,
    deadline_s: float = CHECK_DEADLINE_S,
) -> Readiness:
    """Every check off the event loop, shared between probes, bounded: a check past twice its
    deadline is "unreachable" (and only that check: a hung broker does not make the database
    look down)."""
    env = os.environ if environ is None else environ
    database: CheckWord
    migrations: CheckWord
    if classroom is None:
        database, migrations = "unreachable", "not_checked"
        schema = None
    else:
        where = (id(classroom), str(classroom.engine.url))  # the URL's password is masked
        schema = _shared(("database", where), lambda: schema_words(classroom))
    url = env.get(BROKER_URL_VARIABLE, "").strip()
    broker_check = _shared(
        ("broker", url), lambda: broker_word({BROKER_URL_VARIABLE: url}, deadline_s=deadline_s)
    )
    if schema is not None:
        try:
            database, migrations = await _within(schema, deadline_s * 2)
        except TimeoutError:
            logger.warning("readiness: the database took longer than %.0f s", deadline_s * 2)
            database, migrations = "unreachable", "not_checked"
    broker: CheckWord
    try:
        broker = await _within(broker_check, deadline_s * 2)
    except TimeoutError:
        logger.warning("readiness: the broker took longer than %.0f s", deadline_s * 2)
        broker = "unreachable"
    return Readiness(database, migrations, broker)
