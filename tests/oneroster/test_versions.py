"""Versions as data: endpoint tables, scopes, hrefs and the 1.1 wire shape."""

from __future__ import annotations

from sislink.oneroster.models import GUIDRef, LineItem, Role, User
from sislink.oneroster.versions import spec_for


def test_url_paths_come_from_the_tables() -> None:
    assert (
        spec_for("1.2").url_path("teacher_classes", teacher_id="t 1")
        == "rostering/v1p2/teachers/t%201/classes"
    )
    assert (
        spec_for("1.1").url_path("class_line_items", class_id="c1") == "v1p1/classes/c1/lineItems"
    )
    assert not spec_for("1.1").has("class_categories") and spec_for("1.2").has("class_categories")


def test_writes_need_write_scopes() -> None:
    endpoint = spec_for("1.2").endpoint("line_item")
    assert endpoint.scopes_for("PUT") == ("gradebook.createput",)
    assert endpoint.scopes_for("DELETE") == ("gradebook.delete",)


def _user() -> User:
    return User(
        sourced_id="u1",
        given_name="A",
        family_name="B",
        roles=[Role(role="teacher", org=GUIDRef(sourced_id="s1"))],
    )


def test_to_wire_completes_refs_and_1_1_flattens_roles() -> None:
    wire = spec_for("1.2").to_wire(_user(), "http://h/ims/oneroster")
    assert wire["roles"][0]["org"] == {
        "sourcedId": "s1",
        "type": "org",
        "href": "http://h/ims/oneroster/rostering/v1p2/orgs/s1",
    }
    old = spec_for("1.1").to_wire(_user(), "http://h/ims/oneroster")
    assert old["role"] == "teacher" and old["orgs"][0]["sourcedId"] == "s1" and "roles" not in old


def test_reshape_rebuilds_hrefs_for_the_host_it_is_served_from() -> None:
    stored = spec_for("1.2").to_wire(_user(), "http://elsewhere/ims/oneroster")
    shaped = spec_for("1.2").reshape(stored, "user", "http://here:1/ims/oneroster")
    assert shaped["roles"][0]["org"]["href"].startswith("http://here:1/")


def test_1_1_line_item_has_no_school() -> None:
    item = LineItem.model_validate(
        {
            "sourcedId": "l",
            "title": "t",
            "assignDate": "2026-01-01",
            "dueDate": "2026-01-02",
            "class": {"sourcedId": "c"},
            "school": {"sourcedId": "s"},
            "category": {"sourcedId": "k"},
        }
    )
    assert "school" not in spec_for("1.1").to_wire(item, "http://h/ims/oneroster")
    assert (
        spec_for("1.2").to_wire(item, "http://h/ims/oneroster")["assignDate"]
        == "2026-01-01T00:00:00.000Z"
    )
