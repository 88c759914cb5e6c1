"""Pydantic models of the OneRoster entities, shaped as OneRoster 1.2 (1.1 is converted in versions.py).

The models are lenient when reading (unknown fields are ignored, a GUIDRef may carry only a
sourcedId, as Google's own consumer sends) and strict when writing: `versions.to_wire` turns
them into bodies that validate against 1EdTech's official OpenAPI files.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    field_serializer,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

Status = Literal["active", "tobedeleted"]
RefType = Literal[
    "academicSession",
    "category",
    "class",
    "course",
    "lineItem",
    "org",
    "result",
    "scoreScale",
    "user",
]
SCORE_STATUSES: tuple[str, ...] = (
    "exempt",
    "fully graded",
    "not submitted",
    "partially graded",
    "submitted",
)


def utc_now() -> datetime:
    """Now, in UTC, to the millisecond (OneRoster timestamps carry milliseconds at most)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, as OneRoster servers write dateLastModified."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _int_as_text(value: Any) -> str:
    if isinstance(value, int):  # bool too: True reads as "True", as it always has
        return str(value)
    raise ValueError("not an int")  # never shown: the union gives string_type instead


class _TextOrInt:
    """A str field that also takes an int (a JSON number id) as its text, and nothing else.

    Done in pydantic-core, without a Python call for the usual string: a union of str, then
    a function that turns an int into its text, tried in that order, whose one error is the
    str validator's own (string_type, "Input should be a valid string"), as when this was a
    `mode="before"` field validator in front of the str field."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.union_schema(
            [handler(source), core_schema.no_info_plain_validator_function(_int_as_text)],
            mode="left_to_right",
            custom_error_type="string_type",
        )


_NOT_IN_UTC = "datetime_out_of_range"
_NOT_IN_UTC_MESSAGE = "Input should be a date-time that is still within the years 1 to 9999 in UTC"


def _in_utc(value: datetime) -> datetime:
    """`value` in UTC (a naive one taken as UTC). A time near the ends of what Python holds
    whose offset takes it past them (9999-12-31T23:30:00-01:00) is a validation error, not
    the OverflowError of `astimezone`, which no reader of a SIS's page expects."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(_NOT_IN_UTC, _NOT_IN_UTC_MESSAGE) from None


