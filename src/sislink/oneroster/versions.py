"""OneRoster versions as data: the endpoint tables of 1.1 and 1.2, and how objects look on each wire.

Every endpoint is one row (name, path, entity, collection or single, methods, scopes), as
Moodle's enrol_oneroster declares them. The consumer builds URLs from these rows and the
provider mounts its routes from them; 1.1 differs from 1.2 only where a row or a field does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from sislink.oneroster.models import (
    AcademicSession,
    Base,
    Category,
    Class,
    Course,
    Enrollment,
    GUIDRef,
    LineItem,
    Org,
    Result,
    Role,
    ScoreScale,
    User,
)


class Version(StrEnum):
    V1_1 = "1.1"
    V1_2 = "1.2"


class Service(StrEnum):
    ROSTERING = "rostering"
    GRADEBOOK = "gradebook"


# Short scope names; `VersionSpec.scope_uri` turns them into the full URIs each version uses.
ROSTER_READ = "roster.readonly"
ROSTER_CORE_READ = "roster-core.readonly"
DEMOGRAPHICS_READ = "roster-demographics.readonly"
GRADEBOOK_READ = "gradebook.readonly"
GRADEBOOK_CORE_READ = "gradebook-core.readonly"
GRADEBOOK_WRITE = "gradebook.createput"
GRADEBOOK_DELETE = "gradebook.delete"

CLASSROOM_SCOPES: tuple[str, ...] = (ROSTER_READ, GRADEBOOK_READ, GRADEBOOK_WRITE, GRADEBOOK_DELETE)
"""The scopes a classroom asks for (Google's conformance sequence, step 1)."""


@dataclass(frozen=True)
class EntityKind:
    """One kind of object: its model, its wrapping keys and the collection its href points into."""

    name: str  # the GUIDRef type, e.g. "academicSession"
    model: type[Base]
    single_key: str  # {"user": {...}}
    collection_key: str  # {"users": [...]}
    service: Service


ENTITIES: dict[str, EntityKind] = {
    kind.name: kind
    for kind in (
        EntityKind("org", Org, "org", "orgs", Service.ROSTERING),
        EntityKind(
            "academicSession",
            AcademicSession,
            "academicSession",
            "academicSessions",
            Service.ROSTERING,
        ),
        EntityKind("course", Course, "course", "courses", Service.ROSTERING),
        EntityKind("class", Class, "class", "classes", Service.ROSTERING),
        EntityKind("user", User, "user", "users", Service.ROSTERING),
        EntityKind("enrollment", Enrollment, "enrollment", "enrollments", Service.ROSTERING),
        EntityKind("category", Category, "category", "categories", Service.GRADEBOOK),
        EntityKind("scoreScale", ScoreScale, "scoreScale", "scoreScales", Service.GRADEBOOK),
        EntityKind("lineItem", LineItem, "lineItem", "lineItems", Service.GRADEBOOK),
        EntityKind("result", Result, "result", "results", Service.GRADEBOOK),
    )
}


@dataclass(frozen=True)
class Endpoint:
    """One OneRoster endpoint. `path` is relative to its service root, e.g. `teachers/{id}/classes`.

    `name` is stable across versions (the consumer and the provider refer to endpoints by it);
    placeholders are named `{id}` for the object itself or after what they identify
    (`{class_id}`, `{school_id}`, ...).
    """

    name: str
    path: str
    entity: str
    service: Service
    collection: bool
    read_scopes: tuple[str, ...]
    methods: frozenset[str] = frozenset({"GET"})

    @property
    def kind(self) -> EntityKind:
        return ENTITIES[self.entity]

    @property
    def placeholders(self) -> tuple[str, ...]:
        parts = self.path.split("/")
        return tuple(p[1:-1] for p in parts if p.startswith("{") and p.endswith("}"))

    def format(self, **ids: str) -> str:
        """The path with ids filled in (each one escaped for a URL path)."""
        from urllib.parse import quote

        return self.path.format(**{key: quote(value, safe="") for key, value in ids.items()})

    def scopes_for(self, method: str) -> tuple[str, ...]:
        """Any one of these scopes allows `method` on this endpoint."""
        if method == "PUT":
            return (GRADEBOOK_WRITE,)
        if method == "DELETE":
            return (GRADEBOOK_DELETE,)
        return self.read_scopes


def _rostering_rows(version: Version) -> list[Endpoint]:
    core = (ROSTER_READ, ROSTER_CORE_READ)
    full = (ROSTER_READ,)
    r = Service.ROSTERING
    rows: list[tuple[str, str, str, bool, tuple[str, ...]]] = [
        ("academic_sessions", "academicSessions", "academicSession", True, core),
        ("academic_session", "academicSessions/{id}", "academicSession", False, core),
        ("classes", "classes", "class", True, core),
        ("class", "classes/{id}", "class", False, core),
        ("class_students", "classes/{class_id}/students", "user", True, full),
        ("class_teachers", "classes/{class_id}/teachers", "user", True, full),
        ("courses", "courses", "course", True, core),
        ("course", "courses/{id}", "course", False, core),
        ("course_classes", "courses/{course_id}/classes", "class", True, full),
        ("enrollments", "enrollments", "enrollment", True, core),
        ("enrollment", "enrollments/{id}", "enrollment", False, core),
        ("grading_periods", "gradingPeriods", "academicSession", True, core),
        ("grading_period", "gradingPeriods/{id}", "academicSession", False, core),
        ("orgs", "orgs", "org", True, core),
        ("org", "orgs/{id}", "org", False, core),
        ("schools", "schools", "org", True, core),
        ("school", "schools/{id}", "org", False, core),
        ("school_classes", "schools/{school_id}/classes", "class", True, full),
        (
            "school_class_enrollments",
            "schools/{school_id}/classes/{class_id}/enrollments",
            "enrollment",
            True,
            full,
        ),
        (
            "school_class_students",
            "schools/{school_id}/classes/{class_id}/students",
            "user",
            True,
            full,
        ),
        (
            "school_class_teachers",
            "schools/{school_id}/classes/{class_id}/teachers",
            "user",
            True,
            full,
        ),
        ("school_courses", "schools/{school_id}/courses", "course", True, full),
        ("school_enrollments", "schools/{school_id}/enrollments", "enrollment", True, full),
        ("school_students", "schools/{school_id}/students", "user", True, full),
        ("school_teachers", "schools/{school_id}/teachers", "user", True, full),
        ("school_terms", "schools/{school_id}/terms", "academicSession", True, full),
        ("students", "students", "user", True, core),
        ("student", "students/{id}", "user", False, core),
        ("student_classes", "students/{student_id}/classes", "class", True, full),
        ("teachers", "teachers", "user", True, core),
        ("teacher", "teachers/{id}", "user", False, core),
        ("teacher_classes", "teachers/{teacher_id}/classes", "class", True, full),
        ("terms", "terms", "academicSession", True, core),
        ("term", "terms/{id}", "academicSession", False, core),
        ("term_classes", "terms/{term_id}/classes", "class", True, full),
        ("term_grading_periods", "terms/{term_id}/gradingPeriods", "academicSession", True, full),
        ("users", "users", "user", True, core),
        ("user", "users/{id}", "user", False, core),
        ("user_classes", "users/{user_id}/classes", "class", True, full),
    ]
    if version is Version.V1_1:
        # 1.1 has no "core" scope; every read takes roster.readonly (or roster-core.readonly).
        pass
    return [Endpoint(n, p, e, r, c, s) for n, p, e, c, s in rows]


def _gradebook_rows(version: Version) -> list[Endpoint]:
    g = Service.GRADEBOOK
    core = (GRADEBOOK_READ, GRADEBOOK_CORE_READ)
    full = (GRADEBOOK_READ,)
    write = frozenset({"GET", "PUT", "DELETE"})
    rows = [
        Endpoint("categories", "categories", "category", g, True, core),
        Endpoint("category", "categories/{id}", "category", g, False, core, write),
        Endpoint("line_items", "lineItems", "lineItem", g, True, core),
        Endpoint("line_item", "lineItems/{id}", "lineItem", g, False, core, write),
        Endpoint("results", "results", "result", g, True, core),
        Endpoint("result", "results/{id}", "result", g, False, core, write),
        Endpoint("class_line_items", "classes/{class_id}/lineItems", "lineItem", g, True, full),
        Endpoint(
            "class_line_item_results",
            "classes/{class_id}/lineItems/{line_item_id}/results",
            "result",
            g,
            True,
            full,
        ),
        Endpoint("class_results", "classes/{class_id}/results", "result", g, True, full),
        Endpoint(
            "class_student_results",
            "classes/{class_id}/students/{student_id}/results",
            "result",
            g,
            True,
            full,
        ),
    ]
    if version is Version.V1_2:
        rows += [
            Endpoint(
                "class_categories", "classes/{class_id}/categories", "category", g, True, full
            ),
            Endpoint("score_scales", "scoreScales", "scoreScale", g, True, core),
            Endpoint("score_scale", "scoreScales/{id}", "scoreScale", g, False, core, write),
            Endpoint(
                "class_score_scales", "classes/{class_id}/scoreScales", "scoreScale", g, True, full
            ),
            Endpoint(
                "school_score_scales",
                "schools/{school_id}/scoreScales",
                "scoreScale",
                g,
                True,
                full,
            ),
        ]
    return rows


@dataclass(frozen=True)
class VersionSpec:
    """What one OneRoster version looks like on the wire."""

    version: Version
    service_roots: dict[Service, str]  # relative to the OneRoster root, e.g. "rostering/v1p2"
    scope_prefix: str
    endpoints: dict[str, Endpoint] = field(repr=False)

    def endpoint(self, name: str) -> Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise KeyError(f"OneRoster {self.version} has no endpoint named {name!r}") from None

    def has(self, name: str) -> bool:
        return name in self.endpoints

    def url_path(self, name: str, **ids: str) -> str:
        """Path of an endpoint below the OneRoster root, e.g. `rostering/v1p2/teachers/42/classes`."""
        endpoint = self.endpoint(name)
        return f"{self.service_roots[endpoint.service]}/{endpoint.format(**ids)}"

    def scope_uri(self, scope: str) -> str:
        return self.scope_prefix + scope

    def scope_uris(self, scopes: Iterable[str]) -> list[str]:
        return [self.scope_uri(s) for s in scopes]

    def href(self, root_url: str, ref_type: str, sourced_id: str) -> str:
        """The href of a GUIDRef: where the referenced object can be read."""
        kind = ENTITIES[ref_type]
        return f"{root_url.rstrip('/')}/{self.service_roots[kind.service]}/{kind.collection_key}/{sourced_id}"

    # ---- objects on the wire -------------------------------------------------------------

    def to_wire(self, obj: Base, root_url: str) -> dict[str, Any]:
        """The body this version expects for `obj`, GUIDRefs complete with href and type."""
        data = obj.wire()
        entity = _entity_of(obj)
        _complete_refs(data, entity, lambda t, i: self.href(root_url, t, i))
        if self.version is Version.V1_1:
            _to_1_1(data, entity)
        return data

    def reshape(self, data: dict[str, Any], entity: str, root_url: str) -> dict[str, Any]:
        """A stored 1.2 wire dict as this version sends it from `root_url`: every GUIDRef's href
        rebuilt for that root, 1.1 fields converted. Changes `data` in place and returns it."""
        _complete_refs(data, entity, lambda t, i: self.href(root_url, t, i), replace_href=True)
        if self.version is Version.V1_1:
            _to_1_1(data, entity)
        return data

    def from_wire(self, entity: str, data: dict[str, Any], *, nul_possible: bool = True) -> Base:
        """Read one object of this version into the (1.2-shaped) model. Raises pydantic's
        ValidationError when the data is not valid OneRoster, or holds a NUL character
        (`refuse_nul_characters`). `nul_possible=False` skips looking for one: only for a
        record from a JSON body that holds none (`json_may_hold_nul`)."""
        if self.version is Version.V1_1:
            data = _from_1_1(dict(data), entity)
        model = ENTITIES[entity].model.model_validate(data)
        if nul_possible:
            refuse_nul_characters(model)
        return model


NUL_CHARACTER = "nul_character"
NUL_CHARACTER_MESSAGE = (
    "Text should not hold a NUL character (U+0000): no database sislink writes to can store "
    "it; ask the SIS vendor to remove it from this record"
)


def json_may_hold_nul(body: bytes) -> bool:
    """Whether a JSON body may hold a NUL character in a string: in UTF-8 only as the escape
    (a NUL byte itself is not JSON), and a body in UTF-16 or UTF-32 (which Python's json
    reads) has zero bytes all through it. Two byte searches of the body, for all its records
    at once (looking in each record costs a third of reading it)."""
    return b"\\u0000" in body or b"\x00" in body


def refuse_nul_characters(model: BaseModel) -> None:
    """A ValidationError (`nul_character`) if any text `model` keeps holds a NUL character.

    JSON may carry one (\\u0000) and pydantic reads it, but PostgreSQL refuses it in text and
    SQLite's JSON functions end a string at it, so a record holding one would stop an import
    or, worse, be stored under a cut-off id that no later import finds again. Not a rule of
    OneRoster's: sislink's, so such a record is refused like an invalid one (reported and
    skipped, the rest of the page kept). Only the fields the model keeps are looked at: a NUL
    in a field sislink ignores costs nothing.

    The model's JSON (pydantic-core's serializer, which writes a NUL as the escape `\\u0000`)
    is searched first: a quarter of the walk's time, which a record without a NUL (all but
    never one) then skips; the walk only says where the NUL is."""
    try:
        if b"\\u0000" not in type(model).__pydantic_serializer__.to_json(model):
            return
    except ValueError:
        pass  # a value the serializer does not write (not from JSON): the walk decides
    found = _first_nul(model)
    if found is not None:
        loc, text = found
        raise ValidationError.from_exception_data(
            type(model).__name__,
            [
                InitErrorDetails(
                    type=PydanticCustomError(NUL_CHARACTER, NUL_CHARACTER_MESSAGE),
                    loc=loc,
                    input=text,
                )
            ],
        )


def _first_nul(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Where the first text holding a NUL is in `value` (a model, list, dict or str), by the
    names the SIS used, and that text."""
    if isinstance(value, str):
        return ((), value) if "\x00" in value else None
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        items: Iterable[tuple[str | int, Any]] = (
            (fields[name].alias or name if name in fields else name, item)
            for name, item in value.__dict__.items()
        )
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            # Named with the NUL written out as \x00: where it is goes into messages and the
            # import's report, which are stored, and must not hold the character either.
            return (key.replace("\x00", "\\x00"),), key
        found = _first_nul(item)
        if found is not None:
            return (key, *found[0]), found[1]
    return None


def _entity_of(obj: Base) -> str:
    for kind in ENTITIES.values():
        if type(obj) is kind.model:
            return kind.name
    raise TypeError(f"{type(obj).__name__} is not a OneRoster entity model")


# Which GUIDRef type each reference field points at (parent/children depend on the entity).
_REF_FIELDS: dict[str, str] = {
    "schoolYear": "academicSession",
    "org": "org",
    "course": "course",
    "school": "org",
    "terms": "academicSession",
    "primaryOrg": "org",
    "agents": "user",
    "user": "user",
    "class": "class",
    "category": "category",
    "gradingPeriod": "academicSession",
    "academicSession": "academicSession",
    "scoreScale": "scoreScale",
    "lineItem": "lineItem",
    "student": "user",
}


def _complete_refs(
    data: dict[str, Any], entity: str, href: Any, replace_href: bool = False
) -> None:
    def complete(ref: Any, ref_type: str) -> None:
        if isinstance(ref, dict) and "sourcedId" in ref:
            ref["type"] = ref.get("type") or ref_type
            if replace_href or not ref.get("href"):
                ref["href"] = href(ref["type"], ref["sourcedId"])

    for key, value in data.items():
        if key in ("parent", "children"):
            ref_type = entity
        elif key in _REF_FIELDS:
            ref_type = _REF_FIELDS[key]
        else:
            continue
        for ref in value if isinstance(value, list) else [value]:
            complete(ref, ref_type)
    for role in data.get("roles", []) if entity == "user" else []:
        complete(role.get("org"), "org")


# Fields 1.2 has and 1.1 does not, per entity.
_ONLY_IN_1_2: dict[str, tuple[str, ...]] = {
    "user": ("roles", "primaryOrg", "preferredFirstName", "userMasterIdentifier"),
    "lineItem": ("school", "scoreScale", "academicSession"),
    "result": ("class", "scoreScale", "textScore", "late", "missing"),
    "category": ("weight",),
}


def _to_1_1(data: dict[str, Any], entity: str) -> None:
    if entity == "user":
        roles = data.get("roles", [])
        primary = next(
            (r for r in roles if r.get("roleType") == "primary"), roles[0] if roles else None
        )
        data["role"] = primary["role"] if primary else "student"
        orgs: list[dict[str, Any]] = []
        for role in roles:
            if role["org"]["sourcedId"] not in {o["sourcedId"] for o in orgs}:
                orgs.append(role["org"])
        data["orgs"] = orgs
    for key in _ONLY_IN_1_2.get(entity, ()):
        data.pop(key, None)


def _from_1_1(data: dict[str, Any], entity: str) -> dict[str, Any]:
    if entity == "user" and "roles" not in data:
        role = data.pop("role", None) or "student"
        orgs = data.pop("orgs", None) or []
        data["roles"] = [
            Role(
                role_type="primary" if i == 0 else "secondary",
                role=role,
                org=GUIDRef.model_validate(o),
            )
            for i, o in enumerate(orgs)
        ]
    return data


def _spec(version: Version) -> VersionSpec:
    if version is Version.V1_1:
        roots = {Service.ROSTERING: "v1p1", Service.GRADEBOOK: "v1p1"}
        prefix = "https://purl.imsglobal.org/spec/or/v1p1/scope/"
    else:
        roots = {Service.ROSTERING: "rostering/v1p2", Service.GRADEBOOK: "gradebook/v1p2"}
        prefix = "https://purl.imsglobal.org/spec/or/v1p2/scope/"
    rows = _rostering_rows(version) + _gradebook_rows(version)
    return VersionSpec(version, roots, prefix, {row.name: row for row in rows})


VERSIONS: dict[Version, VersionSpec] = {v: _spec(v) for v in Version}


def spec_for(version: str | Version) -> VersionSpec:
    """The spec of a version given as "1.1" or "1.2"."""
    try:
        return VERSIONS[Version(version)]
    except ValueError:
        raise ValueError(f"Unknown OneRoster version {version!r}: use 1.1 or 1.2") from None
