"""Injected faults are present and seeded; latency does not serialise; paging, filters and PUT checks."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from sislink.oneroster.provider.faults import FaultConfig, FaultPlan
from sislink.oneroster.provider.server import RunningProvider, running_provider

ROSTER = "rostering/v1p2"


def _outcomes(sis: RunningProvider, token: str, n: int) -> list[str]:
    seen = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(n):
            try:
                response = client.get(sis.url(f"{ROSTER}/orgs"))
                seen.append(str(response.status_code))
                if response.status_code == 429:
                    assert response.headers["retry-after"] == "1"
            except httpx.TransportError:
                seen.append("drop")
    return seen


def test_faults_appear_in_their_shares_and_repeat_with_the_seed(fetch_token: Any) -> None:
    runs = []
    for _ in range(2):
        with running_provider(
            students=40, seed=3, fault_rate=0.2, rate_429=0.1, drop_rate=0.1
        ) as sis:
            runs.append(_outcomes(sis, fetch_token(sis), 200))
    assert runs[0] == runs[1]
    counts = Counter(runs[0])
    assert 20 <= counts["500"] + counts["503"] <= 60 and counts["500"] and counts["503"]
    assert 8 <= counts["429"] <= 35
    assert 8 <= counts["drop"] <= 35
    assert 80 <= counts["200"] <= 140


@pytest.mark.anyio
async def test_latency_does_not_serialise_concurrent_requests(fetch_token: Any) -> None:
    n, latency_ms = 10, 200
    with running_provider(students=40, latency_ms=latency_ms) as sis:
        token = fetch_token(sis)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
            started = time.perf_counter()
            responses = await asyncio.gather(
                *(client.get(sis.url(f"{ROSTER}/orgs")) for _ in range(n))
            )
            elapsed = time.perf_counter() - started
    assert all(r.status_code == 200 for r in responses)
    assert elapsed >= latency_ms / 1000  # the latency is there
    assert elapsed < n * latency_ms / 1000 / 2  # ... and requests waited side by side


def test_paging_walks_every_user_with_total_and_links(
    provider: RunningProvider, http: httpx.Client
) -> None:
    total = int(http.get(f"{ROSTER}/users", params={"limit": 1}).headers["x-total-count"])
    seen: list[str] = []
    url: str | None = provider.url(f"{ROSTER}/users?limit=37")
    while url:
        response = http.get(url)
        assert int(response.headers["x-total-count"]) == total
        seen += [u["sourcedId"] for u in response.json()["users"]]
        links = {
            part.split('rel="')[1].rstrip('"'): part.split(">")[0].lstrip("<")
            for part in response.headers["link"].split(", ")
        }
        assert "first" in links and "last" in links
        url = links.get("next")
    assert len(seen) == len(set(seen)) == total
    assert http.get(f"{ROSTER}/users", params={"limit": 10000}).json()["users"].__len__() == total


def test_default_page_is_100(http: httpx.Client) -> None:
    assert len(http.get(f"{ROSTER}/enrollments").json()["enrollments"]) == 100


@pytest.mark.parametrize(
    ("filter_text", "check"),
    [
        ("role='teacher'", lambda e: e["role"] == "teacher"),
        ("role='teacher' OR role='student'", lambda e: e["role"] in ("teacher", "student")),
        (
            "class.sourcedId='cls-00001' AND role='student'",
            lambda e: e["class"]["sourcedId"] == "cls-00001" and e["role"] == "student",
        ),
        ("role!='student'", lambda e: e["role"] != "student"),
        ("dateLastModified>'2000-01-01T00:00:00Z'", lambda e: True),
        ("sourcedId~'0001'", lambda e: "0001" in e["sourcedId"]),
    ],
)
def test_filters_select_what_they_say(http: httpx.Client, filter_text: str, check: Any) -> None:
    response = http.get(f"{ROSTER}/enrollments", params={"filter": filter_text, "limit": 10000})
    assert response.status_code == 200
    items = response.json()["enrollments"]
    assert items and all(check(e) for e in items)


def test_a_quoted_value_with_a_doubled_quote_matches_nothing_and_is_valid(
    http: httpx.Client,
) -> None:
    response = http.get(f"{ROSTER}/users", params={"filter": "familyName='O''Neil'"})
    assert response.status_code == 200 and response.headers["x-total-count"] == "0"


@pytest.mark.parametrize(
    "bad",
    [
        "email",
        "email='a' AND",
        "email='a' AND b='c' OR d='e'",
        "nofield='x'",
        "dateLastModified>'yesterday'",
    ],
)
def test_malformed_filters_are_400_invalid_filter_field(http: httpx.Client, bad: str) -> None:
    response = http.get(f"{ROSTER}/users", params={"filter": bad})
    assert response.status_code == 400
    minor = response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
    assert minor == "invalid_filter_field"


def test_sort_order_by_and_fields(http: httpx.Client) -> None:
    response = http.get(
        f"{ROSTER}/users",
        params={
            "sort": "familyName",
            "orderBy": "desc",
            "fields": "sourcedId,familyName",
            "limit": 50,
        },
    )
    users = response.json()["users"]
    assert [u["familyName"] for u in users] == sorted(
        (u["familyName"] for u in users), reverse=True
    )
    assert all(set(u) == {"sourcedId", "familyName"} for u in users)
    assert http.get(f"{ROSTER}/users", params={"fields": "colour"}).status_code == 400
    assert http.get(f"{ROSTER}/users", params={"sort": "colour"}).status_code == 400


def test_unparseable_put_leaves_the_store_unchanged(
    provider: RunningProvider, http: httpx.Client
) -> None:
    before = provider.store.count("lineItem")
    bad_json = http.put(
        "gradebook/v1p2/lineItems/bad-1",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad_json.status_code == 400
    missing = http.put("gradebook/v1p2/lineItems/bad-1", json={"lineItem": {"title": "No dates"}})
    assert missing.status_code == 400
    description = missing.json()["imsx_description"]
    assert "lineItem.school" in description or "lineItem.assignDate" in description
    assert (
        provider.store.count("lineItem") == before
        and provider.store.get("lineItem", "bad-1") is None
    )
    assert (
        json.loads(bad_json.text)["imsx_CodeMinor"]["imsx_codeMinorField"][0][
            "imsx_codeMinorFieldValue"
        ]
        == "invaliddata"
    )


def test_unknown_ids_are_404_unknownobject(http: httpx.Client) -> None:
    for path in (
        f"{ROSTER}/classes/nope",
        f"{ROSTER}/teachers/nope/classes",
        f"{ROSTER}/students/tch-00001",
    ):
        response = http.get(path)
        assert response.status_code == 404, path
        assert (
            response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
            == "unknownobject"
        )


def test_exact_rates_give_each_status_its_own_share() -> None:
    plan = FaultPlan(
        FaultConfig(
            seed=5,
            rate_503=0.10,
            rate_500=0.05,
            rate_429=0.05,
            drop_rate=0.02,
            drop_after_rate=0.03,
        )
    )
    counts = Counter(plan.next().kind for _ in range(20_000))
    shares = {kind: n / 20_000 for kind, n in counts.items()}
    for kind, share in (
        ("503", 0.10),
        ("500", 0.05),
        ("429", 0.05),
        ("drop", 0.02),
        ("drop_after", 0.03),
        (None, 0.75),
    ):
        assert shares[kind] == pytest.approx(share, abs=0.01), kind


def test_fault_rate_keeps_splitting_into_500_and_503_and_old_seeds_keep_their_faults() -> None:
    old = FaultConfig(seed=9, fault_rate=0.2, rate_429=0.1, drop_rate=0.1)
    plan = FaultPlan(old)
    kinds = [plan.next().kind for _ in range(2000)]
    counts = Counter(kinds)
    assert counts["500"] == pytest.approx(200, abs=45) and counts["503"] == pytest.approx(
        200, abs=45
    )
    # The same rolls, checked as the configuration has always been read (500/503, 429, drop).
    rng = random.Random(9)
    expected = []
    for _ in range(2000):
        roll = rng.random()
        expected.append(
            ("500" if roll < 0.1 else "503")
            if roll < 0.2
            else "429"
            if roll < 0.2 + 0.1
            else "drop"
            if roll < 0.2 + 0.1 + 0.1
            else None
        )
    assert kinds == expected


def test_rates_that_add_up_to_more_than_everything_are_refused() -> None:
    with pytest.raises(ValueError, match="must not exceed 1"):
        FaultConfig(fault_rate=0.5, rate_503=0.4, drop_after_rate=0.2)
    with pytest.raises(ValueError, match="drop_after_rate is a share"):
        FaultConfig(drop_after_rate=1.5)


def _put_category(sis: RunningProvider, token: str, sourced_id: str) -> str:
    """PUTs a category; what the client saw: the status, or "drop" when no answer came."""
    body = {"category": {"sourcedId": sourced_id, "status": "active", "title": "Homework"}}
    try:
        response = httpx.put(
            sis.url(f"gradebook/v1p2/categories/{sourced_id}"),
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.TransportError:
        return "drop"
    return str(response.status_code)


def test_a_drop_after_the_request_keeps_the_write_and_a_drop_before_does_not(
    fetch_token: Any,
) -> None:
    with running_provider(students=40, drop_after_rate=1.0) as sis:
        assert _put_category(sis, fetch_token(sis), "cat-dropped-after") == "drop"
        assert sis.store.get("category", "cat-dropped-after") is not None  # applied, answer lost
        assert sis.faults_met == Counter({("PUT", "drop_after"): 1})
    with running_provider(students=40, drop_rate=1.0) as sis:
        assert _put_category(sis, fetch_token(sis), "cat-dropped-before") == "drop"
        assert sis.store.get("category", "cat-dropped-before") is None  # never reached the SIS
        assert sis.faults_met == Counter({("PUT", "drop"): 1})


def test_exact_503s_answer_503_with_the_imsx_status(fetch_token: Any) -> None:
    with running_provider(students=40, rate_503=1.0) as sis:
        response = httpx.get(
            sis.url(f"{ROSTER}/orgs"), headers={"Authorization": f"Bearer {fetch_token(sis)}"}
        )
        assert response.status_code == 503
        assert response.json()["imsx_codeMajor"] == "failure"
        assert sis.faults_met == Counter({("GET", "503"): 1})
