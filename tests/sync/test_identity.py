"""Derived SIS ids: the same object under the same SIS always gets the same id; anything else differs."""

from __future__ import annotations

import uuid

import pytest

from sislink.sync.identity import (
    class_identity,
    district_identity,
    line_item_sourced_id,
    result_sourced_id,
)

NAMESPACE = uuid.UUID("6f0b0f5e-8a4e-4c43-9a8f-1f2d3c4b5a69")


def test_the_same_coursework_under_the_same_sis_class_always_gets_the_same_id() -> None:
    scope = class_identity("infinite-campus", "cls-001")
    first = line_item_sourced_id(NAMESPACE, scope, 42)
    assert first == line_item_sourced_id(
        NAMESPACE, class_identity("infinite-campus", " cls-001 "), 42
    )
    assert uuid.UUID(first).version == 5


def test_ids_differ_by_namespace_sis_class_partner_kind_and_object() -> None:
    scope = class_identity("skyward", "cls-001")
    base = line_item_sourced_id(NAMESPACE, scope, 1)
    others = {
        line_item_sourced_id(uuid.uuid4(), scope, 1),
        line_item_sourced_id(NAMESPACE, class_identity("skyward", "cls-002"), 1),
        line_item_sourced_id(NAMESPACE, class_identity("aeries", "cls-001"), 1),
        line_item_sourced_id(NAMESPACE, scope, 2),
        result_sourced_id(NAMESPACE, scope, 1, 1),
    }
    assert base not in others and len(others) == 5


def test_a_result_id_depends_on_coursework_and_student_not_on_the_mark_row() -> None:
    scope = class_identity("generic-1.2", "c")
    assert result_sourced_id(NAMESPACE, scope, 3, 7) == result_sourced_id(NAMESPACE, scope, 3, 7)
    assert result_sourced_id(NAMESPACE, scope, 3, 7) != result_sourced_id(NAMESPACE, scope, 7, 3)


def test_the_district_identity_is_partner_and_district_never_a_url() -> None:
    assert district_identity("infinite-campus", "org-district") == (
        "infinite-campus:district:org-district"
    )


def test_an_empty_part_cannot_make_an_id() -> None:
    with pytest.raises(ValueError, match="SIS class is empty"):
        class_identity("skyward", "  ")
