"""A GUIDRef's sourcedId and every object's dateLastModified are read in pydantic-core (no
Python call per record, issue 15): they must accept, refuse and hold exactly what the Python
field validators they replace did, with the same errors. The old validators are kept here as
the reference, on models otherwise the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from sislink.oneroster.models import (
    Base,
    Category,
    Enrollment,
    GUIDRef,
    LineItem,
    OneRosterModel,
    RefType,
)


class _OldGUIDRef(OneRosterModel):
    sourced_id: str
    type: RefType | None = None
    href: str | None = None

    @field_validator("sourced_id", mode="before")
    @classmethod
    def _id_is_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class _OldCategory(OneRosterModel):
    sourced_id: str
    date_last_modified: datetime
    title: str

    @field_validator("date_last_modified", mode="after")
    @classmethod
    def _modified_in_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


IDS: list[Any] = [
    "a",
    "",
    " 12 ",
    12,
    0,
    -3,
    10**30,
    True,
    False,
    1.5,
    1.0,
    None,
    [1],
    {"x": 1},
    "\u00e9\u4e2d",
]
STAMPS: list[Any] = [
    "2026-07-31T12:00:00.000Z",
    "2026-07-31T12:00:00Z",
    "2026-07-31T12:00:00.123456Z",
    "2026-07-31T12:00:00+00:00",
    "2026-07-31T12:00:00-00:00",
    "2026-07-31T12:00:00+02:00",
    "2026-07-31T23:30:00-05:30",
    "2026-07-31T12:00:00",
    "2026-07-31",
    "2026-07-31T25:00:00Z",
    "2026-13-01T00:00:00Z",
    "yesterday",
    "",
    1_785_000_000,
    1_785_000_000.5,
    0,
    True,
    None,
    [],
    {},
]


def _outcome(model: type[BaseModel], data: dict[str, Any], as_json: bool) -> Any:
    try:
        if as_json:
            made = model.model_validate_json(json.dumps(data))
        else:
            made = model.model_validate(data)
    except ValidationError as exc:
        return ("refused", exc.errors(include_url=False), exc.error_count())
    return ("accepted", made.model_dump())


def _same_instant_and_utc(new: Any, old: Any) -> None:
    assert new == old
    if isinstance(new, datetime):
        assert new.utcoffset() == timedelta(0) and old.utcoffset() == timedelta(0)
        assert new.replace(tzinfo=None) == old.replace(tzinfo=None)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "python"])
@pytest.mark.parametrize("value", IDS, ids=repr)
def test_a_refs_sourced_id_is_read_as_the_python_validator_read_it(
    value: Any, as_json: bool
) -> None:
    data = {"sourcedId": value, "type": "org"}
    assert _outcome(GUIDRef, data, as_json) == _outcome(_OldGUIDRef, data, as_json)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "python"])
def test_a_refs_errors_come_with_the_other_fields_errors_as_before(as_json: bool) -> None:
    data = {"sourcedId": 1.5, "type": "nope", "href": 3}
    assert _outcome(GUIDRef, data, as_json) == _outcome(_OldGUIDRef, data, as_json)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "python"])
@pytest.mark.parametrize("value", STAMPS, ids=repr)
def test_date_last_modified_is_read_as_the_python_validator_read_it(
    value: Any, as_json: bool
) -> None:
    data = {"sourcedId": "c", "dateLastModified": value, "title": "t"}
    new, old = _outcome(Category, data, as_json), _outcome(_OldCategory, data, as_json)
    assert new[0] == old[0]
    if new[0] == "refused":
        assert new == old
    else:
        _same_instant_and_utc(
            Category.model_validate_json(json.dumps(data)).date_last_modified
            if as_json
            else Category.model_validate(data).date_last_modified,
            _OldCategory.model_validate_json(json.dumps(data)).date_last_modified
            if as_json
            else _OldCategory.model_validate(data).date_last_modified,
        )


@pytest.mark.parametrize(
    "given",
    [
        datetime(2026, 7, 31, 12, tzinfo=UTC),
        datetime(2026, 7, 31, 12),
        datetime(2026, 7, 31, 14, tzinfo=UTC).astimezone(),
        datetime(2026, 7, 31, 14, tzinfo=UTC) + timedelta(microseconds=7),
    ],
    ids=repr,
)
def test_a_datetime_given_in_python_is_held_in_utc(given: datetime) -> None:
    expected = given.replace(tzinfo=UTC) if given.tzinfo is None else given.astimezone(UTC)
    held = Category(sourced_id="c", title="t", date_last_modified=given).date_last_modified
    _same_instant_and_utc(held, expected)


def test_a_date_last_modified_left_out_is_now_in_utc() -> None:
    held = Category(sourced_id="c", title="t").date_last_modified
    assert held.tzinfo is UTC
    assert abs(held - datetime.now(UTC)) < timedelta(minutes=5)


def test_an_enrolment_with_every_bad_field_gives_the_same_errors_as_before() -> None:
    record = {
        "sourcedId": "e",
        "dateLastModified": "soon",
        "user": {"sourcedId": None},
        "class": {"sourcedId": 2.5},
        "school": {"sourcedId": [1]},
        "role": "student",
    }

    class _OldEnrollment(OneRosterModel):
        sourced_id: str
        date_last_modified: datetime
        user: _OldGUIDRef
        class_: _OldGUIDRef = _field_alias("class")
        school: _OldGUIDRef
        role: str

        @field_validator("date_last_modified", mode="after")
        @classmethod
        def _modified_in_utc(cls, value: datetime) -> datetime:
            return value.astimezone(UTC)

    for as_json in (True, False):
        assert _outcome(Enrollment, record, as_json) == _outcome(_OldEnrollment, record, as_json)


def _field_alias(alias: str) -> Any:
    from pydantic import Field

    return Field(alias=alias)


def test_the_field_types_read_as_text_and_datetime() -> None:
    assert GUIDRef.model_fields["sourced_id"].annotation is str
    assert Base.model_fields["date_last_modified"].annotation is datetime


@pytest.mark.parametrize(
    "zone", [ZoneInfo("Europe/London"), timezone(timedelta(0), "GMT")], ids=["london", "gmt"]
)
@pytest.mark.parametrize("given_as", ["constructor", "dict"])
def test_a_datetime_given_with_a_zone_at_offset_0_is_held_in_utc(
    zone: tzinfo, given_as: str
) -> None:
    given = datetime(2026, 1, 15, 12, tzinfo=zone)  # winter: London's offset is 0
    if given_as == "constructor":
        held = Category(sourced_id="c", title="t", date_last_modified=given).date_last_modified
    else:
        data = {"sourcedId": "c", "title": "t", "dateLastModified": given}
        held = Category.model_validate(data).date_last_modified
    assert held == given
    assert held.tzname() == "UTC"
    # A date computed from it is still in UTC (London's would have moved to summer time).
    assert (held + timedelta(days=182)).utcoffset() == timedelta(0)
    assert held + timedelta(days=182) == given.astimezone(UTC) + timedelta(days=182)


OUT_OF_RANGE_ONCE_IN_UTC = ["9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00"]


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "python"])
@pytest.mark.parametrize("stamp", OUT_OF_RANGE_ONCE_IN_UTC)
def test_a_date_last_modified_past_year_9999_or_before_year_1_in_utc_is_a_validation_error(
    stamp: str, as_json: bool
) -> None:
    data = {"sourcedId": "c", "dateLastModified": stamp, "title": "t"}
    outcome = _outcome(Category, data, as_json)  # before: OverflowError, out of pydantic
    assert outcome[0] == "refused"
    assert [(e["type"], e["loc"]) for e in outcome[1]] == [
        ("datetime_out_of_range", ("dateLastModified",))
    ]
    assert "years 1 to 9999 in UTC" in outcome[1][0]["msg"]


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "python"])
@pytest.mark.parametrize("stamp", OUT_OF_RANGE_ONCE_IN_UTC)
def test_a_line_items_due_date_past_year_9999_in_utc_is_a_validation_error(
    stamp: str, as_json: bool
) -> None:
    data = {
        "sourcedId": "li",
        "title": "t",
        "assignDate": "2026-01-01",
        "dueDate": stamp,
        "class": {"sourcedId": "c"},
        "category": {"sourcedId": "k"},
    }
    outcome = _outcome(LineItem, data, as_json)
    assert outcome[0] == "refused"
    assert [(e["type"], e["loc"]) for e in outcome[1]] == [("datetime_out_of_range", ("dueDate",))]
