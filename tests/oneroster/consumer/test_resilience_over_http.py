"""The consumer absorbs what real SIS do: 500/503s, 429s with Retry-After, dropped connections,
tokens that expire mid-run, a SIS that is down, nothing listening, and a SIS that ignores offset."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import uvicorn

from sislink.oneroster.consumer import (
    ConnectionSettings,
    OneRosterClient,
    PagingError,
    SISDown,
    SISUnreachable,
)
from sislink.oneroster.models import GUIDRef, LineItem, Result
from sislink.oneroster.provider.app import create_app
from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import RunningProvider, build_config, running_provider
from sislink.oneroster.provider.store import ProviderStore

pytestmark = pytest.mark.anyio
Connect = Callable[..., ConnectionSettings]

# The "Done when": 10% 503, 5% 429 and 2% dropped connections, half of them dropped
# before the SIS saw the request, half after it had handled it (a write applied, its answer
# lost).
FAULTS = {"rate_503": 0.10, "rate_429": 0.05, "drop_rate": 0.01, "drop_after_rate": 0.01}
PATIENT = {"max_retries": 10, "failure_threshold": 25}
WRITES = ("PUT", "DELETE")


def _without_modified(record: dict[str, Any], origin: str = "") -> str:
    """A record as comparable text: no dateLastModified, hrefs without the server's port."""
    kept = {k: v for k, v in record.items() if k != "dateLastModified"}
    text = json.dumps(kept, sort_keys=True)
    return text.replace(origin, "ORIGIN") if origin else text


