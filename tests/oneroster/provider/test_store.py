"""The provider's store: inserts replace by sourcedId, queries filter, sort, page and relate."""

from __future__ import annotations

from typing import Any

import pytest

from sislink.oneroster.filters import FilterSyntaxError, parse
from sislink.oneroster.provider.store import ProviderStore


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
