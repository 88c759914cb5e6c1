"""The Google Classroom client: Google's own `google-api-python-client` and `google-auth`, used
the way Google's samples use them, with the bounds every sislink client keeps.

Authentication is a service account with domain-wide delegation (how every SIS-to-Classroom sync
signs in): the district gives the service account's JSON key file and an administrator's email;
calls are made as that administrator, or as a teacher where Classroom requires it (`as_user`).
The API surface comes from the discovery document the library ships (`static_discovery=True`):
nothing is fetched at run time. The real Classroom and the local one (`sislink google serve`)
differ only in `api_endpoint` and in the key file's `token_uri`: there is no test mode here.

Threads, not asyncio: google-api-python-client is synchronous (httplib2), and an `httplib2.Http`
is not thread-safe. So calls run on a bounded pool of threads (`ClientSettings.max_concurrency`),
and each thread has its own `Http` (and its own `Resource` built on it) per user it acts as;
credentials are shared per user, and their token is fetched once, under a lock, before use.

Bounds: at most `max_concurrency` calls (or batches) in flight; calls start no faster than the
quotas allow (per user and per project, on a moving minute, like Google counts them), so a sync
does not provoke 429s; a 429 `RESOURCE_EXHAUSTED` or a 5xx is retried with exponential backoff
and full jitter, honouring `Retry-After`; lists are paged with `pageToken`; `execute_many` sends
calls in `BatchHttpRequest`s of at most 50, to the batch path of the configured endpoint (the
library's `new_batch_http_request()` would always use classroom.googleapis.com's).

The private key and the access tokens never appear in a repr, a log line or an exception.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import google_auth_httplib2
import httplib2
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from sislink.googleclassroom import discovery
from sislink.googleclassroom.errors import (
    ClassroomError,
    ClassroomUnreachable,
    KeyFileError,
    MalformedAnswer,
    TokenRefused,
    error_from_answer,
    token_error,
)

DEFAULT_API_ENDPOINT = "https://classroom.googleapis.com/"

SCOPES: tuple[str, ...] = (
    "https://www.googleapis.com/auth/classroom.courses",
    "https://www.googleapis.com/auth/classroom.rosters",
    "https://www.googleapis.com/auth/classroom.coursework.students",
    "https://www.googleapis.com/auth/classroom.profile.emails",
)
"""What sislink asks for, and so what the district grants the service account's client id."""

MAX_BATCH_SIZE = 50  # Google's batch endpoint takes at most 50 calls (the library allows 1000)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "PATCH"})
_REQUIRED_KEY_FIELDS = ("client_email", "private_key", "private_key_id", "token_uri", "client_id")
# Classroom answers every success 200; the library raises for 300 and above, and a batch's own
# answer and the calls inside it reach us without their status when they succeed.
SUCCESS_STATUS = 200

logger = logging.getLogger("sislink.googleclassroom")


