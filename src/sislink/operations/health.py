"""Is this process ready to serve? The database answers, its schema is current, and the job
broker (when one is configured) answers as a broker.

The answers are status words only ("ok", "unreachable", "behind", "not_checked"): a readiness
probe is unauthenticated, so it never says which host, which error or which revision.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

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
    classroom: Classroom | None, environ: Mapping[str, str] | None = None
) -> Readiness:
    """Every check, synchronously. `classroom` None means it could not even be opened."""
    database: CheckWord
    migrations: CheckWord
    if classroom is None:
        database, migrations = "unreachable", "not_checked"
    else:
        database, migrations = schema_words(classroom)
    return Readiness(database, migrations, broker_word(environ))


async def check_readiness_within(
    classroom: Classroom | None,
    environ: Mapping[str, str] | None = None,
    *,
    deadline_s: float = CHECK_DEADLINE_S,
) -> Readiness:
    """`check_readiness` off the event loop, bounded: past the deadline, not ready."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(check_readiness, classroom, environ), timeout=deadline_s * 2
        )
    except TimeoutError:
        logger.warning("readiness: the checks took longer than %.0f s", deadline_s * 2)
        return Readiness("unreachable", "not_checked", "not_checked")
