"""What reading a page as models does to Python's garbage collector (issue 15: the collector's
walks of each page's models were a fifth of the CPU of reading a district): the page's models
go straight to the oldest generation, the collector is on again afterwards, nothing is left
frozen, objects frozen by someone else stay frozen, a collector that was off stays off, and an
answer and its body are freed without the collector (no cycle)."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hostile.hostile_sis import HostileSIS, Received, Reply
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.consumer import client as client_module
from sislink.oneroster.consumer.client import ModelPage

pytestmark = pytest.mark.anyio


def _enrolment(n: int) -> dict[str, Any]:
    return {
        "sourcedId": f"e{n}",
        "status": "active",
        "dateLastModified": "2026-01-01T00:00:00.000Z",
        "user": {"sourcedId": f"u{n}", "type": "user"},
        "class": {"sourcedId": "c1", "type": "class"},
        "school": {"sourcedId": "s1", "type": "org"},
        "role": "student",
        "primary": "false",
    }


RECORDS = [_enrolment(n) for n in range(50)]


def _sis(request: Received) -> Reply:
    if not request.path.endswith("/enrollments"):
        return Reply(404)
    offset = int(request.query.get("offset", "0"))
    limit = int(request.query.get("limit", "100"))
    body = json.dumps({"enrollments": RECORDS[offset : offset + limit]}).encode()
    headers = {"Content-Type": "application/json", "X-Total-Count": str(len(RECORDS))}
    return Reply(200, headers, body)


async def _pages(page_size: int = 25) -> list[ModelPage]:
    with HostileSIS(_sis) as sis:
        async with OneRosterClient(sis.settings()) as client:
            return [p async for p in client.iter_model_pages("enrollments", page_size=page_size)]


@pytest.fixture
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


async def test_a_pages_models_are_not_left_to_the_young_collections(
    collector_restored: None,
) -> None:
    gc.enable()
    pages = await _pages()
    assert sum(len(p.models) for p in pages) == len(RECORDS)
    young = {id(o) for o in gc.get_objects(0)} | {id(o) for o in gc.get_objects(1)}
    made = [m for p in pages for m in p.models]
    made += [m.user for m in made]  # type: ignore[attr-defined]
    assert not [m for m in made if id(m) in young]
    assert all(gc.is_tracked(m) for m in made)  # still the collector's, in the oldest generation


async def test_the_collector_is_on_and_nothing_is_frozen_after_pages_are_read(
    collector_restored: None,
) -> None:
    gc.enable()
    await _pages()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


async def test_objects_someone_else_froze_stay_frozen(collector_restored: None) -> None:
    gc.enable()
    theirs = [{"frozen": "on purpose"}]
    gc.freeze()

    def in_the_collectors_generations() -> bool:
        return any(o is theirs for o in gc.get_objects())  # the frozen ones are in none

    assert not in_the_collectors_generations()
    pages = await _pages()
    assert sum(len(p.models) for p in pages) == len(RECORDS)
    assert not in_the_collectors_generations()
    assert gc.isenabled()


async def test_a_collector_that_was_off_stays_off(collector_restored: None) -> None:
    gc.disable()
    pages = await _pages()
    assert sum(len(p.models) for p in pages) == len(RECORDS)
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


async def test_an_answer_and_its_body_are_freed_without_the_collector(
    collector_restored: None,
) -> None:
    answers: list[weakref.ref[httpx.Response]] = []
    with HostileSIS(_sis) as sis:
        async with OneRosterClient(sis.settings()) as client:
            exchange = client._exchange

            async def kept(*args: Any, **kwargs: Any) -> httpx.Response:
                response = await exchange(*args, **kwargs)
                answers.append(weakref.ref(response))
                return response

            client._exchange = kept  # type: ignore[method-assign]
            gc.collect()
            gc.disable()
            records = [r async for r in client.iter_records("enrollments", page_size=25)]
    assert len(records) == len(RECORDS)
    assert len(answers) >= 3  # the token, then the pages
    assert [a for a in answers if a() is not None] == []


class _InterruptedAfter:
    """The gc module, but `step` is interrupted (KeyboardInterrupt, as from a signal) just
    after it has done its work."""

    def __init__(self, step: str) -> None:
        self.step = step

    def __getattr__(self, name: str) -> Any:
        real = getattr(gc, name)
        if name != self.step:
            return real

        def interrupted(*args: Any) -> Any:
            real(*args)
            raise KeyboardInterrupt

        return interrupted


@pytest.mark.parametrize("step", ["disable", "freeze"])
def test_an_interrupt_between_two_steps_leaves_the_collector_on_and_nothing_frozen(
    step: str, collector_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.enable()
    monkeypatch.setattr(client_module, "gc", _InterruptedAfter(step))
    with pytest.raises(KeyboardInterrupt), client_module._collector_paused():
        pass
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
