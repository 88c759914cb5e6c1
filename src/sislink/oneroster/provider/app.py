"""The built-in SIS's HTTP API: OneRoster 1.1 and 1.2 mounted from the endpoint tables in versions.py.

One generic handler serves every collection, single object and relationship endpoint; what
differs per endpoint is data (`_RELATIONS`, `_KINDS`, `_PARENTS`) and what differs per SIS is
the vendor profile. Strict in what it returns (bodies valid against 1EdTech's OpenAPI), lenient
in what it accepts (GUIDRefs with only a sourcedId). A 1.2 collection page without `fields` is
assembled from the records' stored JSON text (`texts_body`); every other body is rebuilt from
decoded records (`records_body`), and the two give the same bytes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sislink.oneroster.errors import (
    FORBIDDEN,
    INVALID_DATA,
    INVALID_FILTER_FIELD,
    INVALID_SELECTION_FIELD,
    INVALID_SORT_FIELD,
    UNAUTHORISED,
    UNKNOWN_OBJECT,
    failure,
)
from sislink.oneroster.filters import Filter, FilterSyntaxError, Predicate, parse, quote
from sislink.oneroster.models import SCORE_STATUSES, format_datetime, utc_now
from sislink.oneroster.provider.auth import Authenticator, AuthError, Grant
from sislink.oneroster.provider.faults import FaultConfig, FaultMiddleware, FaultPlan
from sislink.oneroster.provider.profiles import OAUTH1, OAUTH2, VendorProfile
from sislink.oneroster.provider.store import (
    FIELDS,
    Condition,
    ProviderStore,
    absolute_hrefs,
    check_field,
)
from sislink.oneroster.versions import VERSIONS, Endpoint, Service, Version, VersionSpec

DEFAULT_LIMIT = 100
TEACHER_ROLES = ("teacher",)
STUDENT_ROLES = ("student",)

S = ProviderStore
Ids = dict[str, str]


@dataclass
class ProviderConfig:
    """How the server behaves: the SIS it imitates, who may call it, what faults it injects."""

    profile: VendorProfile
    authenticator: Authenticator
    faults: FaultConfig = field(default_factory=FaultConfig)
    vendor_key: str = "sislink-vendor"
    vendor_secret: str = field(default="vendor-s3cret", repr=False)
    max_limit: int = 100_000
    # How the token endpoint takes client credentials ("basic", "post"); None: the profile's.
    client_auth: tuple[str, ...] | None = None
    # Endpoints (by name, e.g. "class_categories") this SIS does not have: they answer 404 as
    # any unknown path does, as on a real SIS that does not serve them.
    without_endpoints: frozenset[str] = frozenset()

    @property
    def vendor_header_value(self) -> str:
        return f"{self.vendor_key}:{self.vendor_secret}"

    @property
    def accepted_client_auth(self) -> tuple[str, ...]:
        return self.client_auth or self.profile.client_auth


class ProviderError(Exception):
    """An error the API answers with an imsx status body."""

    def __init__(
        self, status: int, code_minor: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code_minor = code_minor
        self.description = description
        self.headers = headers or {}


def error_response(error: ProviderError) -> JSONResponse:
    return JSONResponse(
        failure(error.code_minor, error.description).body(),
        status_code=error.status,
        headers=error.headers,
    )


# ---- what each endpoint means, as data --------------------------------------------------------

# Endpoints that list or read only one kind of an entity (schools are orgs of type school ...).
_KINDS: dict[str, Callable[[], Condition]] = {
    "schools": lambda: S.field_equals("org", "type", "school"),
    "school": lambda: S.field_equals("org", "type", "school"),
    "terms": lambda: S.field_equals("academicSession", "type", "term"),
    "term": lambda: S.field_equals("academicSession", "type", "term"),
    "grading_periods": lambda: S.field_equals("academicSession", "type", "gradingPeriod"),
    "grading_period": lambda: S.field_equals("academicSession", "type", "gradingPeriod"),
    "teachers": lambda: S.with_role(TEACHER_ROLES),
    "teacher": lambda: S.with_role(TEACHER_ROLES),
    "students": lambda: S.with_role(STUDENT_ROLES),
    "student": lambda: S.with_role(STUDENT_ROLES),
}


def _class_results(ids: Ids) -> list[Condition]:
    # A result belongs to a class through its own class ref (1.2) or its lineItem's (1.1).
    return [
        S.any_of(
            S.referencing("result", "class", ids["class_id"]),
            S.referencing_any(
                "result",
                "lineItem",
                "lineItem",
                [S.referencing("lineItem", "class", ids["class_id"])],
            ),
        )
    ]


# Relationship endpoints: the conditions that pick their objects, given the path's ids.
_RELATIONS: dict[str, Callable[[Ids], list[Condition]]] = {
    "class_students": lambda i: [S.enrolled_in(i["class_id"], STUDENT_ROLES)],
    "class_teachers": lambda i: [S.enrolled_in(i["class_id"], TEACHER_ROLES)],
    "course_classes": lambda i: [S.referencing("class", "course", i["course_id"])],
    "school_classes": lambda i: [S.referencing("class", "school", i["school_id"])],
    "school_class_enrollments": lambda i: [
        S.referencing("enrollment", "class", i["class_id"]),
        S.referencing("enrollment", "school", i["school_id"]),
    ],
    "school_class_students": lambda i: [S.enrolled_in(i["class_id"], STUDENT_ROLES)],
    "school_class_teachers": lambda i: [S.enrolled_in(i["class_id"], TEACHER_ROLES)],
    "school_courses": lambda i: [S.referencing("course", "org", i["school_id"])],
    "school_enrollments": lambda i: [S.referencing("enrollment", "school", i["school_id"])],
    "school_students": lambda i: [S.with_role(STUDENT_ROLES, i["school_id"])],
    "school_teachers": lambda i: [S.with_role(TEACHER_ROLES, i["school_id"])],
    "school_terms": lambda i: [
        S.field_equals("academicSession", "type", "term"),
        S.referenced_by(
            "academicSession", "class", "terms", [S.referencing("class", "school", i["school_id"])]
        ),
    ],
    "student_classes": lambda i: [S.classes_of(i["student_id"], STUDENT_ROLES)],
    "teacher_classes": lambda i: [S.classes_of(i["teacher_id"], TEACHER_ROLES)],
    "term_classes": lambda i: [S.referencing("class", "terms", i["term_id"])],
    "term_grading_periods": lambda i: [
        S.referencing("academicSession", "parent", i["term_id"]),
        S.field_equals("academicSession", "type", "gradingPeriod"),
    ],
    "user_classes": lambda i: [S.classes_of(i["user_id"])],
    "class_line_items": lambda i: [S.referencing("lineItem", "class", i["class_id"])],
    "class_line_item_results": lambda i: [S.referencing("result", "lineItem", i["line_item_id"])],
    "class_results": _class_results,
    "class_student_results": lambda i: [
        *_class_results(i),
        S.referencing("result", "student", i["student_id"]),
    ],
    # A category with no class is district-wide: every class lists it.
    "class_categories": lambda i: [
        S.any_of(
            S.referencing("category", "class", i["class_id"]),
            S.referencing_nothing("category", "class"),
        )
    ],
    "class_score_scales": lambda i: [S.referencing("scoreScale", "class", i["class_id"])],
    "school_score_scales": lambda i: [
        S.referencing_any(
            "scoreScale", "class", "class", [S.referencing("class", "school", i["school_id"])]
        )
    ],
}

# What each path placeholder identifies: an unknown one answers 404.
_PARENTS: dict[str, tuple[str, str | None]] = {
    "class_id": ("class", None),
    "school_id": ("org", "school"),
    "course_id": ("course", None),
    "term_id": ("academicSession", "term"),
    "teacher_id": ("user", "teacher"),
    "student_id": ("user", "student"),
    "user_id": ("user", None),
    "line_item_id": ("lineItem", None),
}

# 1.1 names of 1.2 fields (users: `role` and `orgs` became `roles[]`).
_FIELDS_1_1 = {"user": {"role": "roles.role", "orgs": "roles.org"}}

# GUIDRefs a PUT must carry, per version, beyond what the model requires.
_REQUIRED_REFS: dict[tuple[Version, str], tuple[str, ...]] = {
    (Version.V1_2, "lineItem"): ("school", "category"),
    (Version.V1_1, "lineItem"): ("category", "gradingPeriod"),
}
# Where a PUT's GUIDRefs must point: (field, entity).
_REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "lineItem": (
        ("class", "class"),
        ("school", "org"),
        ("category", "category"),
        ("gradingPeriod", "academicSession"),
        ("scoreScale", "scoreScale"),
    ),
    "result": (("lineItem", "lineItem"), ("student", "user"), ("class", "class")),
    "scoreScale": (("class", "class"), ("course", "course")),
}


# ---- the app --------------------------------------------------------------------------------


def create_app(store: ProviderStore, config: ProviderConfig) -> Any:
    """The ASGI app of the built-in SIS (FastAPI, wrapped in the fault middleware when faults
    are configured)."""
    app = FastAPI(
        title=f"sislink built-in SIS ({config.profile.name})",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    api = _Api(store, config)

    @app.exception_handler(ProviderError)
    async def _provider_error(request: Request, error: ProviderError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        minor = UNKNOWN_OBJECT if error.status_code == 404 else INVALID_DATA
        return error_response(
            ProviderError(
                error.status_code, minor, f"{request.method} {request.url.path}: {error.detail}"
            )
        )

    profile = config.profile
    if profile.token_path is not None:
        app.add_api_route(profile.token_path, api.token, methods=["POST"], include_in_schema=False)

    for version in profile.versions:
        spec = VERSIONS[version]
        for endpoint in spec.endpoints.values():
            if endpoint.name in config.without_endpoints:
                continue
            path = f"{profile.oneroster_prefix}/ims/oneroster/{spec.service_roots[endpoint.service]}/{endpoint.path}"
            app.add_api_route(
                path,
                api.handler(spec, endpoint),
                methods=sorted(endpoint.methods),
                include_in_schema=False,
                name=f"{spec.version}:{endpoint.name}",
            )

    if not config.faults.active:
        return app
    return FaultMiddleware(app, FaultPlan(config.faults), lambda path: "/ims/oneroster/" in path)


class _Api:
    def __init__(self, store: ProviderStore, config: ProviderConfig) -> None:
        self.store = store
        self.config = config
        self.profile = config.profile
        self.auth: Authenticator = config.authenticator
        self._affinity: set[str] = set()

    # ---- token endpoint -----------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        try:
            for name in self.profile.required_token_query:
                if not request.query_params.get(name):
                    raise AuthError(
                        400,
                        "invalid_request",
                        f"The token URL needs ?{name}=... (this SIS's token URL rule).",
                    )
            body = (await request.body()).decode("utf-8", "replace")
            form = dict(parse_qsl(body, keep_blank_values=True))
            if form.get("grant_type") != "client_credentials":
                raise AuthError(400, "unsupported_grant_type", "Use grant_type=client_credentials.")
            client_id, secret = self.auth.client_credentials(
                request.headers.get("authorization"), form, self.config.accepted_client_auth
            )
            issued = self.auth.issue_token(
                client_id, secret, form.get("scope"), scope_required=self.profile.scope_required
            )
        except AuthError as error:
            headers = {"www-authenticate": 'Basic realm="oneroster"'} if error.status == 401 else {}
            return JSONResponse(
                {"error": error.error, "error_description": error.description},
                status_code=error.status,
                headers=headers,
            )
        spec = VERSIONS[self.profile.version]
        response = JSONResponse(
            {
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": " ".join(spec.scope_uris(issued.scopes)),
            },
            headers={"cache-control": "no-store"},
        )
        if self.profile.affinity_cookie:
            value = secrets.token_hex(16)
            self._affinity.add(value)
            response.set_cookie(self.profile.affinity_cookie, value, httponly=True, path="/")
        return response

    # ---- OneRoster endpoints ------------------------------------------------------------

    def handler(
        self, spec: VersionSpec, endpoint: Endpoint
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            self._authorise(request, spec, endpoint)
            ids: Ids = {k: str(v) for k, v in request.path_params.items()}
            if request.method == "PUT":
                return await self._put(request, spec, endpoint, ids["id"])
            if request.method == "DELETE":
                return self._delete(endpoint, ids["id"])
            if endpoint.collection:
                return self._collection(request, spec, endpoint, ids)
            return self._single(request, spec, endpoint, ids["id"])

        return handle

    def _root_url(self, request: Request) -> str:
        return str(request.base_url).rstrip("/") + self.profile.oneroster_prefix + "/ims/oneroster"

    def _authorise(self, request: Request, spec: VersionSpec, endpoint: Endpoint) -> Grant:
        header = request.headers.get("authorization", "")
        scheme = header.split(" ", 1)[0].lower()
        try:
            if scheme == "bearer" and OAUTH2 in self.profile.auth_kinds:
                grant = self.auth.bearer(header[7:].strip())
            elif scheme == "oauth" and OAUTH1 in self.profile.auth_kinds:
                grant = self.auth.verify_oauth1(request.method, _signed_url(request), header)
            else:
                kinds = " or ".join(
                    "an OAuth 2 bearer token" if k == OAUTH2 else "an OAuth 1.0a signature"
                    for k in self.profile.auth_kinds
                )
                raise AuthError(
                    401, "invalid_request", f"This SIS needs {kinds} in the Authorization header."
                )
        except AuthError as error:
            raise ProviderError(
                401, UNAUTHORISED, error.description, {"www-authenticate": "Bearer"}
            ) from None
        cookie = self.profile.affinity_cookie
        if cookie and request.cookies.get(cookie) not in self._affinity:
            raise ProviderError(
                401,
                UNAUTHORISED,
                f"The load-balancer cookie {cookie} from the token response is missing; "
                "send the cookies the token call set.",
            )
        needed = endpoint.scopes_for(request.method)
        if not grant.scopes.intersection(needed):
            raise ProviderError(
                403,
                FORBIDDEN,
                f"{request.method} {endpoint.path} needs the scope {spec.scope_uri(needed[0])}, "
                "which this token was not granted.",
            )
        header_name = self.profile.gradebook_header
        if header_name and endpoint.service is Service.GRADEBOOK:
            sent = request.headers.get(header_name, "")
            if not secrets.compare_digest(sent.encode(), self.config.vendor_header_value.encode()):
                raise ProviderError(
                    401,
                    UNAUTHORISED,
                    f"Gradebook calls on this SIS need the header {header_name}: "
                    "vendorKey:vendorSecret; it is missing or wrong.",
                )
        return grant

    # ---- reading ------------------------------------------------------------------------

    def _check_parents(self, endpoint: Endpoint, ids: Ids) -> None:
        for placeholder in endpoint.placeholders:
            if placeholder not in _PARENTS:
                continue
            entity, kind = _PARENTS[placeholder]
            sourced_id = ids[placeholder]
            record = self.store.get(entity, sourced_id)
            if record is None or (kind is not None and not _is_kind(record, entity, kind)):
                raise ProviderError(
                    404,
                    UNKNOWN_OBJECT,
                    f"There is no {kind or entity} with sourcedId {sourced_id!r}.",
                )

    def _collection(
        self, request: Request, spec: VersionSpec, endpoint: Endpoint, ids: Ids
    ) -> Response:
        entity = endpoint.entity
        params = request.query_params
        limit = _int_param(params.get("limit"), "limit", DEFAULT_LIMIT, minimum=1)
        limit = min(limit, self.config.max_limit)
        offset = _int_param(params.get("offset"), "offset", 0, minimum=0)
        parsed_filter = _parse_filter(params.get("filter"), entity)
        sort = params.get("sort") or None
        if sort is not None:
            sort = _translate_field(entity, sort)
            try:
                check_field(entity, sort)
            except FilterSyntaxError as error:
                raise ProviderError(400, INVALID_SORT_FIELD, f"Cannot sort: {error}") from None
        order = (params.get("orderBy") or "asc").lower()
        if order not in ("asc", "desc"):
            raise ProviderError(400, INVALID_DATA, f"orderBy is asc or desc, not {order!r}.")
        fields = _fields_param(params.get("fields"), entity, spec)
        self._check_parents(endpoint, ids)
        conditions: list[Condition] = []
        if endpoint.name in _KINDS:
            conditions.append(_KINDS[endpoint.name]())
        if endpoint.name in _RELATIONS:
            conditions += _RELATIONS[endpoint.name](ids)
        root = self._root_url(request)
        key = endpoint.kind.collection_key
        try:
            if fields is None and spec.version is Version.V1_2:
                # A 1.2 page of whole objects is its records' stored text with the hrefs
                # rooted: nothing is decoded or encoded again.
                text_page = self.store.query_text(
                    entity,
                    conditions=conditions,
                    filter=parsed_filter,
                    sort=sort,
                    descending=order == "desc",
                    limit=limit,
                    offset=offset,
                )
                total, body = text_page.total, texts_body(key, text_page.texts, root)
            else:
                page = self.store.query(
                    entity,
                    conditions=conditions,
                    filter=parsed_filter,
                    sort=sort,
                    descending=order == "desc",
                    limit=limit,
                    offset=offset,
                )
                total = page.total
                body = records_body(key, page.records, spec, entity, root, fields)
        except FilterSyntaxError as error:
            raise ProviderError(400, INVALID_FILTER_FIELD, str(error)) from None
        headers = {"x-total-count": str(total)}
        links = _link_header(request, limit, offset, total)
        if links:
            headers["link"] = links
        return Response(body, status_code=200, headers=headers, media_type="application/json")

    def _single(
        self, request: Request, spec: VersionSpec, endpoint: Endpoint, sourced_id: str
    ) -> Response:
        entity = endpoint.entity
        fields = _fields_param(request.query_params.get("fields"), entity, spec)
        record = self.store.get(entity, sourced_id)
        kind = _KIND_OF_SINGLE.get(endpoint.name)
        if record is None or (kind is not None and not _is_kind(record, entity, kind)):
            raise ProviderError(
                404, UNKNOWN_OBJECT, f"There is no {kind or entity} with sourcedId {sourced_id!r}."
            )
        data = _project(spec.reshape(record, entity, self._root_url(request)), fields)
        return _json({endpoint.kind.single_key: data}, 200, {})

    # ---- writing ------------------------------------------------------------------------

    async def _put(
        self, request: Request, spec: VersionSpec, endpoint: Endpoint, sourced_id: str
    ) -> Response:
        entity = endpoint.entity
        key = endpoint.kind.single_key
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ProviderError(400, INVALID_DATA, f"The body is not JSON: {error}.") from None
        data = body.get(key, body) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ProviderError(
                400, INVALID_DATA, f'The body must be a JSON object {{"{key}": {{...}}}}.'
            )
        data = dict(data)
        if data.setdefault("sourcedId", sourced_id) != sourced_id:
            raise ProviderError(
                400,
                INVALID_DATA,
                f"sourcedId {data['sourcedId']!r} in the body differs from {sourced_id!r} in the URL.",
            )
        data.setdefault("status", "active")
        data["dateLastModified"] = format_datetime(utc_now())
        if entity == "lineItem" and not data.get("category") and self.profile.default_category:
            data["category"] = self._default_category(data)
        for ref_field in _REQUIRED_REFS.get((spec.version, entity), ()):
            if not isinstance(data.get(ref_field), dict):
                raise ProviderError(
                    400,
                    INVALID_DATA,
                    f"{key}.{ref_field} is required (a GUIDRef with a sourcedId).",
                )
        try:
            model = spec.from_wire(entity, data)
        except ValidationError as error:
            problems = "; ".join(
                f"{key}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            raise ProviderError(400, INVALID_DATA, f"Invalid {key}: {problems}.") from None
        stored = VERSIONS[Version.V1_2].to_wire(model, self._root_url(request))
        self._check_put(entity, key, stored)
        created = self.store.put(entity, stored)
        status = 201 if created else self.profile.update_status
        if not self.profile.put_answers_body:
            # 1EdTech's OpenAPI: 201, "successfully stored", with no body.
            return Response(status_code=status)
        out = spec.reshape(stored, entity, self._root_url(request))
        return _json({key: out}, status, {})

    def _default_category(self, data: dict[str, Any]) -> dict[str, str] | None:
        klass = data.get("class")
        if not isinstance(klass, dict) or not klass.get("sourcedId"):
            return None
        title = self.profile.default_category or ""
        page = self.store.query(
            "category",
            conditions=_RELATIONS["class_categories"]({"class_id": str(klass["sourcedId"])}),
            filter=parse(f"title={quote(title)}"),
            limit=1,
        )
        return {"sourcedId": page.records[0]["sourcedId"]} if page.records else None

    def _check_put(self, entity: str, key: str, stored: dict[str, Any]) -> None:
        for ref_field, target in _REFERENCES.get(entity, ()):
            ref = stored.get(ref_field)
            if isinstance(ref, dict) and not self.store.exists(target, str(ref["sourcedId"])):
                raise ProviderError(
                    400,
                    INVALID_DATA,
                    f"{key}.{ref_field} points at {target} {ref['sourcedId']!r}, which this SIS does not have.",
                )
        if entity == "result":
            status = stored.get("scoreStatus", "")
            if status not in SCORE_STATUSES and not str(status).startswith("ext:"):
                raise ProviderError(
                    400,
                    INVALID_DATA,
                    f"result.scoreStatus {status!r} is not one of: {', '.join(SCORE_STATUSES)}.",
                )
            if "class" not in stored:
                # 1.1 and Google's consumer leave the class out: it is the lineItem's.
                line_item = self.store.get("lineItem", str(stored["lineItem"]["sourcedId"]))
                if line_item and isinstance(line_item.get("class"), dict):
                    stored["class"] = dict(line_item["class"])

    def _delete(self, endpoint: Endpoint, sourced_id: str) -> Response:
        if not self.store.delete(endpoint.entity, sourced_id):
            raise ProviderError(
                404, UNKNOWN_OBJECT, f"There is no {endpoint.entity} with sourcedId {sourced_id!r}."
            )
        return Response(status_code=204)


_KIND_OF_SINGLE = {
    "school": "school",
    "term": "term",
    "grading_period": "gradingPeriod",
    "teacher": "teacher",
    "student": "student",
}


def _is_kind(record: dict[str, Any], entity: str, kind: str) -> bool:
    if entity == "user":
        return any(isinstance(r, dict) and r.get("role") == kind for r in record.get("roles") or [])
    return bool(record.get("type") == kind)


def _signed_url(request: Request) -> str:
    """The URL as the client addressed it (raw path, raw query), for the OAuth 1.0a base string."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    host = request.headers.get("host", request.url.netloc)
    url = f"{request.url.scheme}://{host}{raw_path.decode('latin-1')}"
    return f"{url}?{query.decode('latin-1')}" if query else url


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _json(content: Any, status: int, headers: dict[str, str]) -> Response:
    body = _ENCODER.encode(content).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def records_body(
    collection_key: str,
    records: list[dict[str, Any]],
    spec: VersionSpec,
    entity: str,
    root_url: str,
    fields: list[str] | None,
) -> bytes:
    """A collection body from stored records: each one reshaped for `spec` served from
    `root_url`, cut to `fields` when given. Serves 1.1 pages and pages with `fields`; the
    reference that `texts_body` must equal."""
    items = [_project(spec.reshape(r, entity, root_url), fields) for r in records]
    return _ENCODER.encode({collection_key: items}).encode()