class _InUTC:
    """A datetime read as pydantic reads it (its errors unchanged), then held in UTC: a naive
    one is taken as UTC, one with another offset converted.

    From JSON (a page of the SIS's, `model_validate_json`), done in pydantic-core: the
    datetime, already checked, goes to a union of a datetime whose offset must be 0 (what
    OneRoster's `...Z` reads as: kept as it is, with pydantic's UTC tzinfo, no Python call)
    and, only otherwise, the conversion; its one error is the conversion's (a time that
    leaves the years 1 to 9999 once in UTC). Read from JSON, an offset of 0 can only have
    come with pydantic's own UTC tzinfo.

    From Python (`model_validate` of a dict, as `from_wire` does, or a datetime given to the
    constructor), always the conversion: a datetime given with an offset of 0 may carry a
    zone that is not UTC (Europe/London in winter), which the union would keep, and a later
    date computed from it would not be in UTC."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        read = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema(
                [
                    read,
                    core_schema.union_schema(
                        [
                            core_schema.datetime_schema(tz_constraint=0),
                            core_schema.no_info_plain_validator_function(_in_utc),
                        ],
                        mode="left_to_right",
                        custom_error_type=_NOT_IN_UTC,
                        custom_error_message=_NOT_IN_UTC_MESSAGE,
                    ),
                ]
            ),
            python_schema=core_schema.no_info_after_validator_function(_in_utc, read),
        )


SourcedId = Annotated[str, _TextOrInt()]
"""A sourcedId: text, or a number read as its text."""

UTCDateTime = Annotated[datetime, _InUTC()]
"""A date-time held aware, in UTC (its tzinfo may be datetime.UTC or pydantic's UTC)."""


class OneRosterModel(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown fields ignored on read."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=False,
    )

    def wire(self) -> dict[str, Any]:
        """The 1.2 wire form of this object (aliases, no None fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class GUIDRef(OneRosterModel):
    """A reference to another object. 1EdTech requires href and type; readers only need the id."""

    sourced_id: SourcedId
    type: RefType | None = None
    href: str | None = None


class Base(OneRosterModel):
    """Fields every OneRoster object has."""

    sourced_id: str
    status: Status = "active"
    date_last_modified: UTCDateTime = Field(default_factory=utc_now)
    metadata: dict[str, Any] | None = None

    @field_serializer("date_last_modified")
    def _serialise_modified(self, value: datetime) -> str:
        return format_datetime(value)


class Org(Base):
    name: str
    type: str = "school"
    identifier: str = ""
    parent: GUIDRef | None = None
    children: list[GUIDRef] | None = None


class AcademicSession(Base):
    title: str
    start_date: date
    end_date: date
    type: str
    school_year: str
    parent: GUIDRef | None = None
    children: list[GUIDRef] | None = None
    # 1.2 only: the org this session belongs to is not part of the base schema; keep it out.


class Course(Base):
    title: str
    course_code: str = ""
    school_year: GUIDRef | None = None
    grades: list[str] | None = None
    subjects: list[str] | None = None
    org: GUIDRef | None = None


class Class(Base):
    title: str
    class_code: str | None = None
    class_type: str | None = None
    location: str | None = None
    grades: list[str] | None = None
    subjects: list[str] | None = None
    course: GUIDRef
    school: GUIDRef
    terms: list[GUIDRef]
    periods: list[str] | None = None


class Role(OneRosterModel):
    role_type: Literal["primary", "secondary"] = "primary"
    role: str
    org: GUIDRef
    begin_date: date | None = None
    end_date: date | None = None


class UserId(OneRosterModel):
    type: str
    identifier: str


class User(Base):
    enabled_user: bool = True
    username: str | None = None
    user_ids: list[UserId] | None = None
    given_name: str
    family_name: str
    middle_name: str | None = None
    preferred_first_name: str | None = None
    roles: list[Role]
    primary_org: GUIDRef | None = None
    identifier: str | None = None
    email: str | None = None
    sms: str | None = None
    phone: str | None = None
    grades: list[str] | None = None
    agents: list[GUIDRef] | None = None

    @field_validator("enabled_user", mode="before")
    @classmethod
    def _enabled_from_text(cls, value: Any) -> Any:
        # The wire carries "true"/"false" strings; CSV bundles sometimes carry TRUE/FALSE.
        if isinstance(value, str):
            return value.strip().lower() != "false"
        return value

    @field_serializer("enabled_user")
    def _enabled_as_text(self, value: bool) -> str:
        return "true" if value else "false"

    @property
    def primary_role(self) -> str:
        """The user's main role: the primary one, else the first."""
        for role in self.roles:
            if role.role_type == "primary":
                return role.role
        return self.roles[0].role if self.roles else ""

    def has_role(self, *names: str) -> bool:
        return any(role.role in names for role in self.roles)


class Enrollment(Base):
    user: GUIDRef
    class_: GUIDRef = Field(alias="class")
    school: GUIDRef
    role: str
    primary: bool | None = None
    begin_date: date | None = None
    end_date: date | None = None

    @field_validator("primary", mode="before")
    @classmethod
    def _primary_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return value

    @field_serializer("primary")
    def _primary_as_text(self, value: bool | None) -> str | None:
        return None if value is None else ("true" if value else "false")


class Category(Base):
    title: str
    weight: float | None = None


class ScoreScaleValue(OneRosterModel):
    # 1EdTech spells these with upper-case LHS/RHS, which the camel-case alias generator would not.
    item_value_lhs: str = Field(alias="itemValueLHS")
    item_value_rhs: str = Field(alias="itemValueRHS")


class ScoreScale(Base):
    title: str
    type: str
    class_: GUIDRef = Field(alias="class")
    course: GUIDRef | None = None
    score_scale_value: list[ScoreScaleValue]


class LineItem(Base):
    title: str
    description: str | None = None
    assign_date: datetime
    due_date: datetime
    class_: GUIDRef = Field(alias="class")
    school: GUIDRef | None = None  # required by 1.2, absent in 1.1
    category: GUIDRef
    grading_period: GUIDRef | None = None  # required by 1.1, optional in 1.2
    score_scale: GUIDRef | None = None
    result_value_min: float | None = None
    result_value_max: float | None = None

    @field_serializer("assign_date", "due_date")
    def _serialise_dates(self, value: datetime) -> str:
        return format_datetime(value)

    @field_validator("assign_date", "due_date", mode="before")
    @classmethod
    def _date_only_is_midnight(cls, value: Any) -> Any:
        # Many SIS send a plain date where a date-time is due; read it as midnight UTC.
        if isinstance(value, str) and len(value) == 10:
            return value + "T00:00:00Z"
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value

    @field_validator("assign_date", "due_date", mode="after")
    @classmethod
    def _dates_in_utc(cls, value: datetime) -> datetime:
        return _in_utc(value)


class Result(Base):
    line_item: GUIDRef
    student: GUIDRef
    class_: GUIDRef | None = Field(default=None, alias="class")
    score_scale: GUIDRef | None = None
    score_status: str
    score: float | None = None
    text_score: str | None = None
    score_date: date
    comment: str | None = None
    late: bool | None = None
    missing: bool | None = None

    @field_validator("score_date", mode="before")
    @classmethod
    def _date_of_datetime(cls, value: Any) -> Any:
        # 1.1 servers often send a date-time here; 1.2 says a date.
        if isinstance(value, str) and len(value) > 10 and value[10] == "T":
            return value[:10]
        if isinstance(value, datetime):
            return value.date()
        return value

    @field_validator("late", "missing", mode="before")
    @classmethod
    def _flag_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return value

    @field_serializer("late", "missing")
    def _flag_as_text(self, value: bool | None) -> str | None:
        return None if value is None else ("true" if value else "false")


ENTITY_MODELS: dict[str, type[Base]] = {
    "org": Org,
    "academicSession": AcademicSession,
    "course": Course,
    "class": Class,
    "user": User,
    "enrollment": Enrollment,
    "category": Category,
    "scoreScale": ScoreScale,
    "lineItem": LineItem,
    "result": Result,
}
"""Every entity kind, by its OneRoster type name."""