async def _district(settings: ConnectionSettings) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Every user, enrolment and class, and how many attempts reading them took."""
    async with OneRosterClient(settings) as sis:
        data = {
            name: [r async for r in sis.iter_records(name, page_size=60)]
            for name in ("users", "enrollments", "classes")
        }
        return data, sis.calls_made


async def _write_marks(settings: ConnectionSettings, sis_data: RunningProvider) -> int:
    """A teacher's marks for three lineItems (every student's result, sent all at once), then
    a quarter of the results deleted; returns how many attempts it took."""
    async with OneRosterClient(settings) as sis:
        teacher = await sis.find_teacher_by_email(sis_data.teacher_email)
        assert teacher is not None
        klass = (await sis.classes_for_teacher(teacher.sourced_id))[0]
        students = await sis.students_for_class(klass.sourced_id)
        category = (await sis.categories_for_class(klass.sourced_id))[0]
        period = (await sis.grading_periods_for_term(klass.terms[0].sourced_id))[0]
        item_ids = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]
        await asyncio.gather(
            *(
                sis.put_line_item(
                    LineItem(
                        sourced_id=item_id,
                        title=f"Fault-tolerant essay {n}",
                        assign_date=datetime(2026, 3, 1, tzinfo=UTC),
                        due_date=datetime(2026, 3, 8, tzinfo=UTC),
                        class_=GUIDRef(sourced_id=klass.sourced_id),
                        school=GUIDRef(sourced_id=klass.school.sourced_id),
                        category=GUIDRef(sourced_id=category.sourced_id),
                        grading_period=GUIDRef(sourced_id=period.sourced_id),
                        result_value_min=0,
                        result_value_max=100,
                    )
                )
                for n, item_id in enumerate(item_ids)
            )
        )
        results = [
            Result(
                sourced_id=str(uuid.UUID(int=1000 * (n + 1) + i)),
                line_item=GUIDRef(sourced_id=item_id),
                student=GUIDRef(sourced_id=student.sourced_id),
                class_=GUIDRef(sourced_id=klass.sourced_id),
                score_status="fully graded",
                score=float(50 + i),
                score_date=date(2026, 3, 9),
            )
            for n, item_id in enumerate(item_ids)
            for i, student in enumerate(students)
        ]
        outcomes = await asyncio.gather(*(sis.put_result(r) for r in results))
        assert all(o.status_code in (200, 201) for o in outcomes)
        await asyncio.gather(*(sis.delete_result(r.sourced_id) for r in results[::4]))
        return sis.calls_made


def _gradebook(sis: RunningProvider) -> dict[str, list[str]]:
    """Every lineItem and result the SIS holds, comparable across two servers."""
    return {
        entity: sorted(_without_modified(r, sis.origin) for r in sis.store.iter_all(entity))
        for entity in ("lineItem", "result")
    }


def _met(sis: RunningProvider, methods: tuple[str, ...]) -> Counter[str]:
    return Counter({kind: n for (method, kind), n in sis.faults_met.items() if method in methods})


async def test_faults_change_neither_the_records_read_nor_the_state_written(
    connect: Connect,
) -> None:
    with (
        running_provider(students=150) as clean,
        running_provider(students=150, **FAULTS) as faulty,
    ):
        expected, clean_calls = await _district(connect(clean))
        got, faulty_calls = await _district(connect(faulty, **PATIENT))
        assert faulty_calls > clean_calls  # faults were met, and retried
        assert _met(faulty, ("GET",)).keys() >= {"503", "429"}
        for name, records in expected.items():
            assert [_without_modified(r, faulty.origin) for r in got[name]] == [
                _without_modified(r, clean.origin) for r in records
            ], name

        clean_writes = await _write_marks(connect(clean), clean)
        faulty_writes = await _write_marks(connect(faulty, **PATIENT), faulty)
        # The writes met every kind of fault: 503s, 429s, and connections dropped both before
        # the SIS saw a write and after it had applied one.
        met = _met(faulty, WRITES)
        assert met.keys() >= {"503", "429", "drop_after"}, met
        assert met["drop"] + met["drop_after"] >= 2, met
        assert faulty_writes > clean_writes
        assert clean.store.count("result") > 0
        assert _gradebook(faulty) == _gradebook(clean)


async def test_a_token_expiring_mid_run_is_renewed_without_a_failed_call(
    connect: Connect,
) -> None:
    with running_provider(students=40, token_ttl_s=2) as running:
        async with OneRosterClient(connect(running)) as sis:
            deadline = time.monotonic() + 4.0
            calls = 0
            while time.monotonic() < deadline:
                page = await sis.page("teachers", limit=1)
                assert len(page.records) == 1
                calls += 1
            assert sis.tokens_fetched >= 3  # renewed twice mid-run
            # Every attempt on the wire was a call or a token request: no call was refused
            # (401) and repeated with a new token.
            assert sis.calls_made == calls + sis.tokens_fetched


async def test_a_token_refused_before_its_announced_expiry_is_renewed_once_and_retried(
    connect: Connect,
) -> None:
    with running_provider(students=40, token_ttl_s=1) as running:
        async with OneRosterClient(connect(running)) as sis:
            await sis.authenticate()
            # As if the SIS revoked it: our copy still believes the token lasts an hour.
            cache = sis._tokens
            assert cache is not None and cache._token is not None
            cache._token = dataclasses.replace(cache._token, renew_at=math.inf)
            await asyncio.sleep(1.2)
            pages = await asyncio.gather(*(sis.page("teachers", limit=1) for _ in range(20)))
            assert all(len(p.records) == 1 for p in pages)
            assert sis.tokens_fetched == 2  # one renewal shared by all twenty callers


async def test_a_sis_that_keeps_failing_is_reported_down_not_hammered(connect: Connect) -> None:
    with running_provider(students=40, fault_rate=1.0) as running:
        settings = connect(running, max_retries=50, failure_threshold=5)
        async with OneRosterClient(settings) as sis:
            with pytest.raises(SISDown, match="looks down: 5 attempts in a row failed"):
                await sis.page("teachers", limit=1)
            calls = sis.calls_made
            with pytest.raises(SISDown):
                await sis.page("teachers", limit=1)
            assert sis.calls_made == calls  # the breaker is open: no attempt made


async def test_nothing_listening_says_so(connect: Connect) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_provider(students=40) as running:
        settings = connect(running)
    dead = dataclasses.replace(
        settings,
        base_url=f"http://127.0.0.1:{port}/ims/oneroster",
        auth=dataclasses.replace(settings.auth, token_url=f"http://127.0.0.1:{port}/oauth2/token"),  # type: ignore[call-arg]
        max_retries=1,
    )
    async with OneRosterClient(dead) as sis:
        with pytest.raises(SISUnreachable, match="connection refused: nothing is listening"):
            await sis.page("teachers", limit=1)


class _IgnoreOffset:
    """An ASGI wrapper that makes the built-in SIS behave like a server that ignores `offset`
    (and sends no Link header), as some real ones do."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode()
            kept = "&".join(p for p in query.split("&") if not p.startswith("offset="))
            scope = {**scope, "query_string": kept.encode()}

            async def send_without_link(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message = {
                        **message,
                        "headers": [(k, v) for k, v in message["headers"] if k.lower() != b"link"],
                    }
                await send(message)

            await self.app(scope, receive, send_without_link)
            return
        await self.app(scope, receive, send)


@pytest.fixture
def offset_ignoring_sis() -> Iterator[tuple[str, str]]:
    store = ProviderStore()
    seed_district(store, seed=7, students=60)
    config = build_config(profile_named("generic-1.2"), client_id="c", client_secret="s")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(
        uvicorn.Config(
            _IgnoreOffset(create_app(store, config)), log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield origin + "/ims/oneroster", origin + "/oauth2/token"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


async def test_a_sis_that_ignores_offset_is_stopped_with_a_clear_error(
    offset_ignoring_sis: tuple[str, str],
) -> None:
    from sislink.oneroster.consumer import OAuth2Settings

    base_url, token_url = offset_ignoring_sis
    settings = ConnectionSettings(
        version="1.2",
        base_url=base_url,
        auth=OAuth2Settings(token_url=token_url, client_id="c", client_secret="s"),
    )
    async with OneRosterClient(settings) as sis:
        seen = []
        with pytest.raises(PagingError, match="ignores `offset`"):
            async for user in sis.iter_collection("users", page_size=10):
                seen.append(user.sourced_id)
        assert len(seen) == 10  # the first page once, never the repeat
