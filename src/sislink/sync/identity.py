"""The sourcedIds sislink gives what it writes to a SIS: derived, never random, so never duplicated.

Every lineItem and result sislink PUTs has the sourcedId UUIDv5(installation namespace,
"<SIS identity>|<kind>|<classroom object key>"). The same object exported again (a re-export,
a retry after a crash, an export after disconnect and reconnect, a new ledger) gets the same
id, so the SIS updates it instead of making a second one.

The SIS identity must survive what vendors do to URLs (Infinite Campus moved every base URL
with Campus.2235): it is the partner plus the district org's sourcedId for district-wide
objects, and the partner plus the SIS class's sourcedId for objects that belong to one class
(lineItems and results), never the host URL.
"""

from __future__ import annotations

import uuid
from enum import StrEnum


class ObjectKind(StrEnum):
    """What kind of classroom object a derived sourcedId stands for."""

    LINE_ITEM = "lineItem"  # one coursework
    RESULT = "result"  # one student's mark on one coursework
    GOOGLE_COURSE = "googleCourse"  # the Google Classroom course one SIS class becomes


def district_identity(partner: str, district_sourced_id: str) -> str:
    """The identity of a whole SIS: partner plus the district org's sourcedId."""
    return f"{_clean(partner, 'partner')}:district:{_clean(district_sourced_id, 'district')}"


def class_identity(partner: str, sis_class_sourced_id: str) -> str:
    """The identity under which one SIS class's lineItems and results are written."""
    return f"{_clean(partner, 'partner')}:class:{_clean(sis_class_sourced_id, 'SIS class')}"


def derived_sourced_id(namespace: uuid.UUID, sis_identity: str, kind: ObjectKind, key: str) -> str:
    """UUIDv5 of (namespace, SIS identity, kind, object key), as the SIS sourcedId text."""
    name = f"{_clean(sis_identity, 'SIS identity')}|{kind.value}|{_clean(key, 'object key')}"
    return str(uuid.uuid5(namespace, name))


def line_item_sourced_id(namespace: uuid.UUID, sis_identity: str, coursework_id: int) -> str:
    """The lineItem sourcedId of one coursework."""
    return derived_sourced_id(namespace, sis_identity, ObjectKind.LINE_ITEM, str(coursework_id))


def result_sourced_id(
    namespace: uuid.UUID, sis_identity: str, coursework_id: int, student_id: int
) -> str:
    """The result sourcedId of one student's mark on one coursework.

    Keyed by coursework and student rather than by the mark's row id: a mark cleared and set
    again is the same result in the SIS.
    """
    key = f"{coursework_id}:{student_id}"
    return derived_sourced_id(namespace, sis_identity, ObjectKind.RESULT, key)


GOOGLE_ALIAS_PREFIX = "sislink-"


def google_course_alias(namespace: uuid.UUID, sis_class_identity: str) -> str:
    """The Google Classroom course alias of one SIS class, without its `d:` scope: "sislink-"
    and UUIDv5(namespace, class identity, googleCourse). The same SIS class always names the
    same course (after a crash, a lost database row, a reconnect of the SIS or of Google); a
    changed host URL changes nothing, since the class identity holds none."""
    key = derived_sourced_id(namespace, sis_class_identity, ObjectKind.GOOGLE_COURSE, "course")
    return GOOGLE_ALIAS_PREFIX + key


def _clean(value: str, what: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise ValueError(f"The {what} is empty, so no stable SIS id can be derived from it.")
    return cleaned