def texts_body(collection_key: str, texts: list[str], root_url: str) -> bytes:
    """The same body as `records_body` for a 1.2 page of whole objects, assembled from the
    records' stored JSON texts: joined, hrefs rooted, never decoded."""
    head = _ENCODER.encode(collection_key)
    return absolute_hrefs(f"{{{head}:[{','.join(texts)}]}}", root_url).encode()


def _int_param(text: str | None, name: str, default: int, *, minimum: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ProviderError(
            400, INVALID_DATA, f"{name} must be a whole number, not {text!r}."
        ) from None
    if value < minimum:
        raise ProviderError(400, INVALID_DATA, f"{name} must be at least {minimum}, not {value}.")
    return value


def _translate_field(entity: str, name: str) -> str:
    head, _, rest = name.partition(".")
    renamed = _FIELDS_1_1.get(entity, {}).get(head)
    if renamed is None:
        return name
    return f"{renamed}.{rest}" if rest else renamed


def _parse_filter(text: str | None, entity: str) -> Filter | None:
    if not text:
        return None
    try:
        parsed = parse(text)
    except FilterSyntaxError as error:
        raise ProviderError(400, INVALID_FILTER_FIELD, str(error)) from None

    def translated(p: Predicate) -> Predicate:
        return Predicate(_translate_field(entity, p.field), p.op, p.value)

    second = translated(parsed.second) if parsed.second else None
    return Filter(translated(parsed.first), parsed.join, second)


def _fields_param(text: str | None, entity: str, spec: VersionSpec) -> list[str] | None:
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    allowed = set(FIELDS[entity])
    if spec.version is Version.V1_1:
        allowed |= set(_FIELDS_1_1.get(entity, {}))
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ProviderError(
            400,
            INVALID_SELECTION_FIELD,
            f"fields names {', '.join(unknown)}, which {entity} does not have; "
            f"its fields are: {', '.join(sorted(allowed))}.",
        )
    return names


def _project(data: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields is None:
        return data
    return {name: data[name] for name in fields if name in data}


def _link_header(request: Request, limit: int, offset: int, total: int) -> str:
    """RFC 8288 links to the first, previous, next and last pages."""
    links: list[str] = []

    def link(rel: str, at: int) -> None:
        url = request.url.include_query_params(limit=limit, offset=at)
        links.append(f'<{url}>; rel="{rel}"')

    last = max(0, (total - 1) // limit * limit) if total else 0
    if offset + limit < total:
        link("next", offset + limit)
    if offset > 0:
        link("prev", max(0, offset - limit))
    link("first", 0)
    link("last", last)
    return ", ".join(links)