@dataclass(frozen=True)
class ServiceAccountKey:
    """A service account's JSON key, checked; the private key is kept out of every repr."""

    client_email: str
    client_id: str
    project_id: str
    private_key_id: str
    token_uri: str
    _info: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_file(cls, path: str | Path) -> ServiceAccountKey:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise KeyFileError(
                f"Cannot read the key file {path}: {exc.strerror or exc}. Give the path of the "
                "JSON key downloaded for the service account."
            ) from None
        return cls.from_json(text, source=str(path))

    @classmethod
    def from_json(cls, text: str, *, source: str = "the key file") -> ServiceAccountKey:
        try:
            info = json.loads(text)
        except ValueError:
            raise KeyFileError(
                f"{source} is not JSON: give the JSON key file of a service account (Google "
                "Cloud console > IAM & Admin > Service accounts > Keys > Add key > JSON)."
            ) from None
        return cls.from_info(info, source=source)

    @classmethod
    def from_info(cls, info: Any, *, source: str = "the key file") -> ServiceAccountKey:
        if not isinstance(info, dict):
            raise KeyFileError(f"{source} is not a service account key (a JSON object).")
        kind = info.get("type")
        if kind != "service_account":
            what = f"a {kind!r} credential" if kind else "not a key file"
            raise KeyFileError(
                f"{source} is {what}, not a service account key: sislink signs in as a "
                "service account with domain-wide delegation; create a JSON key for one "
                "(Google Cloud console > IAM & Admin > Service accounts > Keys)."
            )
        missing = [name for name in _REQUIRED_KEY_FIELDS if not info.get(name)]
        if missing:
            raise KeyFileError(
                f"{source} lacks {', '.join(missing)}: it is not a complete service account "
                "key; download the JSON key again."
            )
        try:
            load_pem_private_key(str(info["private_key"]).encode(), password=None)
        except (ValueError, TypeError):
            raise KeyFileError(
                f"{source} holds a private key that cannot be read (damaged or edited): "
                "download the JSON key again."
            ) from None
        token_uri = str(info["token_uri"])
        if urlparse(token_uri).scheme not in ("https", "http"):
            raise KeyFileError(f"{source} has a token_uri that is not a web address.")
        return cls(
            client_email=str(info["client_email"]),
            client_id=str(info["client_id"]),
            project_id=str(info.get("project_id") or ""),
            private_key_id=str(info["private_key_id"]),
            token_uri=token_uri,
            _info=dict(info),
        )

    def credentials(self, subject: str, scopes: Sequence[str]) -> service_account.Credentials:
        """google-auth credentials acting as `subject` (domain-wide delegation)."""
        base = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            self._info, scopes=scopes
        )
        delegated: service_account.Credentials = base.with_subject(subject)
        return delegated


