"""What the consumer puts on the wire, as the SIS sees it: paging options, page-by-page
streaming, timeouts, Retry-After, which calls are retried, the concurrency and rate limits, the
breaker's single probe, and a SIS that ignores `filter`.

Each test watches the built-in SIS from the server side (`watched_provider`), so it checks what
the SIS received and when, not what the client says it did.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qs

import pytest

from sislink.oneroster.consumer import (
    ConnectionSettings,
    OneRosterClient,
)

pytestmark = pytest.mark.anyio
Connect = Callable[..., ConnectionSettings]
Watched = Callable[..., AbstractContextManager[Any]]


# ---- a SIS that ignores filter -------------------------------------------------------------


async def test_a_sis_ignoring_the_email_filter_does_not_make_another_teacher_this_one(
    connect: Connect, watched: Watched
) -> None:
    with watched() as w:
        w.watch.ignores_filter = True
        async with OneRosterClient(connect(w.sis)) as sis:
            assert await sis.find_teacher_by_email("nobody@example.org") is None
            found = await sis.find_teacher_by_email(w.sis.teacher_email.upper())
        asked = [parse_qs(r.query) for r in w.watch.calls("GET")]
    assert found is not None and (found.email or "").lower() == w.sis.teacher_email.lower()
    assert all("email=" in q["filter"][0] for q in asked)  # the filter was sent, and ignored
