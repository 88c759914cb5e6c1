"""The local Classroom's HTTP side (moto's "responses" and "urls"): thin.

Routes are data: every method of the shipped discovery document is a route (its flatPath and
HTTP method); the backend's handler of the same name answers it, and a method the backend
does not implement answers 501 UNIMPLEMENTED. Before a handler runs, each call goes through
what Google's front end does: the bearer token (from the token endpoint below), the Cloud
project's API switch, the method's scopes, the user's Classroom switch, the quotas (per user
and per project, on a moving minute), then the request against the discovery document.

`POST /token` is the JWT-bearer grant (a key file's `token_uri`); `POST /batch` takes
multipart/mixed batches of at most 50 calls, each counted against the quotas like a call of
its own. Faults (`rate_429`, `rate_503`, `rate_500`) are drawn per call from a seeded
generator; latency is added once per HTTP request (a batch is one round trip). A test can also
make one course answer every call on it (or the methods it names) with one error
(`LocalClassroom.fail_course`): the real Classroom has such courses now and then while the rest
of the domain answers, and no rule of Classroom's makes one; or make a list on one course give
the same `nextPageToken` again and again (`LocalClassroom.repeat_page_token`), as a broken
server or proxy does.

`/local/...` is not Google's API: it does what a teacher does in Classroom's own pages and the
API cannot (grade categories are read-only in the API), for the demo and the tests.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sislink.googleclassroom import discovery
from sislink.googleclassroom.emulator.backend import (
    ApiFailure,
    Caller,
    ClassroomBackend,
    Handler,
    denied,
    handler_for,
    invalid,
)
from sislink.googleclassroom.emulator.keys import (
    JWT_BEARER,
    GrantRefused,
    check_assertion,
    new_access_token,
)
from sislink.googleclassroom.emulator.validation import check_body, check_query

MAX_BATCH_CALLS = 50
STUCK_PAGE_TOKEN = "c3R1Y2s"  # noqa: S105 (a page token, what repeat_page_token answers)
CLASSROOM_SCOPE_PREFIX = "https://www.googleapis.com/auth/classroom."


@dataclass(frozen=True)
class ClassroomConfig:
    """How the local Classroom behaves beyond Classroom's rules: quotas, faults, delegation."""

    seed: int = 7
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_500: float = 0.0
    retry_after_s: int | None = None  # a Retry-After on injected 429/503 (Google rarely sends one)
    per_user_per_minute: int = 1200  # Google's published quotas
    per_client_per_minute: int = 3000
    quota_window_s: float = 60.0
    # The scopes the district granted the service account's client id (None: every Classroom
    # scope). Asking for one outside them is refused at the token endpoint, as Google does.
    delegated_scopes: frozenset[str] | None = None
    api_enabled: bool = True  # the Cloud project's "Google Classroom API" switch
    token_ttl_s: int = 3600

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_503", "rate_500"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a share of calls between 0 and 1, not {value}")
        if self.rate_429 + self.rate_503 + self.rate_500 > 1.0:
            raise ValueError("rate_429 + rate_503 + rate_500 must not exceed 1")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms cannot be negative")
        if self.per_user_per_minute < 1 or self.per_client_per_minute < 1:
            raise ValueError("quotas must be at least 1 call a minute")


@dataclass
class _Token:
    user_id: str | None
    project_id: str
    scopes: frozenset[str]
    expires: float


@dataclass
class CallLog:
    """What the local Classroom saw, for tests and benchmarks."""

    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    http_requests: int = 0
    batches: int = 0
    refused_for_quota: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)


class _Window:
    """Call times within the last window, to count a moving minute."""

    def __init__(self) -> None:
        self.times: collections.deque[float] = collections.deque()

    def admit(self, limit: int, window_s: float, now: float) -> bool:
        while self.times and self.times[0] <= now - window_s:
            self.times.popleft()
        if len(self.times) >= limit:
            return False
        self.times.append(now)
        return True


_NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n<title>Error 404 (Not Found)!!1</title>\n"
    "<p><b>404.</b> <ins>That\u2019s an error.</ins>\n<p>The requested URL <code>{path}</code> was "
    "not found on this server.  <ins>That\u2019s all we know.</ins>\n"
)


class LocalClassroom:
    """The app's state: backend, configuration, tokens, quotas, faults, and its own token URL."""

    def __init__(self, backend: ClassroomBackend, config: ClassroomConfig, token_uri: str) -> None:
        self.backend = backend
        self.config = config
        self.token_uri = token_uri
        self.tokens: dict[str, _Token] = {}
        self.log = CallLog()
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self._user_windows: dict[str, _Window] = collections.defaultdict(_Window)
        self._client_windows: dict[str, _Window] = collections.defaultdict(_Window)
        self.routes: list[tuple[discovery.Method, Handler | None]] = [
            (method, handler_for(method.name)) for method in discovery.methods()
        ]
        # Course id -> (the error every call on it answers, the methods it applies to; empty:
        # every method): see `fail_course`.
        self.failing_courses: dict[str, tuple[tuple[int, str, str], frozenset[str]]] = {}
        # (course id, list method) -> how many more answers repeat one nextPageToken: see
        # `repeat_page_token`.
        self.stuck_paging: dict[tuple[str, str], int] = {}

    def fail_course(
        self,
        course_id: str,
        code: int,
        status: str,
        message: str,
        *,
        methods: Iterable[str] = (),
    ) -> None:
        """From now on, calls on the course (by id or alias; only `methods`, e.g.
        `courses.students.list`, when given) answer `code` with Google's error JSON. A 5xx or
        429 answers so on every retry too, as a course stuck on Google's side does."""
        with self._lock:
            self.failing_courses[course_id] = ((code, status, message), frozenset(methods))

    def repeat_page_token(self, course_id: str, method: str, *, times: int = 50) -> None:
        """A fault, not a rule of Classroom's: the next `times` answers to the list `method`
        (e.g. `courses.courseWork.studentSubmissions.list`) on the course carry the same
        `nextPageToken`, whatever token was sent, as a broken server or proxy does (Google's
        list contract: the token is absent on the last page). Then paging ends as usual."""
        with self._lock:
            self.stuck_paging[(course_id, method)] = times

    def _course_of_call(
        self, caller: Caller, method: discovery.Method, path_params: dict[str, str]
    ) -> str:
        """The id of the course a call is on ("" when none, or not a known course)."""
        if not method.name.startswith("courses."):
            return ""
        key = path_params.get("courseId")
        if key is None and method.name.count(".") == 1:  # courses.get, patch, update, delete
            key = path_params.get("id")
        if not key:
            return ""
        with self.backend.lock:
            return self.backend._course_id(caller, key)

    def _failing_course(
        self, caller: Caller, method: discovery.Method, path_params: dict[str, str]
    ) -> None:
        if not self.failing_courses:
            return
        course_id = self._course_of_call(caller, method, path_params)
        with self._lock:
            found = self.failing_courses.get(course_id)
        if found is not None and (not found[1] or method.name in found[1]):
            raise ApiFailure(*found[0])

    def _stuck_paging(
        self, caller: Caller, method: discovery.Method, path_params: dict[str, str]
    ) -> bool:
        """Whether this answer repeats the stuck token (counted down)."""
        if not self.stuck_paging:
            return False
        key = (self._course_of_call(caller, method, path_params), method.name)
        with self._lock:
            left = self.stuck_paging.get(key, 0)
            if left <= 0:
                return False
            self.stuck_paging[key] = left - 1
            return True

    # ---- the token endpoint ---------------------------------------------------------------

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            if form.get("grant_type") != JWT_BEARER:
                raise GrantRefused(
                    400,
                    "unsupported_grant_type",
                    f"Invalid grant_type: {form.get('grant_type', '')}",
                )
            with self.backend.lock:
                projects = self.backend.projects()
            assertion = check_assertion(form.get("assertion", ""), projects, self.token_uri)
            known = discovery.known_scopes()
            unknown = [s for s in assertion.scopes if s not in known and not s.startswith("openid")]
            if unknown:
                raise GrantRefused(
                    400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
                )
            user_id: str | None = None
            if assertion.subject is not None:
                user = self.backend.directory.find(assertion.subject)
                if user is None or not user.in_domain or "@" not in assertion.subject:
                    raise GrantRefused(400, "invalid_grant", "Invalid email or User ID")
                user_id = user.id
                granted = self.config.delegated_scopes
                if granted is None:
                    granted = frozenset(s for s in known if s.startswith(CLASSROOM_SCOPE_PREFIX))
                if not set(assertion.scopes) <= granted:
                    raise GrantRefused(
                        401,
                        "unauthorized_client",
                        "Client is unauthorized to retrieve access tokens using this method, or "
                        "client not authorized for any of the scopes requested.",
                    )
        except GrantRefused as refused:
            return refused.status, refused.body()
        token = new_access_token()
        if len(self.tokens) > 1000:  # a long-running sandbox forgets expired tokens
            now = time.monotonic()
            self.tokens = {k: v for k, v in self.tokens.items() if v.expires > now}
        self.tokens[token] = _Token(
            user_id,
            assertion.project.project_id,
            frozenset(assertion.scopes),
            time.monotonic() + self.config.token_ttl_s,
        )
        return 200, {
            "access_token": token,
            "expires_in": self.config.token_ttl_s - 1,
            "token_type": "Bearer",
        }

    # ---- one API call ---------------------------------------------------------------------

    def _route(
        self, http_method: str, raw_path: str
    ) -> tuple[discovery.Method, Handler | None, dict[str, str]] | None:
        for method, handler in self.routes:
            if method.http_method != http_method:
                continue
            matched = method.pattern.match(raw_path)
            if matched:
                params = {k: urllib.parse.unquote(v) for k, v in matched.groupdict().items()}
                return method, handler, params
        return None

    def _caller(self, authorization: str, method: discovery.Method) -> Caller:
        scheme, _, token_text = authorization.partition(" ")
        token = self.tokens.get(token_text.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.expires < time.monotonic():
            raise ApiFailure(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )
        projects = {p.project_id: p for p in self.backend.projects().values()}
        project = projects[token.project_id]
        if not self.config.api_enabled:
            raise ApiFailure(
                403,
                "PERMISSION_DENIED",
                f"Google Classroom API has not been used in project {project.project_number} "
                "before or it is disabled. Enable it by visiting https://console.developers."
                f"google.com/apis/api/classroom.googleapis.com/overview?project={project.project_number} "
                "then retry.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "SERVICE_DISABLED",
                        "domain": "googleapis.com",
                        "metadata": {"service": "classroom.googleapis.com"},
                    }
                ],
            )
        if method.scopes and not set(method.scopes) & token.scopes:
            raise ApiFailure(
                403,
                "PERMISSION_DENIED",
                "Request had insufficient authentication scopes.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                        "domain": "googleapis.com",
                        "metadata": {"service": "classroom.googleapis.com", "method": method.id},
                    }
                ],
            )
        if token.user_id is None:
            raise denied()  # a service account without delegation is no Classroom user
        user = self.backend.directory.by_id[token.user_id]
        if not user.classroom_enabled:
            raise denied(
                "@ClassroomApiDisabled The user is not permitted to access the Classroom API."
            )
        return Caller(user=user, project=project, scopes=token.scopes)

    def _quota(self, caller: Caller) -> None:
        now = time.monotonic()
        config = self.config
        with self._lock:
            user_ok = self._user_windows[caller.user.id].admit(
                config.per_user_per_minute, config.quota_window_s, now
            )
            if not user_ok:
                which = "Queries per minute per user"
            else:
                client_ok = self._client_windows[caller.project.project_id].admit(
                    config.per_client_per_minute, config.quota_window_s, now
                )
                if client_ok:
                    return
                self._user_windows[caller.user.id].times.pop()
                which = "Queries per minute"
            self.log.refused_for_quota += 1
        raise ApiFailure(
            429,
            "RESOURCE_EXHAUSTED",
            f"Quota exceeded for quota metric 'Queries' and limit '{which}' of service "
            f"'classroom.googleapis.com' for consumer 'project_number:{caller.project.project_number}'.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {"quota_limit": which, "service": "classroom.googleapis.com"},
                }
            ],
        )

    def _fault(self) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        config = self.config
        if not (config.rate_429 or config.rate_503 or config.rate_500):
            return None
        with self._lock:
            roll = self._random.random()
        headers = (
            {"Retry-After": str(config.retry_after_s)} if config.retry_after_s is not None else {}
        )
        if roll < config.rate_429:
            self.log.faults["429"] += 1
            return (
                429,
                headers,
                ApiFailure(
                    429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."
                ).body(),
            )
        roll -= config.rate_429
        if roll < config.rate_503:
            self.log.faults["503"] += 1
            return (
                503,
                headers,
                ApiFailure(503, "UNAVAILABLE", "The service is currently unavailable.").body(),
            )
        roll -= config.rate_503
        if roll < config.rate_500:
            self.log.faults["500"] += 1
            return 500, {}, ApiFailure(500, "INTERNAL", "Internal error encountered.").body()
        return None

    def call(
        self, http_method: str, raw_target: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """One API call: (status, headers, JSON body or an HTML page as str)."""
        raw_path, _, query_text = raw_target.partition("?")
        found = self._route(http_method, raw_path)
        if found is None:
            # Guess: Google's front end answers an unknown URL (or method) with this page.
            return (
                404,
                {"Content-Type": "text/html; charset=UTF-8"},
                _NOT_FOUND_PAGE.format(path=raw_path),
            )
        method, handler, path_params = found
        try:
            caller = self._caller(authorization, method)
            self._failing_course(caller, method, path_params)
            fault = self._fault()
            if fault is not None:
                return fault
            self._quota(caller)
            query = urllib.parse.parse_qsl(query_text, keep_blank_values=True)
            params: dict[str, Any] = check_query(method, query)
            params.update(path_params)
            checked_body = check_body(method, body)
            if handler is None:
                raise ApiFailure(
                    501, "UNIMPLEMENTED", f"The local Classroom does not serve {method.name}."
                )
            stuck = self._stuck_paging(caller, method, path_params)
            if stuck:
                params.pop("pageToken", None)  # the stuck token names no page: the first again
            self.log.calls[method.name] += 1
            with self.backend.lock:
                try:
                    answer = handler(self.backend, caller, params, checked_body)
                finally:
                    self.backend.commit()
            if stuck and isinstance(answer, dict):
                answer = {**answer, "nextPageToken": STUCK_PAGE_TOKEN}
            return 200, {}, answer
        except ApiFailure as failure:
            return failure.code, {}, failure.body()


def _json_response(status: int, headers: dict[str, str], payload: Any) -> Response:
    if isinstance(payload, str):
        return HTMLResponse(payload, status_code=status, headers=headers)
    return Response(
        json.dumps(payload, indent=2),
        status_code=status,
        headers=headers,
        media_type="application/json; charset=UTF-8",
    )


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable"}  # fmt: skip


def _batch_parts(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """The parts of a multipart/mixed batch: (Content-ID, the embedded HTTP request).

    Split on the boundary by hand: the email package's parser cost more than the calls did."""
    kind, _, rest = content_type.partition(";")
    boundary = ""
    for parameter in rest.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
    if kind.strip().lower() != "multipart/mixed" or not boundary:
        raise invalid("A batch request must be multipart/mixed with a boundary.")
    delimiter = b"--" + boundary.encode()
    sections = body.split(delimiter)
    parts: list[tuple[str, bytes]] = []
    for section in sections[1:]:
        if section.startswith(b"--"):
            break
        head, _, raw = section.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not raw and b"\n\n" in head:
            head, _, raw = section.lstrip(b"\r\n").partition(b"\n\n")
        content_id = ""
        for line in head.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-id":
                content_id = value.strip()
        parts.append((content_id, raw.rstrip(b"\r\n")))
    return parts


def _split_http(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8", "replace").split("\n")
    method, target, *_ = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers, body


def create_app(classroom: LocalClassroom) -> Starlette:
    config = classroom.config

    async def latency() -> None:
        if config.latency_ms or config.jitter_ms:
            delay = config.latency_ms + random.uniform(-config.jitter_ms, config.jitter_ms)
            await asyncio.sleep(max(0.0, delay) / 1000)

    async def token(request: Request) -> Response:
        await latency()
        form = await request.form()
        status, payload = classroom.grant({k: str(v) for k, v in form.items()})
        return JSONResponse(payload, status_code=status)

    async def api(request: Request) -> Response:
        classroom.log.http_requests += 1
        await latency()
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        target = raw_path + ("?" + request.url.query if request.url.query else "")
        status, headers, payload = classroom.call(
            request.method, target, request.headers.get("authorization", ""), await request.body()
        )
        return _json_response(status, headers, payload)

    async def batch(request: Request) -> Response:
        classroom.log.http_requests += 1
        classroom.log.batches += 1
        await latency()
        try:
            parts = _batch_parts(request.headers.get("content-type", ""), await request.body())
            if len(parts) > MAX_BATCH_CALLS:
                # Google: at most 50 calls in a batch request.
                raise invalid(
                    f"A batch request can hold at most {MAX_BATCH_CALLS} calls, not {len(parts)}."
                )
        except ApiFailure as failure:
            return _json_response(failure.code, {}, failure.body())
        outer_auth = request.headers.get("authorization", "")
        boundary = f"batch_{random.getrandbits(64):016x}"
        out: list[str] = []
        for content_id, raw in parts:
            method, target, headers, body = _split_http(raw)
            status, extra, payload = classroom.call(
                method, target, headers.get("authorization", outer_auth), body
            )
            text = payload if isinstance(payload, str) else json.dumps(payload)
            kind = "text/html" if isinstance(payload, str) else "application/json"
            inner_headers = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            response_id = f"<response-{content_id.strip('<>')}>" if content_id else ""
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                + (f"Content-ID: {response_id}\r\n" if response_id else "")
                + f"\r\nHTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {kind}; charset=UTF-8\r\n{inner_headers}\r\n{text}\r\n"
            )
        out.append(f"--{boundary}--\r\n")
        return Response("".join(out), media_type=f"multipart/mixed; boundary={boundary}")

    async def grade_categories(request: Request) -> Response:
        # What a teacher sets in Classroom's own pages; Google's API only reads it.
        course_key = urllib.parse.unquote(request.path_params["course"])
        try:
            fake_method = discovery.method_named("courses.get")
            caller = classroom._caller(request.headers.get("authorization", ""), fake_method)
            payload = await request.json()
            with classroom.backend.lock:
                course = classroom.backend._course(caller, course_key, write=True)
                answer = classroom.backend.set_grade_categories(
                    course["id"],
                    list(payload.get("gradeCategories", [])),
                    str(payload.get("calculationType") or "TOTAL_POINTS"),
                )
        except ApiFailure as failure:
            return _json_response(failure.code, {}, failure.body())
        return _json_response(200, {}, answer)

    routes = [
        Route("/token", token, methods=["POST"]),
        Route("/batch", batch, methods=["POST"]),
        Route("/local/v1/courses/{course}/gradebookSettings", grade_categories, methods=["PUT"]),
        Route("/{path:path}", api, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.state.classroom = classroom
    return app