@dataclass(frozen=True)
class ClientSettings:
    """The bounds of one client. The quota defaults are Google's published ones."""

    max_concurrency: int = 16
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 32.0
    retry_after_cap_s: float = 120.0  # a Retry-After is obeyed up to this, whatever the backoff
    timeout_s: float = 30.0
    calls_per_minute_per_user: int = 1200
    calls_per_minute: int = 3000
    # Google counts a call when it arrives, the client when it leaves: a little slack on the
    # client's minute keeps a batch sent as the window turns from landing just inside it.
    quota_margin_s: float = 2.0
    batch_size: int = MAX_BATCH_SIZE
    # A kept-alive connection idle this long is closed before use: servers drop idle ones
    # (and a quota wait can be a minute), and httplib2 does not resend a POST that met a
    # connection the server had closed.
    idle_connection_s: float = 4.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE} (Google's batch limit)")
        if self.max_concurrency < 1 or self.max_retries < 0:
            raise ValueError("max_concurrency must be at least 1 and max_retries at least 0")


@dataclass
class CallOutcome:
    """What one call of `execute_many` came to: its answer, or the error that ended it."""

    result: Any = None
    error: ClassroomError | None = None
    tries: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


RequestMaker = Callable[[Resource], HttpRequest]


@dataclass(frozen=True)
class CallAttempt:
    """One attempt at a call, as `ClassroomClient.call_observers` are told of it: the API
    method (`courses.list`; "batch" for a batch's own round trip, whose calls are then told one
    by one), the HTTP method, the HTTP status (None when no answer came) and the attempt's
    number (0 first, 1 and on for retries)."""

    call: str
    method: str
    status: int | None
    attempt: int


class MovingMinuteLimiter:
    """At most `limit` call starts in any 60 s: Google's quotas counted the way Google counts."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._starts: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def delay_for(self, calls: int, now: float) -> float:
        """Seconds until `calls` more may start (0: now); records them when 0. Lock held."""
        while self._starts and self._starts[0] <= now - self.window_s:
            self._starts.popleft()
        if len(self._starts) + calls <= self.limit:
            self._starts.extend([now] * calls)
            return 0.0
        if calls > self.limit:
            raise ValueError("a batch larger than the quota can never start")
        # The oldest starts that must expire before these fit.
        return self._starts[len(self._starts) + calls - self.limit - 1] + self.window_s - now


class ClassroomClient:
    """Calls the Classroom API as the administrator (or `as_user`), bounded; see the module."""

    def __init__(
        self,
        key: ServiceAccountKey,
        *,
        admin_email: str,
        api_endpoint: str = DEFAULT_API_ENDPOINT,
        settings: ClientSettings | None = None,
        scopes: Sequence[str] = SCOPES,
    ) -> None:
        if "@" not in admin_email:
            raise KeyFileError(f"{admin_email!r} is not an email address; give an administrator's.")
        self.key = key
        self.admin_email = admin_email.strip().lower()
        self.api_endpoint = api_endpoint if api_endpoint.endswith("/") else api_endpoint + "/"
        self.batch_uri = urljoin(self.api_endpoint, discovery.batch_path())
        self.settings = settings or ClientSettings()
        self.scopes = tuple(scopes)
        self._credentials: dict[str, service_account.Credentials] = {}
        self._credentials_lock = threading.Lock()
        self._local = threading.local()
        self._quota_lock = threading.Lock()
        self._per_user: dict[str, MovingMinuteLimiter] = {}
        self._per_client = MovingMinuteLimiter(
            self.settings.calls_per_minute, 60.0 + self.settings.quota_margin_s
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.calls_made = 0  # HTTP round trips (a batch is one)
        self.retries = 0
        self.waits: collections.deque[float] = collections.deque(maxlen=200)  # backoffs taken
        # Told of every attempt (metrics); this package imports nothing of sislink's to do it.
        self.call_observers: list[Callable[[CallAttempt], None]] = []

    def __repr__(self) -> str:
        return f"ClassroomClient({self.key.client_email!r} as {self.admin_email!r} at {self.api_endpoint!r})"

    # ---- plumbing: credentials, one Http per thread per user, quotas --------------------------

    def _credentials_for(self, subject: str) -> service_account.Credentials:
        with self._credentials_lock:
            creds = self._credentials.get(subject)
            if creds is None:
                creds = self.key.credentials(subject, self.scopes)
                self._credentials[subject] = creds
            if not creds.valid:
                request = google_auth_httplib2.Request(
                    httplib2.Http(timeout=self.settings.timeout_s)
                )
                try:
                    creds.refresh(request)  # type: ignore[no-untyped-call]
                except RefreshError as exc:
                    raise self._token_refused(exc, subject) from None
                except (TypeError, KeyError, ValueError):
                    # google-auth indexes the answer as JSON: an HTML page fails there.
                    raise TokenRefused(
                        f"The key file's token endpoint {self.key.token_uri} did not answer as "
                        "Google's token endpoint does (not JSON): check the key file's token_uri."
                    ) from None
                except (TransportError, OSError, httplib2.HttpLib2Error) as exc:
                    raise ClassroomUnreachable(
                        f"Could not reach the key file's token endpoint {self.key.token_uri}: "
                        f"{_transport_words(exc)}. Check the network (and the key file's token_uri)."
                    ) from None
            return creds

    def _token_refused(self, exc: RefreshError, subject: str) -> TokenRefused:
        error, description = "", ""
        args = exc.args
        if len(args) > 1 and isinstance(args[1], dict):
            error = str(args[1].get("error") or "")
            description = str(args[1].get("error_description") or "")
        elif args:
            text = str(args[0])
            error, _, description = text.partition(": ")
            if not description:
                error, description = "", text
        if not error and not description.strip():
            description = "no reason given"
        if error == "" and ("<html" in description.lower() or "json" in description.lower()):
            return TokenRefused(
                f"The key file's token endpoint {self.key.token_uri} did not answer as Google's "
                "token endpoint does (not JSON): check the key file's token_uri.",
                description=description[:200],
            )
        return token_error(
            error=error,
            description=description,
            client_email=self.key.client_email,
            client_id=self.key.client_id,
            subject=subject,
            scopes=self.scopes,
            token_uri=self.key.token_uri,
        )

    def service(self, as_user: str | None = None) -> Resource:
        """This thread's `Resource` acting as `as_user` (default: the administrator)."""
        subject = (as_user or self.admin_email).strip().lower()
        services: dict[str, Resource] | None = getattr(self._local, "services", None)
        if services is None:
            services = self._local.services = {}
        found = services.get(subject)
        if found is None:
            creds = self._credentials_for(subject)
            http = google_auth_httplib2.AuthorizedHttp(
                creds, http=httplib2.Http(timeout=self.settings.timeout_s)
            )
            # What build(credentials=...) does, with our own Http so its timeout is ours.
            found = build(
                "classroom",
                "v1",
                http=http,
                static_discovery=True,
                client_options={"api_endpoint": self.api_endpoint},
            )
            services[subject] = found
        else:
            self._credentials_for(subject)  # refreshes an expired token under the lock
        return found

    def _before_send(self, service: Resource, subject: str, calls: int) -> None:
        """Wait for the quota to allow `calls`, then drop this thread's connections if they
        sat idle long enough for the server to have closed them."""
        self._wait_for_quota(subject, calls)
        used: dict[str, float] = self._local.__dict__.setdefault("used", {})
        now = time.monotonic()
        if now - used.get(subject, now) > self.settings.idle_connection_s:
            _close_connections(service)
        used[subject] = now

    def _wait_for_quota(self, subject: str, calls: int) -> None:
        while True:
            with self._quota_lock:
                limiter = self._per_user.get(subject)
                if limiter is None:
                    limiter = self._per_user[subject] = MovingMinuteLimiter(
                        self.settings.calls_per_minute_per_user,
                        60.0 + self.settings.quota_margin_s,
                    )
                now = time.monotonic()
                # Both must have room; record in both only when both do.
                user_wait = limiter.delay_for(calls, now)
                if user_wait == 0:
                    client_wait = self._per_client.delay_for(calls, now)
                    if client_wait == 0:
                        return
                    for _ in range(calls):
                        limiter._starts.pop()
                    wait = client_wait
                else:
                    wait = user_wait
            time.sleep(max(wait, 0.001))

    def _count(self, *, calls: int = 0, retries: int = 0) -> None:
        with self._quota_lock:  # threads count together
            self.calls_made += calls
            self.retries += retries

    def _observe(self, call: str, method: str, status: int | None, attempt: int) -> None:
        seen = CallAttempt(call, method, status, attempt)
        for observer in self.call_observers:
            try:
                observer(seen)
            except Exception:  # a watcher's fault must never fail a call to Classroom
                logger.warning("a call observer failed", exc_info=True)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before retry `attempt` (0 first): Retry-After when the answer had
        one, else exponential backoff with jitter (half to all of base x 2^attempt, capped)."""
        wait: float | None = None
        if retry_after:
            try:
                given = float(retry_after)
            except ValueError:
                given = math.nan  # an HTTP date, or words: not a number of seconds
            if math.isfinite(given):  # "NaN" would reach time.sleep, which refuses it
                wait = min(max(given, 0.0), self.settings.retry_after_cap_s)
        if wait is None:
            ceiling = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**attempt)
            wait = random.uniform(ceiling / 2, ceiling)
        self.waits.append(wait)
        return wait

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.settings.max_concurrency, thread_name_prefix="classroom"
                )
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> ClassroomClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- one call ----------------------------------------------------------------------------

    def execute(self, make: RequestMaker, *, as_user: str | None = None) -> Any:
        """Make one call (built by `make` from a Resource) with retries; its answer, or raise."""
        subject = (as_user or self.admin_email).strip().lower()
        attempt = 0
        while True:
            service = self.service(subject)
            request = make(service)
            call = _call_name(request)
            answered: list[int] = []
            request.add_response_callback(functools.partial(_note_status, answered))
            self._before_send(service, subject, 1)
            try:
                self._count(calls=1)
                try:
                    answer = request.execute(num_retries=0)
                finally:
                    self._observe(call, request.method, answered[-1] if answered else None, attempt)
                if not isinstance(answer, dict):
                    raise ValueError("not a JSON object")
                return answer
            except HttpError as exc:
                status = int(exc.resp.status)
                if status in RETRYABLE_STATUSES and attempt < self.settings.max_retries:
                    self._count(retries=1)
                    time.sleep(self._backoff(attempt, exc.resp.get("retry-after")))
                    attempt += 1
                    continue
                raise error_from_answer(
                    call, status, exc.content, as_user=subject, tries=attempt + 1
                ) from None
            except RefreshError as exc:
                raise self._token_refused(exc, subject) from None
            except ValueError:
                raise MalformedAnswer(
                    f"Google Classroom answered {call} with something that is not JSON: check "
                    f"the API endpoint ({self.api_endpoint}).",
                    status=200,
                ) from None
            except (httplib2.HttpLib2Error, OSError, TransportError) as exc:
                if request.method in IDEMPOTENT_METHODS and attempt < self.settings.max_retries:
                    self._count(retries=1)
                    time.sleep(self._backoff(attempt, None))
                    attempt += 1
                    continue
                raise ClassroomUnreachable(
                    f"Google Classroom at {self.api_endpoint} did not answer {call} "
                    f"({_transport_words(exc)}) after {attempt + 1} tries: check the API "
                    "endpoint and the network."
                ) from None

    def pages(
        self,
        make: Callable[[Resource, str | None], HttpRequest],
        items: str,
        *,
        as_user: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list call, page by page (`pageToken` until no `nextPageToken`)."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self.execute(functools.partial(_page_request, make, token), as_user=as_user)
            yield from page.get(items, [])
            token = page.get("nextPageToken") or None
            if not token:
                return
            if token in seen:
                raise MalformedAnswer(
                    "Google Classroom gave the same nextPageToken twice; stopped paging.",
                    status=200,
                )
            seen.add(token)

    # ---- many calls: batched and concurrent ---------------------------------------------------

    def execute_many(
        self,
        makes: Sequence[RequestMaker],
        *,
        as_user: str | None = None,
        batch: bool = True,
    ) -> list[CallOutcome]:
        """Make every call, in batches of `batch_size` (or one by one), up to
        `max_concurrency` at once; each call's outcome in order. A call answered 429 or 5xx
        is sent again (in a later batch) with backoff; other errors end that call only."""
        subject = (as_user or self.admin_email).strip().lower()
        self._credentials_for(subject)  # one token fetch, before the threads start
        outcomes = [CallOutcome() for _ in makes]
        if not makes:
            return outcomes
        if not batch:

            def one(index: int) -> None:
                try:
                    outcomes[index].result = self.execute(makes[index], as_user=subject)
                except ClassroomError as exc:
                    outcomes[index].error = exc
                outcomes[index].tries += 1

            list(self._executor().map(one, range(len(makes))))
            return outcomes
        size = self.settings.batch_size
        chunks = [list(range(i, min(i + size, len(makes)))) for i in range(0, len(makes), size)]
        list(
            self._executor().map(
                lambda chunk: self._run_batch(chunk, makes, outcomes, subject), chunks
            )
        )
        return outcomes

    def _run_batch(
        self,
        indexes: list[int],
        makes: Sequence[RequestMaker],
        outcomes: list[CallOutcome],
        subject: str,
    ) -> None:
        pending = list(indexes)
        attempt = 0
        while pending:
            service = self.service(subject)
            requests = {str(i): makes[i](service) for i in pending}
            answers: dict[str, tuple[Any, HttpError | None]] = {}

            def collect(
                request_id: str,
                response: Any,
                exception: HttpError | None,
                answers: dict[str, tuple[Any, HttpError | None]] = answers,
            ) -> None:
                answers[request_id] = (response, exception)

            batch = BatchHttpRequest(callback=collect, batch_uri=self.batch_uri)
            for request_id, request in requests.items():
                batch.add(request, request_id=request_id)
            self._before_send(service, subject, len(requests))
            retry_after: str | None = None
            try:
                self._count(calls=1)
                batch.execute()
                self._observe("batch", "POST", SUCCESS_STATUS, attempt)
            except HttpError as exc:
                status = int(exc.resp.status)
                self._observe("batch", "POST", status, attempt)
                if status in RETRYABLE_STATUSES and attempt < self.settings.max_retries:
                    self._count(retries=1)
                    time.sleep(self._backoff(attempt, exc.resp.get("retry-after")))
                    attempt += 1
                    continue
                error = error_from_answer(
                    "batch", status, exc.content, as_user=subject, tries=attempt + 1
                )
                for i in pending:
                    outcomes[i].error, outcomes[i].tries = error, attempt + 1
                return
            except (BatchError, ValueError):
                error = MalformedAnswer(
                    f"Google Classroom's batch endpoint {self.batch_uri} did not answer with "
                    "multipart/mixed: check the API endpoint.",
                    status=200,
                )
                for i in pending:
                    outcomes[i].error, outcomes[i].tries = error, attempt + 1
                return
            except RefreshError as exc:
                refused = self._token_refused(exc, subject)
                for i in pending:
                    outcomes[i].error = refused
                return
            except (httplib2.HttpLib2Error, OSError, TransportError) as exc:
                self._observe("batch", "POST", None, attempt)
                if attempt < self.settings.max_retries and all(
                    r.method in IDEMPOTENT_METHODS for r in requests.values()
                ):
                    self._count(retries=1)
                    time.sleep(self._backoff(attempt, None))
                    attempt += 1
                    continue
                unreachable = ClassroomUnreachable(
                    f"Google Classroom's batch endpoint {self.batch_uri} did not answer "
                    f"({_transport_words(exc)}) after {attempt + 1} tries: check the API "
                    "endpoint and the network."
                )
                for i in pending:
                    outcomes[i].error = unreachable
                return
            again: list[int] = []
            for i in pending:
                response, exception = answers.get(str(i), (None, None))
                outcome = outcomes[i]
                outcome.tries = attempt + 1
                self._observe(
                    _call_name(requests[str(i)]),
                    requests[str(i)].method,
                    SUCCESS_STATUS if exception is None else int(exception.resp.status),
                    attempt,
                )
                if exception is None and not isinstance(response, dict):
                    outcome.error = MalformedAnswer(
                        f"Google Classroom answered {_call_name(requests[str(i)])} in a batch "
                        f"with something that is not JSON: check the API endpoint "
                        f"({self.api_endpoint}).",
                        status=200,
                    )
                    continue
                if exception is None:
                    outcome.result, outcome.error = response, None
                    continue
                status = int(exception.resp.status)
                if status in RETRYABLE_STATUSES and attempt < self.settings.max_retries:
                    again.append(i)
                    retry_after = retry_after or exception.resp.get("retry-after")
                    continue
                outcome.error = error_from_answer(
                    _call_name(requests[str(i)]),
                    status,
                    exception.content,
                    as_user=subject,
                    tries=attempt + 1,
                )
            if again:
                self._count(retries=len(again))
                time.sleep(self._backoff(attempt, retry_after))
                attempt += 1
            pending = again


def _close_connections(service: Resource) -> None:
    """Close the Http's kept-alive connections (it opens new ones on the next call)."""
    http = getattr(getattr(service, "_http", None), "http", None)
    connections = getattr(http, "connections", None)
    if isinstance(connections, dict):
        for connection in list(connections.values()):
            connection.close()
        connections.clear()


def _note_status(into: list[int], resp: Any) -> None:
    """An `HttpRequest` response callback: keeps the answer's status (errors included)."""
    into.append(int(resp.status))


def _page_request(
    make: Callable[[Resource, str | None], HttpRequest], token: str | None, service: Resource
) -> HttpRequest:
    return make(service, token)


def _call_name(request: HttpRequest) -> str:
    method_id = getattr(request, "methodId", None) or ""
    return (
        str(method_id).removeprefix("classroom.")
        or f"{request.method} {urlparse(request.uri).path}"
    )


def _transport_words(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, httplib2.ServerNotFoundError):
        return "no such host"
    text = str(exc) or type(exc).__name__
    return text[:200]
