"""Reading a collection's pages into models (issue 15): a page whose records are all valid is
validated in one pass from the bytes the SIS sent, and must come out exactly as the record by
record way (`spec.from_wire` on each decoded record) makes it; a page holding a bad record is
read record by record, so the bad one is set aside (`iter_model_pages`) or stops the walk
(`iter_collection`) exactly as before. A body that only Python's json reads is still read.

The SIS is `hostile.hostile_sis.HostileSIS` (a real server on loopback) serving fixed bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from hostile.hostile_sis import HostileSIS, Received, Reply
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.consumer.exceptions import MalformedResponse
from sislink.oneroster.models import Base
from sislink.oneroster.versions import spec_for

pytestmark = pytest.mark.anyio


def _user(sourced_id: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "sourcedId": sourced_id,
        "status": "active",
        "dateLastModified": "2026-01-01T00:00:00.000Z",
        "enabledUser": "true",
        "givenName": "Ada",
        "familyName": sourced_id,
        "roles": [{"roleType": "primary", "role": "student", "org": {"sourcedId": "school-1"}}],
    }
    record.update(fields)
    return record


# Records that test what the models do on read: text booleans, a time in another zone and
# one without a zone (both made UTC), a GUIDRef id sent as a number, fields the model does
# not know, metadata of any shape, a missing dateLastModified is not here (it would be "now").
VARIED_USERS = [
    _user("u1"),
    _user("u2", enabledUser="false", dateLastModified="2026-03-01T10:00:00+02:00"),
    _user(
        "u3",
        dateLastModified="2026-03-01T10:00:00",
        primaryOrg={"sourcedId": 42, "type": "org", "href": "https://sis.example/orgs/42"},
        userIds=[{"type": "studentId", "identifier": "S3"}],
        metadata={"nested": {"list": [1, 2.5, None, True]}},
        somethingElse={"ignored": ["entirely"]},
        grades=["09"],
    ),
    _user("u4", enabledUser=False, status="tobedeleted", email="a\u00e9\u4e2d@x.example"),
]


def _pages_of(pages: list[bytes]) -> Any:
    """A SIS that answers the offset where page n starts with `pages[n]` (as bytes, as they
    are), and X-Total-Count with the records of every page together."""
    counts = [len(_records_in(body)) for body in pages]
    starts = {sum(counts[:n]): n for n in range(len(pages))}

    def shape(request: Received) -> Reply:
        if not request.path.endswith("/users"):
            return Reply(404)
        index = starts.get(int(request.query.get("offset", "0")))
        body = pages[index] if index is not None else b'{"users": []}'
        headers = {"Content-Type": "application/json", "X-Total-Count": str(sum(counts))}
        return Reply(200, headers, body)

    return shape


def _records_in(body: bytes) -> list[Any]:
    try:
        return list(json.loads(body)["users"])
    except ValueError:
        return []


def _page(records: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"users": records, **extra}).encode()


def _one_by_one(records: list[dict[str, Any]], version: str = "1.2") -> list[Base]:
    spec = spec_for(version)
    return [spec.from_wire("user", record) for record in records]


async def test_valid_pages_come_out_as_the_record_by_record_way_makes_them() -> None:
    pages = [_page(VARIED_USERS[:2]), _page(VARIED_USERS[2:], statusInfoSet=[])]
    with HostileSIS(_pages_of(pages)) as sis:
        async with OneRosterClient(sis.settings()) as client:
            models = [m async for m in client.iter_collection("users", page_size=2)]
            paged = [p async for p in client.iter_model_pages("users", page_size=2)]
    expected = _one_by_one(VARIED_USERS)
    assert models == expected
    assert [type(m) for m in models] == [type(m) for m in expected]
    assert [p.models for p in paged] == [expected[:2], expected[2:]]
    assert all(p.rejected == [] for p in paged)
    # What the read does, spelled out (not only "the same as before"):
    assert [m.date_last_modified.isoformat() for m in models[:3]] == [
        "2026-01-01T00:00:00+00:00",
        "2026-03-01T08:00:00+00:00",
        "2026-03-01T10:00:00+00:00",
    ]
    assert [m.enabled_user for m in models] == [True, False, True, False]  # type: ignore[attr-defined]
    assert models[2].primary_org.sourced_id == "42"  # type: ignore[attr-defined]


async def test_a_bad_record_is_set_aside_by_itself_with_the_error_from_wire_gives() -> None:
    bad = _user("u-bad")
    del bad["givenName"]
    pages = [_page([VARIED_USERS[0], bad, VARIED_USERS[1]]), _page(VARIED_USERS[2:])]
    with HostileSIS(_pages_of(pages)) as sis:
        async with OneRosterClient(sis.settings()) as client:
            paged = [p async for p in client.iter_model_pages("users", page_size=3)]
    assert [len(p.models) for p in paged] == [2, 2]  # the walk went on past the bad record
    assert paged[1].models == _one_by_one(VARIED_USERS[2:])
    assert paged[1].rejected == []
    page = paged[0]
    assert page.models == _one_by_one([VARIED_USERS[0], VARIED_USERS[1]])
    assert len(page.rejected) == 1
    record, error = page.rejected[0]
    assert record == bad
    with pytest.raises(ValidationError) as expected:
        spec_for("1.2").from_wire("user", bad)
    assert error.errors() == expected.value.errors()
    assert str(error) == str(expected.value)


async def test_a_record_dated_past_year_9999_in_utc_is_set_aside_not_a_crash() -> None:
    # 9999-12-31T23:30:00-01:00 is in the year 10000 in UTC: astimezone raised OverflowError,
    # which neither the one-pass read nor the record-by-record way caught.
    bad = _user("u-late", dateLastModified="9999-12-31T23:30:00-01:00")
    pages = [_page([VARIED_USERS[0], bad, VARIED_USERS[1]])]
    with HostileSIS(_pages_of(pages)) as sis:
        async with OneRosterClient(sis.settings()) as client:
            paged = [p async for p in client.iter_model_pages("users", page_size=3)]
            with pytest.raises(MalformedResponse) as caught:
                _ = [m async for m in client.iter_collection("users", page_size=3)]
    assert [p.models for p in paged] == [_one_by_one([VARIED_USERS[0], VARIED_USERS[1]])]
    [(record, error)] = paged[0].rejected
    assert record == bad
    assert [(e["type"], e["loc"]) for e in error.errors()] == [
        ("datetime_out_of_range", ("dateLastModified",))
    ]
    assert "(sourcedId 'u-late'): dateLastModified: " in str(caught.value)


async def test_a_page_that_is_not_a_list_of_records_stops_the_walk_as_before() -> None:
    pages = [_page([VARIED_USERS[0]]), _page([VARIED_USERS[1], "u-text"])]
    with HostileSIS(_pages_of(pages)) as sis:
        async with OneRosterClient(sis.settings()) as client:
            read: list[Base] = []
            with pytest.raises(MalformedResponse, match="answered without a 'users' list"):
                async for page in client.iter_model_pages("users", page_size=1):
                    read.extend(page.models)
    assert read == _one_by_one([VARIED_USERS[0]])


async def test_iter_collection_yields_the_records_before_a_bad_one_then_stops() -> None:
    bad = _user("u-bad", roles="not a list")
    pages = [_page([VARIED_USERS[0], bad, VARIED_USERS[1]])]
    with HostileSIS(_pages_of(pages)) as sis:
        async with OneRosterClient(sis.settings()) as client:
            read: list[Base] = []
            with pytest.raises(MalformedResponse) as caught:
                async for model in client.iter_collection("users", page_size=3):
                    read.append(model)
    assert read == _one_by_one([VARIED_USERS[0]])
    assert str(caught.value).startswith(
        "The SIS sent a user that is not valid OneRoster 1.2 (sourcedId 'u-bad'): roles: "
    )


async def test_a_body_only_pythons_json_reads_is_still_read() -> None:
    # A UTF-8 byte order mark, and a lone surrogate escaped in a string: json.loads reads
    # both; pydantic's faster JSON parser refuses them, so sislink falls back.
    with_bom = b"\xef\xbb\xbf" + _page([VARIED_USERS[0]])
    surrogate = _page([_user("u-s", givenName="A\ud800")])
    assert json.loads(surrogate)["users"][0]["givenName"] == "A\ud800"
    for body, wanted in (
        (with_bom, VARIED_USERS[0]),
        (surrogate, json.loads(surrogate)["users"][0]),
    ):
        with HostileSIS(_pages_of([body])) as sis:
            async with OneRosterClient(sis.settings()) as client:
                records = [r async for r in client.iter_records("users", page_size=5)]
                models = [m async for m in client.iter_collection("users", page_size=5)]
                paged = [p async for p in client.iter_model_pages("users", page_size=5)]
        assert records == [wanted]
        assert models == _one_by_one([wanted])
        assert [p.models for p in paged] == [_one_by_one([wanted])]


async def test_a_body_that_is_not_json_is_refused_as_before() -> None:
    with HostileSIS(_pages_of([b"<html>not json</html>"])) as sis:
        async with OneRosterClient(sis.settings()) as client:
            with pytest.raises(MalformedResponse, match="with a body that is not JSON"):
                async for _ in client.iter_model_pages("users", page_size=5):
                    pass


async def test_a_1_1_user_page_is_converted_from_its_role_and_orgs() -> None:
    user_1_1 = _user("u-11", role="teacher", orgs=[{"sourcedId": "school-9"}])
    del user_1_1["roles"]
    with HostileSIS(_pages_of([_page([user_1_1])])) as sis:
        async with OneRosterClient(sis.settings(version="1.1")) as client:
            models = [m async for m in client.iter_collection("users", page_size=5)]
            paged = [p async for p in client.iter_model_pages("users", page_size=5)]
    assert models == _one_by_one([user_1_1], "1.1")
    assert [p.models for p in paged] == [models]
    assert models[0].roles[0].role == "teacher"  # type: ignore[attr-defined]
    assert models[0].roles[0].org.sourced_id == "school-9"  # type: ignore[attr-defined]


async def test_a_record_holding_a_nul_character_is_set_aside_with_where_it_is() -> None:
    # JSON carries a NUL escaped (\u0000); pydantic reads it, but no database sislink writes
    # to stores it (PostgreSQL refuses it, SQLite's JSON cuts an id at it). Each such record
    # is refused alone, wherever the NUL is in what the model keeps; one in a field the
    # model ignores costs the record nothing.
    nul_id = _user("u-\x00-id")
    nul_name = _user("u-name", givenName="Ad\x00a")
    nul_ref = _user(
        "u-ref", roles=[{"roleType": "primary", "role": "student", "org": {"sourcedId": "s\x00"}}]
    )
    nul_ignored = _user("u-ignored", somethingElse="x\x00y")
    records = [VARIED_USERS[0], nul_id, nul_name, nul_ignored, nul_ref, VARIED_USERS[1]]
    body = _page(records)
    assert b"\\u0000" in body
    with HostileSIS(_pages_of([body])) as sis:
        async with OneRosterClient(sis.settings()) as client:
            paged = [p async for p in client.iter_model_pages("users", page_size=6)]
            with pytest.raises(MalformedResponse) as caught:
                _ = [m async for m in client.iter_collection("users", page_size=6)]
    [page] = paged
    assert page.models == _one_by_one([VARIED_USERS[0], nul_ignored, VARIED_USERS[1]])
    assert [record for record, _ in page.rejected] == [nul_id, nul_name, nul_ref]
    assert [[(e["type"], e["loc"]) for e in error.errors()] for _, error in page.rejected] == [
        [("nul_character", ("sourcedId",))],
        [("nul_character", ("givenName",))],
        [("nul_character", ("roles", 0, "org", "sourcedId"))],
    ]
    assert "ask the SIS vendor to remove it" in str(page.rejected[0][1])
    assert "(sourcedId 'u-\\x00-id'): sourcedId: Text should not hold a NUL" in str(caught.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
async def test_a_nul_character_is_found_in_a_page_only_pythons_json_reads(encoding: str) -> None:
    # A page in UTF-16 or UTF-32 spells the escape \u0000 with zero bytes between its
    # characters: the byte search for it must not take such a page for one without a NUL
    # (records read one by one are only looked in when the page may hold one).
    nul_name = _user("u-name", givenName="Ad\x00a")
    body = json.dumps({"users": [VARIED_USERS[0], nul_name]}).encode(encoding)
    with HostileSIS(_pages_of([body])) as sis:
        async with OneRosterClient(sis.settings()) as client:
            [page] = [p async for p in client.iter_model_pages("users", page_size=2)]
    assert page.models == _one_by_one([VARIED_USERS[0]])
    assert [[e["type"] for e in error.errors()] for _, error in page.rejected] == [
        ["nul_character"]
    ]


async def test_a_1_1_user_holding_a_nul_character_is_set_aside() -> None:
    # 1.1 users are always read record by record (their role and orgs converted first).
    users_1_1 = [
        _user("u-11", role="teacher", orgs=[{"sourcedId": "school-9"}]),
        _user("u-12", role="te\x00acher", orgs=[{"sourcedId": "school-9"}]),
        _user("u-13", role="teacher", orgs=[{"sourcedId": "school-\x009"}]),
    ]
    for user in users_1_1:
        del user["roles"]
    with HostileSIS(_pages_of([_page(users_1_1)])) as sis:
        async with OneRosterClient(sis.settings(version="1.1")) as client:
            [page] = [p async for p in client.iter_model_pages("users", page_size=3)]
    assert page.models == _one_by_one(users_1_1[:1], "1.1")
    assert [[(e["type"], e["loc"]) for e in error.errors()] for _, error in page.rejected] == [
        [("nul_character", ("roles", 0, "role"))],
        [("nul_character", ("roles", 0, "org", "sourcedId"))],
    ]


def test_a_nul_character_in_metadata_keys_or_values_is_found_as_by_the_walk() -> None:
    # The serializer's JSON is searched first; what it finds must be what the walk says.
    spec = spec_for("1.2")
    for metadata, loc in [
        ({"k\x00": 1}, ("metadata", "k\\x00")),  # the key written out
        ({"k": ["a", {"b": "c\x00"}]}, ("metadata", "k", 1, "b")),
    ]:
        with pytest.raises(ValidationError) as refused:
            spec.from_wire("user", _user("u-meta", metadata=metadata))
        assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [("nul_character", loc)]
    # A backslash and "u0000" as text is no NUL (its JSON is \\u0000: found, then cleared).
    assert spec.from_wire("user", _user("u-text", givenName="\\u0000")).given_name == "\\u0000"  # type: ignore[attr-defined]
