"""The alias of a class's Classroom course: derived from the installation's namespace and the SIS
class's identity only, stable, and a valid domain alias."""

from __future__ import annotations

import uuid

from sislink.sync.identity import class_identity, google_course_alias

NAMESPACE = uuid.UUID("6f1d2c1e-3c4b-4e55-9a1d-0b8f2f9c7a11")


def test_the_same_sis_class_always_names_the_same_course() -> None:
    first = google_course_alias(NAMESPACE, class_identity("infinite-campus", "cls-1"))
    assert first == google_course_alias(NAMESPACE, class_identity("infinite-campus", " cls-1 "))
    assert first.startswith("sislink-") and len("d:" + first) <= 256
    assert uuid.UUID(first.removeprefix("sislink-")).version == 5


def test_another_class_partner_or_installation_names_another_course() -> None:
    base = google_course_alias(NAMESPACE, class_identity("infinite-campus", "cls-1"))
    others = {
        google_course_alias(NAMESPACE, class_identity("infinite-campus", "cls-2")),
        google_course_alias(NAMESPACE, class_identity("skyward", "cls-1")),
        google_course_alias(uuid.uuid4(), class_identity("infinite-campus", "cls-1")),
    }
    assert base not in others and len(others) == 3
