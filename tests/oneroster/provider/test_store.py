"""The provider's store: inserts replace by sourcedId, queries filter, sort, page and relate."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

import pytest

from sislink.oneroster.filters import FilterSyntaxError, parse
from sislink.oneroster.provider.store import STORED_FORM, ProviderStore, absolute_hrefs


def _enrollment(i: int, user: str, klass: str, role: str = "student") -> dict[str, Any]:
    return {
        "sourcedId": f"e{i}",
        "status": "active",
        "dateLastModified": f"2025-01-0{1 + i % 9}T00:00:00.000Z",
        "user": {"sourcedId": user, "type": "user", "href": "http://x/users/" + user},
        "class": {"sourcedId": klass, "type": "class", "href": "http://x/classes/" + klass},
        "school": {"sourcedId": "s1", "type": "org", "href": "http://x/orgs/s1"},
        "role": role,
    }


@pytest.fixture
def store() -> ProviderStore:
    s = ProviderStore()
    s.insert_many(
        "enrollment",
        [
            _enrollment(i, f"u{i % 10}", f"c{i % 3}", "teacher" if i < 3 else "student")
            for i in range(30)
        ],
    )
    return s


def test_insert_many_replaces_records_with_the_same_sourced_id(store: ProviderStore) -> None:
    store.insert_many("enrollment", [_enrollment(0, "u99", "c9")])
    assert store.count("enrollment") == 30
    assert store.get("enrollment", "e0")["user"]["sourcedId"] == "u99"  # type: ignore[index]
    # The old reference is gone, the new one answers.
    assert (
        store.query("enrollment", conditions=[store.referencing("enrollment", "class", "c9")]).total
        == 1
    )
    assert (
        store.query("enrollment", conditions=[store.referencing("enrollment", "user", "u0")]).total
        == 2
    )


def test_iter_all_streams_every_record_in_insertion_order(store: ProviderStore) -> None:
    assert [r["sourcedId"] for r in store.iter_all("enrollment")] == [f"e{i}" for i in range(30)]


def test_paging_with_offsets_visits_every_record_once(store: ProviderStore) -> None:
    seen: list[str] = []
    for offset in range(0, 40, 7):
        page = store.query("enrollment", limit=7, offset=offset)
        assert page.total == 30
        seen += [r["sourcedId"] for r in page.records]
    assert seen == [f"e{i}" for i in range(30)]


def test_filters_compare_dotted_fields_and_dates(store: ProviderStore) -> None:
    assert store.query("enrollment", filter=parse("class.sourcedId='c1'")).total == 10
    assert (
        store.query("enrollment", filter=parse("role='teacher' AND class.sourcedId='c1'")).total
        == 1
    )
    assert (
        store.query("enrollment", filter=parse("role='teacher' OR class.sourcedId='c1'")).total
        == 12
    )
    newer = store.query("enrollment", filter=parse("dateLastModified>'2025-01-08T00:00:00Z'"))
    assert {r["dateLastModified"][:10] for r in newer.records} == {"2025-01-09"}
    assert store.query("enrollment", filter=parse("dateLastModified>='2025-01-09'")).total == 3
    assert store.query("enrollment", filter=parse("user.sourcedId~'U1'")).total == 3


def test_a_filter_on_an_unknown_field_is_refused_with_the_known_fields(
    store: ProviderStore,
) -> None:
    with pytest.raises(FilterSyntaxError, match="no field 'colour'"):
        store.query("enrollment", filter=parse("colour='red'"))


def test_sort_orders_by_a_field_either_way(store: ProviderStore) -> None:
    page = store.query("enrollment", sort="user.sourcedId", descending=True, limit=3)
    assert [r["user"]["sourcedId"] for r in page.records] == ["u9", "u9", "u9"]


def test_relationships_find_class_members_and_a_users_classes(store: ProviderStore) -> None:
    users = ProviderStore()
    users.insert_many(
        "user",
        [
            {
                "sourcedId": f"u{i}",
                "status": "active",
                "dateLastModified": "2025-01-01T00:00:00.000Z",
                "roles": [
                    {
                        "roleType": "primary",
                        "role": "teacher" if i < 3 else "student",
                        "org": {"sourcedId": "s1"},
                    }
                ],
            }
            for i in range(10)
        ],
    )
    # Relationship conditions join through refs of the same store.
    users.insert_many("enrollment", list(store.iter_all("enrollment")))
    teachers_of_c1 = users.query("user", conditions=[users.enrolled_in("c1", ["teacher"])])
    assert [r["sourcedId"] for r in teachers_of_c1.records] == ["u1"]
    assert users.query("user", conditions=[users.with_role(["teacher"], "s1")]).total == 3
    assert users.query("user", conditions=[users.with_role(["student"], "s2")]).total == 0


def test_delete_removes_a_record_and_its_references(store: ProviderStore) -> None:
    assert store.delete("enrollment", "e1")
    assert not store.delete("enrollment", "e1")
    assert store.get("enrollment", "e1") is None
    assert (
        store.query("enrollment", conditions=[store.referencing("enrollment", "user", "u1")]).total
        == 2
    )


def test_a_file_store_keeps_its_records(tmp_path: Any) -> None:
    path = tmp_path / "sis.sqlite"
    with ProviderStore(path) as store:
        store.insert_many("enrollment", [_enrollment(1, "u1", "c1")])
    with ProviderStore(path) as store:
        assert store.count("enrollment") == 1


def test_stored_guidrefs_are_complete_with_hrefs_relative_to_the_root(
    store: ProviderStore,
) -> None:
    store.insert_many(
        "user",
        [
            {
                "sourcedId": "u1",
                "status": "active",
                "dateLastModified": "2025-01-01T00:00:00.000Z",
                "roles": [{"role": "teacher", "org": {"sourcedId": "s1"}}],
                "primaryOrg": {"sourcedId": "s1", "href": "http://old-host/orgs/s1"},
            }
        ],
    )
    user = store.get("user", "u1")
    assert user is not None
    assert user["roles"][0]["org"] == {
        "sourcedId": "s1",
        "type": "org",
        "href": "/rostering/v1p2/orgs/s1",
    }
    assert user["primaryOrg"] == {
        "sourcedId": "s1",
        "href": "/rostering/v1p2/orgs/s1",
        "type": "org",
    }
    enrollment = store.get("enrollment", "e0")
    assert enrollment is not None and enrollment["user"]["href"] == "/rostering/v1p2/users/u0"
    [text] = store.query_text("enrollment", limit=1).texts
    assert absolute_hrefs(text, "http://h:1/ims/oneroster/") == json.dumps(
        {
            **enrollment,
            "user": {
                **enrollment["user"],
                "href": "http://h:1/ims/oneroster/rostering/v1p2/users/u0",
            },
            "class": {
                **enrollment["class"],
                "href": "http://h:1/ims/oneroster/rostering/v1p2/classes/c0",
            },
            "school": {
                **enrollment["school"],
                "href": "http://h:1/ims/oneroster/rostering/v1p2/orgs/s1",
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def test_a_record_is_not_changed_by_being_stored() -> None:
    record = _enrollment(1, "u1", "c1")
    before = json.dumps(record)
    ProviderStore().insert_many("enrollment", [record])
    assert json.dumps(record) == before


def test_strings_that_look_like_stored_hrefs_are_kept_as_they_are() -> None:
    awkward = ["\x00", "\x00\x00x", '"\x00', "\\/rostering", '"\\/']
    store = ProviderStore()
    record = {**_enrollment(1, "u1", "c1"), "metadata": {"notes": awkward, "\x00": "\x00"}}
    store.insert_many("enrollment", [record])
    stored = store.get("enrollment", "e1")
    assert stored is not None and stored["metadata"] == record["metadata"]
    assert stored["class"]["href"] == "/rostering/v1p2/classes/c1"


def test_a_guidref_of_an_unknown_type_is_refused_with_the_types_to_use() -> None:
    record = {**_enrollment(1, "u1", "c1"), "school": {"sourcedId": "s1", "type": "planet"}}
    with pytest.raises(ValueError, match=r"school points at type 'planet'.*use one of: org"):
        ProviderStore().insert_many("enrollment", [record])


def test_bulk_load_builds_the_relationship_indexes_after_the_records(tmp_path: Any) -> None:
    path = tmp_path / "sis.sqlite"

    def indexes(_: ProviderStore) -> set[str]:
        with contextlib.closing(sqlite3.connect(path)) as look:
            rows = look.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name IN ('refs', 'enrollment_links') AND sql IS NOT NULL"
            ).fetchall()
        return {name for (name,) in rows}

    relationship_indexes = {
        "refs_target",
        "refs_owner",
        "enrollment_links_class",
        "enrollment_links_user",
        "enrollment_links_school",
    }

    with ProviderStore(path) as store:
        assert indexes(store) == relationship_indexes
        with store.bulk_load():
            store.insert_many("enrollment", [_enrollment(i, f"u{i % 4}", "c1") for i in range(8)])
            assert indexes(store) == set()
            # Replacing a record while loading still drops its old references.
            store.insert_many("enrollment", [_enrollment(0, "u9", "c2")])
        assert indexes(store) == relationship_indexes
        in_c1 = store.query(
            "enrollment", conditions=[store.referencing("enrollment", "class", "c1")]
        )
        assert in_c1.total == 7
        assert (
            store.query(
                "enrollment", conditions=[store.referencing("enrollment", "user", "u9")]
            ).total
            == 1
        )


def test_a_file_from_an_older_sislink_is_rewritten_when_opened(tmp_path: Any) -> None:
    path = tmp_path / "old.sqlite"
    # Form 0: hrefs stored as they arrived, refs with a primary key, user_version 0.
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE e_enrollment (seq INTEGER PRIMARY KEY, sourced_id TEXT NOT NULL UNIQUE, "
        "status TEXT NOT NULL, modified TEXT NOT NULL, data TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE refs (entity TEXT NOT NULL, field TEXT NOT NULL, target TEXT NOT NULL, "
        "sourced_id TEXT NOT NULL, role TEXT, PRIMARY KEY (entity, field, target, sourced_id)) "
        "WITHOUT ROWID"
    )
    old = _enrollment(3, "u3", "c3")
    db.execute(
        "INSERT INTO e_enrollment (sourced_id, status, modified, data) VALUES (?, ?, ?, ?)",
        ("e3", "active", old["dateLastModified"], json.dumps(old)),
    )
    db.execute("INSERT INTO refs VALUES ('enrollment', 'class', 'c3', 'e3', 'student')")
    db.commit()
    db.close()

    with ProviderStore(path) as store:
        enrollment = store.get("enrollment", "e3")
        assert enrollment is not None
        assert enrollment["class"]["href"] == "/rostering/v1p2/classes/c3"
        assert (
            store.query(
                "enrollment", conditions=[store.referencing("enrollment", "user", "u3")]
            ).total
            == 1
        )
    with contextlib.closing(sqlite3.connect(path)) as look:
        assert look.execute("PRAGMA user_version").fetchone() == (STORED_FORM,)


def test_field_names_that_are_not_text_are_refused_with_the_name() -> None:
    with pytest.raises(ValueError, match="field named 7"):
        ProviderStore().insert_many("enrollment", [{**_enrollment(1, "u1", "c1"), 7: "x"}])
    user = {
        "sourcedId": "u1",
        "roles": [{"role": "student", "org": {"sourcedId": "s1"}, 3: "x"}],
    }
    with pytest.raises(ValueError, match="not text"):
        ProviderStore().insert_many("user", [user])
