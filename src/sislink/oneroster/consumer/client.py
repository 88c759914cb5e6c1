"""`OneRosterClient`: every call sislink makes to a SIS, over one httpx.AsyncClient.

One method, `_send`, does what every call needs: auth (a cached OAuth 2 token or an OAuth 1.0a
signature, fresh for each attempt), the version's headers, the concurrency limit, the rate
limit, retries of idempotent calls with backoff and Retry-After, the consecutive-failure
breaker, and typed errors. Everything else is built on it: `iter_records`/`iter_collection`
stream collections page by page, `get` reads one object, the `put_*`/`delete_*` methods write,
and the Classroom calls have their own names (`find_teacher_by_email`, ...).

Endpoints are named as in `sislink.oneroster.versions` (`"teacher_classes"`), or given as a
path (`"teachers/42/classes"`), so the same calls work on 1.1 and 1.2.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import json
import logging
import re
import socket
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

import httpx
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from sislink.oneroster.consumer.auth import (
    OAuth1Signer,
    OAuth2TokenCache,
    Token,
    TokenRefusal,
    build_token_request,
    hide_secrets,
    read_token_refusal,
    read_token_response,
    scopes_asked,
    secrets_held,
)
from sislink.oneroster.consumer.exceptions import (
    AmbiguousMatch,
    AuthenticationFailed,
    BadRequest,
    ForeignAddress,
    InvalidData,
    MalformedResponse,
    NotFound,
    OneRosterError,
    PagingError,
    PermissionDenied,
    RateLimited,
    ResponseTooLarge,
    RunawayCollection,
    ServerError,
    SISDown,
    SISTimeout,
    SISUnreachable,
    StatusError,
    TimeBudgetSpent,
    TokenRefused,
    TokenRequestFailed,
)
from sislink.oneroster.consumer.gate import CallGate
from sislink.oneroster.consumer.paging import (
    LinkElsewhere,
    OffsetIgnored,
    Pager,
    WalkStopped,
    parse_link_header,
    with_query,
)
from sislink.oneroster.consumer.retry import (
    IDEMPOTENT_METHODS,
    FailureBreaker,
    RateLimiter,
    backoff_delay,
    retry_after_delay,
)
from sislink.oneroster.consumer.settings import ConnectionSettings, OAuth1Settings, OAuth2Settings
from sislink.oneroster.consumer.transport import asyncio_transport, environment_proxy_for
from sislink.oneroster.errors import INVALID_DATA, UNKNOWN_OBJECT, ImsxStatus, read_status
from sislink.oneroster.filters import Filter, where
from sislink.oneroster.models import (
    AcademicSession,
    Base,
    Category,
    Class,
    LineItem,
    Result,
    User,
)
from sislink.oneroster.versions import Endpoint, Service, Version, json_may_hold_nul

logger = logging.getLogger("sislink.oneroster.consumer")

M = TypeVar("M", bound=Base)
USER_AGENT = "sislink-oneroster-consumer"


@dataclass(frozen=True)
class Page:
    """One page of a collection as the SIS sent it."""

    records: list[dict[str, Any]]
    total_count: int | None
    links: dict[str, str]


@dataclass(frozen=True)
class ModelPage:
    """One page of a collection read as models (`iter_model_pages`): its valid records as
    models and, in the order they came, those that are not valid OneRoster, each with the
    ValidationError that says why."""

    models: list[Base]
    rejected: list[tuple[dict[str, Any], ValidationError]]


@dataclass(frozen=True)
class _PageRead:
    """One page as `_walk` hands it on: `models` when the whole page validated in one pass,
    else None and `records`, the records as the SIS sent them."""

    response: httpx.Response
    records: list[dict[str, Any]]
    models: list[Base] | None
    # Whether a record of the page may hold a NUL character (`json_may_hold_nul`), which
    # `from_wire` then looks for.
    nul_possible: bool = True

    def ids(self) -> list[str]:
        """The page's sourcedIds, as the Pager compares pages (a valid model's sourced_id is
        the very string the SIS sent)."""
        if self.models is not None:
            return [model.sourced_id for model in self.models]
        return [str(r.get("sourcedId")) for r in self.records]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector kept off a page's models, while they are made and
    after. A page of 1,000 enrolments is ~9,000 new objects the collector tracks (each model,
    its __dict__ and fields-set), that all stay alive a batch at a time and hold no cycle: run
    as usual, the collector walked each of them in a young collection, again in the next,
    and their number, counted as long-lived, set off full collections of the whole heap
    (measured: a fifth of the CPU of reading the district's pages as models).

    So: (1) before the page, a collection of the young generations (0 and 1): the garbage
    among the objects others made since the last page is freed, the rest moves to the oldest
    generation and is counted there as usual; (2) the collector off while the page is
    validated (pydantic-core holds the GIL: the young generation then holds the page's
    objects and hardly anything else); (3) after it, `gc.freeze()` at once followed by
    `gc.unfreeze()`: the young objects go straight to the oldest generation, not walked and
    not counted as long-lived. They are still walked by the next full collection (set off by
    others' objects) and freed as usual, by reference counting, when the batch that holds
    them is dropped.

    Why this is safe, process-wide: nothing is left frozen (unfreeze follows freeze in the
    same call), so no garbage escapes the collector for good. What changes for others' objects
    is only when they reach the oldest generation: an object alive at (1) gets there at once
    instead of after two young collections, so a cycle that dies later waits for a full
    collection. The one such cycle the client made itself, each answer with its body, is gone
    (`_exchange`): measured, peak RSS of reading the district's pages went down, not up.
    Where something else in the process froze objects on purpose (gc.get_freeze_count() is not
    0, e.g. a server that froze its imports before forking), (3) would unfreeze them: then
    only (2) is done, as before. If the collector was off to begin with, nothing is
    done at all. It never ends disabled if it was enabled before, nor leaves anything frozen,
    even when an exception comes from outside between two of its steps (KeyboardInterrupt
    from a signal, right after `gc.disable()` or `gc.freeze()`): each step that must be undone
    is undone in a `finally` that begins before it."""
    if not gc.isenabled():
        yield
        return
    promote = gc.get_freeze_count() == 0
    if promote:
        gc.collect(1)
    try:
        gc.disable()
        yield
    finally:
        try:
            if promote and gc.get_freeze_count() == 0:
                try:
                    gc.freeze()
                finally:
                    gc.unfreeze()
        finally:
            gc.enable()


@functools.cache
def _page_adapter(collection_key: str, model: type[Base]) -> type[_ModelsOfPage]:
    """Validates a whole page, `{collection_key: [records]}` (other keys ignored), from its
    JSON bytes in one call: no dicts built for the records, nor for the fields the model
    ignores. Made once per collection key and model."""
    records: Any = cast(Any, list)[model]
    return create_model(
        f"{model.__name__}Page",
        __base__=_ModelsOfPage,
        records=(records, Field(alias=collection_key)),
    )


class _ModelsOfPage(BaseModel):
    """A page validated in one pass (`_page_adapter` makes one per collection)."""

    model_config = ConfigDict(extra="ignore")
    records: list[Base]


@dataclass(frozen=True)
class PutOutcome(Generic[M]):
    """What the SIS answered to a PUT: its status and the object as it kept it (None when it
    answered without a body).

    The status cannot say whether the PUT created or updated: 1EdTech's 1.2 OpenAPI answers
    201 to both, and a PUT retried after a dropped answer may see 200 for what its first
    attempt created. Only `check-sis` reads it (it checks what this SIS answers); the export's
    ledger decides created or updated from its own earlier entry.
    """

    status_code: int
    kept: M | None


class OneRosterClient:
    """A connection to one SIS. Use as `async with OneRosterClient(settings) as sis: ...`.

    Safe to share between many concurrent tasks: `asyncio.gather` thousands of PUTs and the
    client keeps at most `settings.max_concurrency` in flight.
    """

    def __init__(self, settings: ConnectionSettings, *, gate: CallGate | None = None) -> None:
        self.settings = settings
        # Shared with other clients of the same SIS (other workers): consumer/gate.py.
        self.gate = gate
        self.spec = settings.spec
        self._http: httpx.AsyncClient | None = None
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        self._rate = (
            RateLimiter(settings.requests_per_second) if settings.requests_per_second else None
        )
        self._breaker = FailureBreaker(
            settings.failure_threshold, cooldown_s=settings.failure_cooldown_s
        )
        self._tokens: OAuth2TokenCache | None = None
        self._signer: OAuth1Signer | None = None
        if isinstance(settings.auth, OAuth2Settings):
            self._tokens = OAuth2TokenCache(self._fetch_token)
        else:
            self._signer = OAuth1Signer(settings.auth)
        self._secrets = secrets_held(
            settings.auth, (settings.extra_headers, settings.gradebook_headers)
        )
        self._patterns = [
            (_path_pattern(endpoint), endpoint) for endpoint in self.spec.endpoints.values()
        ]
        self.calls_made = 0  # attempts sent, retries included (for tests and benchmarks)
        # Told of every attempt (metrics, in sync/): the consumer imports nothing of theirs.
        self.call_observers: list[Callable[[CallAttempt], None]] = []
        # Every request goes to one of the SIS's own origins (those the administrator gave,
        # checked by `connect`): a next link or anything else cannot take the token elsewhere.
        self._origins = frozenset(_origin_of(httpx.URL(url)) for url in _sis_urls(settings))
        self._budget_ends: float | None = None

    def __repr__(self) -> str:
        return (
            f"OneRosterClient(version={self.spec.version.value!r}, root={self.settings.root_url!r})"
        )

    async def __aenter__(self) -> Self:
        s = self.settings
        if s.job_time_budget_s is not None:
            self._budget_ends = time.monotonic() + s.job_time_budget_s
        limits = httpx.Limits(
            max_connections=s.max_concurrency, max_keepalive_connections=s.max_concurrency
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=s.connect_timeout_s,
                read=s.read_timeout_s,
                write=s.read_timeout_s,
                pool=None,  # the semaphore already bounds waiting for a connection
            ),
            limits=limits,
            # httpx's own transport where an environment proxy applies (see transport.py).
            transport=None if environment_proxy_for(s.root_url) else asyncio_transport(limits),
            # Only the encodings `_exchange` inflates itself, whatever decoders httpx has.
            headers={
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": USER_AGENT,
            },
            follow_redirects=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def tokens_fetched(self) -> int:
        """How many OAuth 2 tokens this client has asked for (0 with OAuth 1.0a)."""
        return self._tokens.tokens_fetched if self._tokens else 0

    # ---- the Classroom calls, by name ------------------------------------------------------

    async def find_teacher_by_email(self, email: str) -> User | None:
        """The teacher with this email (compared case-insensitively), None if there is none,
        even when the SIS ignores the filter and answers with other teachers. AmbiguousMatch if
        several."""
        found = [
            cast(User, teacher)
            async for teacher in self.iter_collection("teachers", filter=where("email", "=", email))
        ]
        wanted = email.casefold()
        exact = [t for t in found if (t.email or "").casefold() == wanted]
        if found and not exact:
            # The SIS answered the filter with teachers who do not have this email: it ignores
            # `filter` (or matched another field). None of them is the teacher asked for.
            logger.warning(
                "The SIS answered the email filter with %d teachers, none with that email: "
                "it may ignore `filter`",
                len(found),
            )
        if len(exact) > 1:
            ids = ", ".join(t.sourced_id for t in exact[:5])
            raise AmbiguousMatch(
                f"The SIS has {len(exact)} teachers with email {email} ({ids}): "
                "fix the duplicates in the SIS, then try again"
            )
        return exact[0] if exact else None

    async def classes_for_teacher(self, teacher_id: str, active_only: bool = True) -> list[Class]:
        flt = where("status", "=", "active") if active_only else None
        return await self._list(Class, "teacher_classes", filter=flt, teacher_id=teacher_id)

    async def students_for_class(self, class_id: str) -> list[User]:
        return await self._list(User, "class_students", class_id=class_id)

    async def categories_for_class(self, class_id: str) -> list[Category]:
        """The class's categories (1.2); 1.1 has no such endpoint, so all active categories."""
        if self.spec.has("class_categories"):
            return await self._list(Category, "class_categories", class_id=class_id)
        return await self._list(Category, "categories", filter=where("status", "=", "active"))

    async def grading_periods_for_term(self, term_id: str) -> list[AcademicSession]:
        return await self._list(AcademicSession, "term_grading_periods", term_id=term_id)

    async def line_items_for_class(self, class_id: str) -> list[LineItem]:
        return await self._list(LineItem, "class_line_items", class_id=class_id)

    async def results_for_line_item(self, class_id: str, line_item_id: str) -> list[Result]:
        return await self._list(
            Result, "class_line_item_results", class_id=class_id, line_item_id=line_item_id
        )

    async def _list(
        self, model: type[M], endpoint: str, *, filter: Filter | None = None, **ids: str
    ) -> list[M]:
        ids_: Any = ids  # every keyword here is an id, not a paging option
        return [
            cast(M, item) async for item in self.iter_collection(endpoint, filter=filter, **ids_)
        ]

    # ---- writes ----------------------------------------------------------------------------

    def body_for(self, obj: Base) -> dict[str, Any]:
        """The PUT body for `obj` in this version: wrapped, GUIDRefs complete with href and type."""
        kind = _kind_name(obj)
        return {
            self.spec.endpoints[kind].kind.single_key: self.spec.to_wire(
                obj, self.settings.root_url
            )
        }

    async def put_line_item(self, line_item: LineItem) -> PutOutcome[LineItem]:
        return await self._put(LineItem, "line_item", line_item)

    async def put_result(self, result: Result) -> PutOutcome[Result]:
        return await self._put(Result, "result", result)

    async def put_category(self, category: Category) -> PutOutcome[Category]:
        return await self._put(Category, "category", category)

    async def delete_line_item(self, line_item_id: str) -> bool:
        """Deletes a lineItem; False when the SIS did not know it (already gone)."""
        return await self._delete("line_item", line_item_id)

    async def delete_result(self, result_id: str) -> bool:
        """Deletes a result; False when the SIS did not know it (already gone)."""
        return await self._delete("result", result_id)

    async def _put(self, model: type[M], endpoint_name: str, obj: M) -> PutOutcome[M]:
        endpoint = self.spec.endpoint(endpoint_name)
        url = self._url(endpoint, {"id": obj.sourced_id})
        content = json.dumps(self.body_for(obj), separators=(",", ":")).encode()
        response = await self._send("PUT", url, endpoint=endpoint, content=content)
        if response.headers.get("content-type", "").lower().startswith("text/html"):
            # A web page is what a gateway or proxy in front of a SIS answers when it stops a
            # request (some with 200): not taken as the SIS's word that it stored the object.
            # A PUT is idempotent, so the next export sending it again costs nothing; taking
            # it as stored would leave a mark out of the SIS for good.
            raise MalformedResponse(
                f"PUT {response.request.url.path} answered {response.status_code} with a web "
                "page, not the SIS's answer: a proxy or gateway in front of the SIS may have "
                "stopped it. It is not counted as sent; the next export sends it again.",
                method="PUT",
                path=response.request.url.path,
            )
        kept = None
        if response.content.strip():
            # The SIS answered 2xx: it has the object. 1EdTech's 1.2 OpenAPI gives the answer
            # no body, so one that is not JSON, or not the object in OneRoster's shape (a plain
            # "Created", a partial echo), says nothing against that: kept is None.
            try:
                data = self._json(response)
                if isinstance(data, dict) and isinstance(data.get(endpoint.kind.single_key), dict):
                    kept = cast(M, self._model(endpoint, data[endpoint.kind.single_key], response))
            except MalformedResponse as odd:
                logger.debug(
                    "PUT %s answered %d; its body is not read: %s",
                    response.request.url.path,
                    response.status_code,
                    odd,
                )
        return PutOutcome(response.status_code, kept)

    async def _delete(self, endpoint_name: str, sourced_id: str) -> bool:
        endpoint = self.spec.endpoint(endpoint_name)
        try:
            await self._send("DELETE", self._url(endpoint, {"id": sourced_id}), endpoint=endpoint)
        except NotFound as exc:
            if exc.code_minor == UNKNOWN_OBJECT:
                return False
            raise
        return True

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, endpoint: str, **ids: str) -> Base:
        """One object: `get("class", id="c1")`, or `get("classes/c1")`."""
        row, url = self._resolve(endpoint, ids)
        if row.collection:
            raise ValueError(f"{endpoint!r} is a collection: use iter_collection")
        response = await self._send("GET", url, endpoint=row)
        data = self._json(response)
        key = row.kind.single_key
        record = data.get(key) if isinstance(data, dict) else None
        if not isinstance(record, dict):
            raise MalformedResponse(
                f"GET {response.request.url.path} answered without a {key!r} object",
                method="GET",
                path=response.request.url.path,
            )
        return self._model(row, record, response)

    async def page(
        self,
        endpoint: str,
        *,
        limit: int,
        offset: int = 0,
        filter: Filter | str | None = None,
        **ids: str,
    ) -> Page:
        """Exactly one page of a collection (e.g. `teachers?limit=1`, to see that it answers)."""
        row, url = self._resolve(endpoint, ids)
        params = {"limit": str(limit), "offset": str(offset)}
        if filter is not None:
            params["filter"] = filter.render() if isinstance(filter, Filter) else filter
        response = await self._send("GET", with_query(url, params), endpoint=row)
        total = response.headers.get("x-total-count")
        return Page(
            self._records(row, response),
            int(total) if total and total.strip().isdigit() else None,
            parse_link_header(response.headers.get("link")),
        )

    async def authenticate(self) -> str | None:
        """Asks for an OAuth 2 token now (it is cached for the calls that follow) and returns
        the scopes the SIS says it granted (None when it does not say, or with OAuth 1.0a)."""
        if self._tokens is None:
            return None
        return (await self._tokens.token()).scope

    async def iter_collection(
        self,
        endpoint: str,
        *,
        filter: Filter | str | None = None,
        sort: str | None = None,
        order_by: str | None = None,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
        **ids: str,
    ) -> AsyncIterator[Base]:
        """Every object of a collection, as models, across pages (streamed: one page at a time).

        `endpoint` is a name from the version tables (`"teacher_classes"`, with
        `teacher_id=...`) or a path (`"teachers/42/classes"`). With `fields`, ask for at
        least the model's required fields, or use `iter_records` for partial records.
        A record that is not valid OneRoster raises MalformedResponse when its turn comes.

        Each record is validated as it is consumed, not a page at a time: a caller that lets
        each model go holds one at a time (`iter_model_pages` validates a page in one pass,
        for callers that hold a page's models anyway).
        """
        row, _ = self._resolve(endpoint, ids)
        async for page in self._walk(
            endpoint,
            ids,
            filter=filter,
            sort=sort,
            order_by=order_by,
            fields=fields,
            page_size=page_size,
            as_models=False,
        ):
            for record in page.records:
                yield self._model(row, record, page.response, nul_possible=page.nul_possible)

    async def iter_model_pages(
        self,
        endpoint: str,
        *,
        filter: Filter | str | None = None,
        sort: str | None = None,
        order_by: str | None = None,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
        **ids: str,
    ) -> AsyncIterator[ModelPage]:
        """A collection page by page, each page's records as models, and the records that are
        not valid OneRoster set aside with pydantic's ValidationError (the same one
        `spec.from_wire` raises for that record) instead of stopping the walk.

        A page whose every record is valid is decoded and validated in one pass from the bytes
        the SIS sent (the cheap way); only a page holding a bad record is read record by record.
        An empty page (the end) is not handed on. A page that is not a list of records stops
        the walk with MalformedResponse, as in `iter_records`.
        """
        row, _ = self._resolve(endpoint, ids)
        async for page in self._walk(
            endpoint,
            ids,
            filter=filter,
            sort=sort,
            order_by=order_by,
            fields=fields,
            page_size=page_size,
            as_models=True,
        ):
            if page.models is not None:
                if page.models:
                    yield ModelPage(page.models, [])
                continue
            models: list[Base] = []
            rejected: list[tuple[dict[str, Any], ValidationError]] = []
            for record in page.records:
                try:
                    models.append(
                        self.spec.from_wire(row.entity, record, nul_possible=page.nul_possible)
                    )
                except ValidationError as exc:
                    rejected.append((record, exc))
            if models or rejected:
                yield ModelPage(models, rejected)

    async def iter_records(
        self,
        endpoint: str,
        *,
        filter: Filter | str | None = None,
        sort: str | None = None,
        order_by: str | None = None,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
        **ids: str,
    ) -> AsyncIterator[dict[str, Any]]:
        """Like `iter_collection`, but the records as the SIS sent them (plain dicts)."""
        async for page in self._walk(
            endpoint,
            ids,
            filter=filter,
            sort=sort,
            order_by=order_by,
            fields=fields,
            page_size=page_size,
            as_models=False,
        ):
            for record in page.records:
                yield record

    async def _walk(
        self,
        endpoint: str,
        ids: dict[str, str],
        *,
        filter: Filter | str | None,
        sort: str | None,
        order_by: str | None,
        fields: Sequence[str] | None,
        page_size: int | None,
        as_models: bool,
    ) -> AsyncIterator[_PageRead]:
        """The pages of a collection, each checked by the Pager before it is handed on (and
        the next one asked for meanwhile). `as_models`: validate a page into models in one
        pass when every record of it is valid (`_PageRead.models`), else raw records."""
        row, url = self._resolve(endpoint, ids)
        if not row.collection:
            raise ValueError(f"{endpoint!r} is a single object: use get")
        params: dict[str, str] = {}
        if filter is not None:
            params["filter"] = filter.render() if isinstance(filter, Filter) else filter
        if sort:
            params["sort"] = sort
        if order_by:
            params["orderBy"] = order_by
        if fields:
            params["fields"] = ",".join(fields)
        s = self.settings
        pager = Pager(
            with_query(url, params),
            page_size or s.page_size,
            max_records=s.max_records_per_collection,
            max_pages=s.max_pages_per_collection,
            link_prefixes=(s.root_url, *s.service_urls.values()),
        )
        walk_ends = time.monotonic() + s.collection_time_budget_s
        page_url = pager.first_page_url()
        page_of_models = self._page_adapter(row) if as_models else None
        response = await self._send("GET", page_url, endpoint=row)
        prefetch: asyncio.Task[httpx.Response] | None = None
        try:
            while True:
                page = self._read_page(row, response, page_of_models)
                try:
                    next_url = pager.next_page_url(
                        page_url,
                        page.ids(),
                        link_header=response.headers.get("link"),
                        total_count=response.headers.get("x-total-count"),
                    )
                    if next_url is not None and time.monotonic() > walk_ends:
                        raise WalkStopped(
                            f"{pager.pages_read:,} pages ({pager.records_read:,} records) took "
                            f"longer than its time budget of {s.collection_time_budget_s:g} s",
                            bound="time",
                        )
                except WalkStopped as exc:
                    raise self._runaway(row, url, exc) from None
                except LinkElsewhere as exc:
                    raise ForeignAddress(
                        f"sislink refused to follow the next link of the SIS's {_name(row)} "
                        f"collection: it points to {_shown(exc.link)}, which is not under the "
                        f"SIS's address ({s.root_url}), and sislink sends its credentials only "
                        "there; ask the SIS vendor to fix its paging links, then try again.",
                        method="GET",
                        path=response.request.url.path,
                    ) from None
                except OffsetIgnored as exc:
                    raise PagingError(
                        f"The SIS returned the same records again while paging {row.path} "
                        f"({exc}): it ignores `offset`, so sislink stopped instead of looping. "
                        "Ask the SIS vendor to support limit/offset paging.",
                        method="GET",
                        path=response.request.url.path,
                    ) from None
                if next_url is not None:
                    # Ask for the next page while this one is being consumed.
                    prefetch = asyncio.create_task(self._send("GET", next_url, endpoint=row))
                yield page
                if next_url is None or prefetch is None:
                    return
                response = await prefetch
                prefetch = None
                page_url = next_url
        finally:
            if prefetch is not None:
                prefetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, OneRosterError):
                    await prefetch

    def _page_adapter(self, row: Endpoint) -> type[_ModelsOfPage] | None:
        """The one-pass validator of this collection's pages, None where a record must first
        be converted from its version's shape (`VersionSpec.from_wire`: a 1.1 user's role and
        orgs become 1.2 roles), which only the record-by-record way does."""
        if self.spec.version is Version.V1_1 and row.entity == "user":
            return None
        return _page_adapter(row.kind.collection_key, row.kind.model)

    def _read_page(
        self,
        row: Endpoint,
        response: httpx.Response,
        page_of_models: type[_ModelsOfPage] | None,
    ) -> _PageRead:
        """One page: its records validated in one pass from the body's bytes when that works,
        else decoded to raw records exactly as before (MalformedResponse when the page holds
        no list of records), each record then read by itself."""
        # A page that may hold a NUL character (escaped in JSON, as it must be) is read record
        # by record, where `from_wire` refuses such a record alone; looking costs a byte search
        # (and saves `from_wire` looking in each record of a page that holds none).
        nul_possible = json_may_hold_nul(response.content)
        if page_of_models is not None and not nul_possible:
            try:
                with _collector_paused():
                    validated = page_of_models.model_validate_json(response.content)
            except ValueError:
                # ValidationError or bytes it does not take: a bad record, a page shaped
                # otherwise (no such key, or a record that is not an object), a body only
                # Python's json reads (a BOM, UTF-16). The record-by-record way decides.
                pass
            else:
                return _PageRead(response, [], validated.records)
        return _PageRead(response, self._records(row, response), None, nul_possible)

    def _runaway(self, row: Endpoint, url: str, exc: WalkStopped) -> RunawayCollection:
        advice = {
            "seen": "the SIS is sending its pages in a loop; ask the SIS vendor to fix its "
            "paging (Link next, or limit and offset), then try again",
            "total": "the SIS keeps sending records it did not count; ask the SIS vendor to fix "
            "its paging, then try again",
            "records": "if the district really has more, raise SISLINK_SIS_MAX_RECORDS "
            "(max_records_per_collection); otherwise the SIS keeps inventing records: ask the "
            "SIS vendor",
            "pages": "if the district really has more, raise SISLINK_SIS_MAX_PAGES "
            "(max_pages_per_collection) or the SIS's page size; otherwise ask the SIS vendor "
            "to fix its paging",
            "time": "if the SIS is only slow, raise SISLINK_SIS_COLLECTION_BUDGET_S "
            "(collection_time_budget_s); otherwise ask the SIS vendor why its pages never end",
        }[exc.bound]
        return RunawayCollection(
            f"sislink stopped reading the SIS's {_name(row)} collection ({_shown(url)}): "
            f"{exc}; {advice}.",
            method="GET",
            path=httpx.URL(url).path,
        )

    def _records(self, row: Endpoint, response: httpx.Response) -> list[dict[str, Any]]:
        data = self._json(response)
        key = row.kind.collection_key
        records = data.get(key) if isinstance(data, dict) else None
        if records is None and isinstance(data, dict):
            lists = [value for value in data.values() if isinstance(value, list)]
            records = lists[0] if len(lists) == 1 else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MalformedResponse(
                f"GET {response.request.url.path} answered without a {key!r} list",
                method="GET",
                path=response.request.url.path,
            )
        return cast(list[dict[str, Any]], records)

    def _model(
        self,
        row: Endpoint,
        record: dict[str, Any],
        response: httpx.Response,
        *,
        nul_possible: bool = True,
    ) -> Base:
        try:
            return self.spec.from_wire(row.entity, record, nul_possible=nul_possible)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:3]
            )
            raise MalformedResponse(
                f"The SIS sent a {row.entity} that is not valid OneRoster "
                f"{self.spec.version.value} (sourcedId {record.get('sourcedId')!r}): {problems}",
                method=response.request.method,
                path=response.request.url.path,
            ) from None

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            # pydantic's JSON parser (jiter) reads a page in about three quarters of
            # json.loads's CPU, the keys that repeat in every record made once.
            return pydantic_core.from_json(response.content, cache_strings="keys")
        except ValueError:
            pass  # what it refuses (a BOM, UTF-16, a lone surrogate) json.loads may read
        try:
            return response.json()
        except ValueError:
            raise MalformedResponse(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code} with a body that is not JSON: is the base URL the "
                "OneRoster root?",
                method=response.request.method,
                path=response.request.url.path,
            ) from None

    # ---- URLs ------------------------------------------------------------------------------

    def _url(self, row: Endpoint, ids: dict[str, str]) -> str:
        missing = [p for p in row.placeholders if p not in ids]
        if missing:
            raise ValueError(f"endpoint {row.name!r} needs {', '.join(missing)}")
        return f"{self.settings.service_url(row.service)}/{row.format(**ids)}"

    def _resolve(self, endpoint: str, ids: dict[str, str]) -> tuple[Endpoint, str]:
        """An endpoint name or a path -> the table row and the full URL."""
        if endpoint in self.spec.endpoints:
            row = self.spec.endpoints[endpoint]
            return row, self._url(row, ids)
        path = endpoint.strip("/")
        for root in set(self.spec.service_roots.values()):
            if path.startswith(root + "/"):
                path = path[len(root) + 1 :]
        for pattern, row in self._patterns:
            if pattern.fullmatch(path):
                return row, f"{self.settings.service_url(row.service)}/{path}"
        raise ValueError(
            f"{endpoint!r} is neither an endpoint name nor a OneRoster "
            f"{self.spec.version.value} path (e.g. 'teachers' or 'classes/{{id}}/students')"
        )

    # ---- one call, with everything every call needs ----------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        *,
        endpoint: Endpoint | None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Sends one OneRoster call (retried when idempotent) and returns its 2xx response."""
        headers: dict[str, str] = dict(self.settings.extra_headers)
        if endpoint is not None and endpoint.service is Service.GRADEBOOK:
            headers.update(self.settings.gradebook_headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        refreshed = False
        attempt = 0
        call = _Call(
            _what(method, endpoint),
            self.settings.call_deadline_s,
            endpoint=endpoint.path if endpoint is not None else "other",
        )
        while True:
            request = self._client.build_request(method, url, headers=headers, content=content)
            token: Token | None = None
            if self._tokens is not None:
                token = await self._tokens.authorise(request)
            elif self._signer is not None:
                self._signer.sign(request)  # per attempt: a retried nonce would be refused
            response = await self._attempt(
                request, retryable=method in IDEMPOTENT_METHODS, attempt=attempt, call=call
            )
            if response is None:
                attempt += 1
                continue
            if response.status_code == 401 and token is not None and not refreshed:
                # The token expired or was revoked under us: renew once (for every caller at
                # once) and repeat this call, which does not count as a retry.
                refreshed = True
                logger.info(
                    "%s %s answered 401: renewing the OAuth 2 token", method, request.url.path
                )
                await self._tokens.refresh_after(token)  # type: ignore[union-attr]
                continue
            if response.is_success:
                return response
            if (
                response.status_code in self.settings.retry_statuses
                and method in IDEMPOTENT_METHODS
            ):
                delay = self._retry_delay(response, attempt, call)
                if delay is not None:
                    logger.info(
                        "%s %s answered %s; retry %d/%d in %.2fs",
                        method,
                        request.url.path,
                        response.status_code,
                        attempt + 1,
                        self.settings.max_retries,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    call.spent += delay
                    attempt += 1
                    continue
            raise self.error_for(response, endpoint, refreshed=refreshed)

    @property
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("use the client inside `async with OneRosterClient(settings)`")
        return self._http

    def _retry_delay(self, response: httpx.Response, attempt: int, call: _Call) -> float | None:
        """Seconds to wait before retrying this answer, None when we must give up (out of
        retries, a Retry-After too long, or a wait that would end past the call's deadline)."""
        if attempt >= self.settings.max_retries:
            return None
        asked = retry_after_delay(response.headers.get("retry-after"))
        if asked is not None:
            delay = asked if asked <= self.settings.max_retry_after_s else None
        else:
            delay = backoff_delay(
                attempt, base_s=self.settings.backoff_base_s, cap_s=self.settings.backoff_max_s
            )
        if delay is not None and call.spent + delay >= call.deadline_s:
            return None
        return delay

    def _time_left(self, request: httpx.Request, call: _Call) -> tuple[float, str]:
        """How long this attempt may take, and the setting that says so; TimeBudgetSpent or
        SISTimeout when the job's budget or the call's deadline is already spent."""
        s = self.settings
        now = time.monotonic()
        limit, setting = s.request_deadline_s, "request_deadline_s"
        if call.deadline_s - call.spent < limit:
            limit, setting = call.deadline_s - call.spent, "call_deadline_s"
        if self._budget_ends is not None and self._budget_ends - now < limit:
            limit, setting = self._budget_ends - now, "job_time_budget_s"
        if limit <= 0:
            raise self._deadline_error(request, call, setting)
        return limit, setting

    async def _exchange(
        self, request: httpx.Request, limit: float, max_bytes: int, call: _Call
    ) -> httpx.Response:
        """Sends `request` and reads its whole answer within `limit` seconds, headers and body
        together (a body dribbled a byte at a time ends too), reading no more than `max_bytes`
        of it once inflated. sislink inflates the body itself, `max_bytes + 1` at most per
        step, so a compressed bomb never grows in memory past the cap (httpx inflates a whole
        network chunk at once: one 64 KiB chunk of gzip becomes ~64 MB before it is counted)."""
        async with asyncio.timeout(limit):
            response = await self._client.send(request, stream=True)
            try:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise self._too_large(
                        request, call, max_bytes, f"announced {int(declared):,} bytes, more"
                    )
                inflater = self._inflater_for(request, response, call)
                chunks: list[bytes] = []
                size = 0
                async for raw in response.aiter_raw():
                    if inflater is None:
                        pieces = [raw]
                    else:
                        pieces = _inflate(inflater, raw, max_bytes - size + 1)
                    for piece in pieces:
                        size += len(piece)
                        if size > max_bytes:
                            raise self._too_large(request, call, max_bytes, "sent more")
                        chunks.append(piece)
                if inflater is not None:
                    tail = inflater.flush()
                    size += len(tail)
                    if size > max_bytes:
                        raise self._too_large(request, call, max_bytes, "sent more")
                    chunks.append(tail)
                # What `Response.aread` sets (httpx is pinned in requirements.lock).
                response._content = b"".join(chunks)
            finally:
                await response.aclose()
        # The streamed response and its stream (httpx's BoundAsyncStream) point at each other:
        # a cycle that only the garbage collector frees, the whole body with it. Read and
        # closed, the stream is replaced by the body itself: the response, and its body, are
        # freed as soon as they are let go (the collector may not come by for a while:
        # `_collector_paused`).
        response.stream = httpx.ByteStream(response._content)
        return response

    def _inflater_for(
        self, request: httpx.Request, response: httpx.Response, call: _Call
    ) -> _Inflater | None:
        """The decompressor for this answer's one Content-Encoding (None for none or
        identity); anything else (a stack such as `gzip, gzip`, br, zstd) is refused before a
        byte of the body is read: sislink asks only for gzip or deflate."""
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return None

        def corrupt() -> MalformedResponse:
            return MalformedResponse(
                f"The SIS answered {call.what} from {_shown(str(request.url))} with a body "
                f"that does not inflate as its Content-Encoding ({encoding}) says; the answer "
                "was damaged on the way or the SIS is wrong: try again later, or ask the SIS "
                "vendor.",
                method=request.method,
                path=request.url.path,
            )

        if encoding in ("gzip", "x-gzip"):
            return _Inflater(zlib.MAX_WBITS | 16, corrupt)
        if encoding == "deflate":
            return _Inflater(zlib.MAX_WBITS, corrupt, raw_fallback=True)
        raise MalformedResponse(
            f"The SIS answered {call.what} from {_shown(str(request.url))} with the "
            f"Content-Encoding {_quoted_header(encoding)}, which sislink does not read (it asks "
            "for one layer of gzip or deflate, or none); sislink stopped before reading the "
            "body. Check the SIS or any proxy in front of it.",
            method=request.method,
            path=request.url.path,
        )

    def _too_large(
        self, request: httpx.Request, call: _Call, max_bytes: int, sent: str
    ) -> ResponseTooLarge:
        token = call.what == TOKEN
        setting = (
            "SISLINK_SIS_MAX_TOKEN_RESPONSE_BYTES (max_token_response_bytes)"
            if token
            else "SISLINK_SIS_MAX_RESPONSE_BYTES (max_response_bytes)"
        )
        advice = (
            "check the token URL"
            if token
            else f"if its pages are really that large, lower the page size or raise {setting}"
        )
        return ResponseTooLarge(
            f"The SIS {sent} than the {max_bytes:,} bytes sislink reads for {call.what} "
            f"from {_shown(str(request.url))}, so sislink stopped reading it ({setting}); "
            f"{advice}.",
            method=request.method,
            path=request.url.path,
        )

    def _deadline_error(self, request: httpx.Request, call: _Call, setting: str) -> SISTimeout:
        s = self.settings
        where = _shown(str(request.url))
        common: dict[str, Any] = {"method": request.method, "path": request.url.path}
        if setting == "job_time_budget_s":
            assert s.job_time_budget_s is not None
            return TimeBudgetSpent(
                f"This job has spent its time budget of {s.job_time_budget_s:g} s talking to "
                f"the SIS (SISLINK_SIS_JOB_BUDGET_S, job_time_budget_s) while waiting for "
                f"{call.what} from {where}; sislink stopped. If the SIS is only slow, raise it; "
                "otherwise try again later.",
                **common,
            )
        if setting == "call_deadline_s":
            return SISTimeout(
                f"The SIS took longer than {s.call_deadline_s:g} s to send {call.what} from "
                f"{where}, every attempt and retry included (SISLINK_SIS_CALL_DEADLINE_S, "
                "call_deadline_s); it may be overloaded: try again later, or raise it if the "
                "SIS is only slow.",
                **common,
            )
        return SISTimeout(
            f"The SIS took longer than {s.request_deadline_s:g} s to send {call.what} from "
            f"{where} (SISLINK_SIS_REQUEST_DEADLINE_S, request_deadline_s); it may be "
            "overloaded: try again later, or raise it if the SIS is only slow.",
            **common,
        )

    def _refuse_foreign(self, request: httpx.Request) -> None:
        if _origin_of(request.url) not in self._origins:
            raise ForeignAddress(
                f"sislink refused to send {request.method} to {_shown(str(request.url))}: it "
                f"is not the SIS's address ({self.settings.root_url}), and sislink sends its "
                "credentials only there.",
                method=request.method,
                path=request.url.path,
            )

    async def _attempt(
        self, request: httpx.Request, *, retryable: bool, attempt: int, call: _Call
    ) -> httpx.Response | None:
        """One attempt: the response, or None after a transport failure worth retrying (having
        waited the backoff). Raises when the failure is final or the SIS looks down."""
        path = request.url.path
        self._refuse_foreign(request)
        if self._breaker.is_open:
            raise self._sis_down(request, "no attempt made")
        if self._rate is not None:
            await self._rate.wait()
        failure: OneRosterError
        async with self._semaphore, self._gate_turn():
            limit, setting = self._time_left(request, call)
            max_bytes = (
                self.settings.max_token_response_bytes
                if call.what == TOKEN
                else self.settings.max_response_bytes
            )
            self.calls_made += 1
            began = time.monotonic()
            try:
                response = await self._exchange(request, limit, max_bytes, call)
            except TimeoutError:
                failure = self._deadline_error(request, call, setting)
                if setting == "job_time_budget_s":
                    self._observe(request, call, None, attempt)
                    raise failure from None
            except httpx.TimeoutException as exc:
                failure = self._timeout(request, exc)
            except (httpx.UnsupportedProtocol, httpx.ProxyError):
                self._observe(request, call, None, attempt)
                raise
            except httpx.TransportError as exc:
                failure = SISUnreachable(
                    f"{request.method} {path}: could not reach the SIS at "
                    f"{request.url.scheme}://{request.url.netloc.decode()} ({_reason(exc)}). "
                    "Is the SIS running, and is the URL right?",
                    method=request.method,
                    path=path,
                )
            else:
                self._observe(request, call, response.status_code, attempt)
                if response.status_code == 429 and self.gate is not None:
                    # Every client sharing the gate waits, not only this one.
                    # No longer than this client would wait itself (max_retry_after_s): a SIS
                    # asking for a day must not stall every worker for a day.
                    asked = retry_after_delay(response.headers.get("retry-after"))
                    await self.gate.pause(
                        min(asked, self.settings.max_retry_after_s)
                        if asked is not None
                        else self.settings.backoff_base_s
                    )
                if not self.settings.keep_cookies:
                    self._client.cookies.clear()
                if response.status_code >= 500:
                    if self._breaker.record_failure():
                        raise self._sis_down(request, f"last answer {response.status_code}")
                else:
                    self._breaker.record_success()
                return response
            finally:
                call.spent += time.monotonic() - began
        self._observe(request, call, None, attempt)
        if self._breaker.record_failure():
            raise self._sis_down(request, str(failure))
        if retryable and attempt < self.settings.max_retries:
            delay = backoff_delay(
                attempt, base_s=self.settings.backoff_base_s, cap_s=self.settings.backoff_max_s
            )
            if call.spent + delay >= call.deadline_s:
                raise failure  # no time left in this call for another attempt
            logger.info(
                "%s; retry %d/%d in %.2fs", failure, attempt + 1, self.settings.max_retries, delay
            )
            await asyncio.sleep(delay)
            call.spent += delay
            return None
        raise failure

    def _gate_turn(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A turn at the shared gate, or nothing to wait for without one."""
        return self.gate.turn() if self.gate is not None else contextlib.nullcontext()

    def _observe(
        self, request: httpx.Request, call: _Call, status: int | None, attempt: int
    ) -> None:
        seen = CallAttempt(call.endpoint, request.method, status, attempt)
        for observer in self.call_observers:
            try:
                observer(seen)
            except Exception:  # a watcher's fault must never fail a call to the SIS
                logger.warning("a call observer failed", exc_info=True)

    def _timeout(self, request: httpx.Request, exc: httpx.TimeoutException) -> SISTimeout:
        s = self.settings
        if isinstance(exc, httpx.ConnectTimeout):
            what, setting, limit = "could not be reached", "connect_timeout_s", s.connect_timeout_s
        elif isinstance(exc, httpx.WriteTimeout):
            what, setting, limit = "did not take the request", "read_timeout_s", s.read_timeout_s
        else:
            what, setting, limit = "did not answer", "read_timeout_s", s.read_timeout_s
        path = request.url.path
        return SISTimeout(
            f"{request.method} {path}: the SIS at {request.url.host} {what} within {limit:g} s "
            f"({setting}); it may be overloaded, or {setting} too short for it",
            method=request.method,
            path=path,
        )

    def _sis_down(self, request: httpx.Request, last: str) -> SISDown:
        n = self._breaker.consecutive_failures
        return SISDown(
            f"The SIS at {request.url.host} looks down: {n} attempts in a row failed "
            f"({last}). sislink stopped calling it; try again later.",
            consecutive_failures=n,
        )

    # ---- OAuth 2 ---------------------------------------------------------------------------

    async def _fetch_token(self, serial: int) -> Token:
        settings = self.settings.auth
        assert isinstance(settings, OAuth2Settings)
        template = build_token_request(settings, self.settings.scope_string())
        attempt = 0
        call = _Call(TOKEN, self.settings.call_deadline_s, endpoint="token")
        while True:
            request = self._client.build_request(
                "POST", template.url, headers=template.headers, content=template.content
            )
            # A client-credentials POST creates nothing but a token: unlike other POSTs it is
            # safe to repeat, and a token endpoint that flickers must not fail a whole import.
            response = await self._attempt(request, retryable=True, attempt=attempt, call=call)
            if response is None:
                attempt += 1
                continue
            if response.status_code == 200:
                logger.debug("OAuth 2 token %d issued", serial)
                return read_token_response(response, serial=serial, now=time.monotonic())
            if response.status_code in self.settings.retry_statuses:
                delay = self._retry_delay(response, attempt, call)
                if delay is not None:
                    await asyncio.sleep(delay)
                    call.spent += delay
                    attempt += 1
                    continue
            raise _token_error(response, self.hide_secrets)

    # ---- errors ----------------------------------------------------------------------------

    def hide_secrets(self, text: str) -> str:
        """Words the SIS sent, with every secret this client holds (the client secret in each
        form it went out, header values, the current and previous token) as [hidden]: a SIS may
        echo one back (`bad client_secret ...`), and its words reach messages and the audit."""
        held = self._secrets
        if self._tokens is not None:
            tokens = (self._tokens.current, self._tokens.previous)
            held = [*held, *(t.access_token for t in tokens if t is not None)]
        return hide_secrets(text, held)

    def _wait_too_long(self, response: httpx.Response) -> float | None:
        """The Retry-After asked for, when it is longer than the client will wait."""
        asked = retry_after_delay(response.headers.get("retry-after"))
        return asked if asked is not None and asked > self.settings.max_retry_after_s else None

    def error_for(
        self, response: httpx.Response, endpoint: Endpoint | None = None, *, refreshed: bool = False
    ) -> StatusError:
        """The typed error for a 4xx/5xx answer to a OneRoster call (`refreshed`: the OAuth 2
        token had already been renewed once for this call)."""
        request = response.request
        method, path, code = request.method, request.url.path, response.status_code
        imsx = _imsx_of(response, self.hide_secrets)
        said = _what_the_sis_said(imsx)
        call = f"{method} {path} answered {code} {_reason_phrase(code)}"
        common: dict[str, Any] = {"method": method, "path": path, "status_code": code, "imsx": imsx}
        if code == 400 and imsx is not None and imsx.code_minor == INVALID_DATA:
            return InvalidData(f"{call}: the SIS refused the data sent{said}", **common)
        if code == 400:
            return BadRequest(f"{call}: the SIS did not accept the request{said}", **common)
        if code == 401:
            if isinstance(self.settings.auth, OAuth1Settings):
                why = (
                    "the OAuth 1.0a signature was refused: check the key and secret, and that "
                    "this machine's clock is right"
                )
            else:
                why = (
                    "the SIS refused the token even after renewing it"
                    if refreshed
                    else ("the SIS refused the credentials")
                )
            if endpoint is not None and endpoint.service is Service.GRADEBOOK:
                names = ", ".join(self.settings.gradebook_headers) or "none"
                why += (
                    "; some SIS (Infinite Campus) also need a vendor header on gradebook calls "
                    f"(x-vendor-authorization); gradebook headers sent: {names}"
                )
            return AuthenticationFailed(f"{call}: {why}{said}", **common)
        if code == 403:
            scope = None
            if endpoint is not None:
                scope = " or ".join(self.spec.scope_uris(endpoint.scopes_for(method)))
            need = f"the credentials lack the scope {scope}" if scope else "a scope is missing"
            return PermissionDenied(
                f"{call}: {need}; ask the SIS administrator to grant it{said}",
                missing_scope=scope,
                **common,
            )
        if code == 404:
            # A top-level collection (`teachers`) always exists on a OneRoster SIS: a 404 there
            # means the base URL is wrong, whatever minor code the server's catch-all sends.
            top_level = endpoint is not None and not endpoint.placeholders
            if imsx is not None and imsx.code_minor == UNKNOWN_OBJECT and not top_level:
                return NotFound(f"{call}: the SIS has no such object{said}", **common)
            return NotFound(
                f"{call}: there is no OneRoster endpoint at this address. Check the base URL: "
                f"it is the OneRoster root (e.g. https://sis.example.org/ims/oneroster), with "
                f"'{self.spec.service_roots[Service.ROSTERING]}/...' below it{said}",
                **common,
            )
        if code == 422:
            return InvalidData(f"{call}: the SIS refused the data sent{said}", **common)
        if code == 429:
            asked = self._wait_too_long(response)
            if asked is not None:
                why = (
                    f"the SIS asked to wait {asked:g} s (Retry-After), longer than "
                    f"max_retry_after_s ({self.settings.max_retry_after_s:g} s); try again later"
                )
            elif method not in IDEMPOTENT_METHODS:
                why = f"the SIS asked to slow down; a {method} is never retried"
            else:
                why = (
                    f"the SIS kept asking to slow down after {self.settings.max_retries} "
                    "retries; lower requests_per_second"
                )
            return RateLimited(f"{call}: {why}{said}", **common)
        if code >= 500:
            if method not in IDEMPOTENT_METHODS:
                why = (
                    f"the SIS failed; a {method} is never retried, as repeating it could apply "
                    "it twice"
                )
            elif code not in self.settings.retry_statuses:
                why = "the SIS failed (this status is not retried: see retry_statuses)"
            elif (asked := self._wait_too_long(response)) is not None:
                why = (
                    f"the SIS failed and asked to wait {asked:g} s (Retry-After), longer than "
                    f"max_retry_after_s ({self.settings.max_retry_after_s:g} s)"
                )
            else:
                why = f"the SIS failed on every attempt ({self.settings.max_retries} retries)"
            return ServerError(f"{call}: {why}{said}", **common)
        if 300 <= code < 400:
            return StatusError(
                f"{call}: the SIS redirected the call{_redirect_target(response)}; sislink "
                "follows no redirect, so that its credentials go only to the address it was "
                f"given: check the base URL, or ask the SIS vendor{said}",
                **common,
            )
        return StatusError(f"{call}{said}", **common)


TOKEN = "a token"  # noqa: S105 (words in a message, not a secret)
"""What a token request asks the SIS for (its answer is capped at max_token_response_bytes)."""


@dataclass
class _Call:
    """One call, across its attempts: what it asks the SIS for, in words, its deadline, and
    the seconds it has spent so far in attempts and in waits between them. Waiting for one of
    the client's own slots (max_concurrency, the rate limit) is not counted: 2,000 PUTs queued
    at once must not run out of time behind each other."""

    what: str
    deadline_s: float
    spent: float = 0.0
    endpoint: str = "other"  # the endpoint's path pattern, "token", or "other" (CallAttempt)


@dataclass(frozen=True)
class CallAttempt:
    """One attempt at a call, as `OneRosterClient.call_observers` are told of it: the endpoint's
    path pattern (`classes/{class_id}/students`; "token" for the token endpoint), the method,
    the HTTP status (None when no answer came: a timeout, the SIS unreachable) and the attempt's
    number (0 first, 1 and on for retries; the repeat after a 401 that renewed the token keeps
    its number)."""

    endpoint: str
    method: str
    status: int | None
    attempt: int


def _what(method: str, endpoint: Endpoint | None) -> str:
    """What a call asks the SIS for, in words: "a page of users", "the answer to a PUT of a
    result"."""
    if endpoint is None:
        return f"the answer to a {method}"
    if method != "GET":
        return f"the answer to a {method} of a {endpoint.kind.single_key}"
    if endpoint.collection:
        return f"a page of {endpoint.kind.collection_key}"
    return f"the {endpoint.kind.single_key}"


def _name(row: Endpoint) -> str:
    """A collection's name as a person reads it: `users`, `classes/{class_id}/students`."""
    return row.path


def _shown(url: str) -> str:
    """A URL as sislink shows it: scheme, host, port and path, never the query (a filter, or
    whatever a hostile SIS put there)."""
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode('ascii', 'replace')}{parts.path}"


class _Inflater:
    """One layer of gzip or deflate, inflated a bounded amount at a time. `raw_fallback`: a
    "deflate" answer is meant to be zlib-wrapped, but some servers send raw deflate (httpx
    accepts both, so sislink does too)."""

    def __init__(
        self, wbits: int, corrupt: Callable[[], Exception], *, raw_fallback: bool = False
    ) -> None:
        """`corrupt()`: the error to raise when the body does not inflate."""
        self._inflater = zlib.decompressobj(wbits)
        self._corrupt = corrupt
        self._raw_fallback = raw_fallback
        self._started = False

    def inflate(self, data: bytes, max_length: int) -> bytes:
        try:
            try:
                out = self._inflater.decompress(data, max_length)
            except zlib.error:
                if not self._raw_fallback or self._started:
                    raise
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._inflater.decompress(data, max_length)
        except zlib.error:
            raise self._corrupt() from None
        self._started = True
        return out

    @property
    def unconsumed_tail(self) -> bytes:
        return self._inflater.unconsumed_tail

    def flush(self) -> bytes:
        try:
            return self._inflater.flush(1)
        except zlib.error:
            raise self._corrupt() from None


def _inflate(inflater: _Inflater, data: bytes, room: int) -> list[bytes]:
    """`data` inflated, in pieces of at most `room` bytes each; stops as soon as the pieces
    together pass `room` (the caller then refuses the answer), so at most `room` bytes more
    than the cap are ever held."""
    pieces: list[bytes] = []
    total = 0
    while data and total <= room:
        piece = inflater.inflate(data, max(room - total, 1))
        pieces.append(piece)
        total += len(piece)
        data = inflater.unconsumed_tail
    return pieces


def _quoted_header(value: str) -> str:
    """A header value the SIS chose, shown short and printable."""
    shown = "".join(c if c.isprintable() else "?" for c in value[:60])
    return f"'{shown}'" + ("..." if len(value) > 60 else "")


def _redirect_target(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        return ""
    try:
        return f" to {_shown(str(response.request.url.join(location)))}"
    except httpx.InvalidURL:
        return ""


def _origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _sis_urls(settings: ConnectionSettings) -> list[str]:
    """Every URL the administrator gave for this SIS: the requests may go to their origins."""
    urls = [settings.root_url, *settings.service_urls.values()]
    if settings.base_url is not None:
        urls.append(settings.base_url)
    if isinstance(settings.auth, OAuth2Settings):
        urls.append(settings.auth.token_url)
    return urls


def _token_error(response: httpx.Response, hide: Callable[[str], str]) -> TokenRequestFailed:
    """`hide`: the client's `hide_secrets`, for every word of the SIS's that is kept."""
    code = response.status_code
    path = response.request.url.path
    said = read_token_refusal(response)  # strings only, printable: never a Python dict
    refusal = TokenRefusal(
        hide(said.error) if said.error else None,
        hide(said.description) if said.description else None,
    )
    error = refusal.error
    imsx = _imsx_of(response, hide)
    detail = refusal.words or _what_the_sis_said(imsx)[2:]
    detail = f" ({detail})" if detail else ""
    if code == 404:
        why = "there is no token endpoint at this address: check the token URL"
    elif error == "invalid_scope":
        asked = scopes_asked(response.request) or "none"
        why = f"it refused the scopes asked for ({asked}): ask the SIS administrator to grant them"
    elif code >= 500:
        why = "the token endpoint failed on every attempt"
    elif 300 <= code < 400:
        why = (
            f"the token endpoint redirected the request{_redirect_target(response)}; sislink "
            "follows no redirect, so that the client secret goes only to the token URL it was "
            "given: check the token URL"
        )
    elif code == 401 or error in ("invalid_client", "unauthorized_client") or error is None:
        why = "it refused the client id or secret: check both (and that the secret is current)"
    else:
        why = "it refused to issue a token"
    return TokenRefused(
        f"POST {path} (token) answered {code} {_reason_phrase(code)}: {why}{detail}",
        method="POST",
        path=path,
        status_code=code,
        imsx=imsx,
        error=refusal.error,
        error_description=refusal.description,
    )


def _imsx_of(response: httpx.Response, hide: Callable[[str], str]) -> ImsxStatus | None:
    """The imsx status the SIS sent, its description passed through `hide` (secrets)."""
    try:
        status = read_status(response.json())
    except ValueError:
        return None
    if status is None or not status.description:
        return status
    return dataclasses.replace(status, description=hide(status.description))


def _what_the_sis_said(imsx: ImsxStatus | None) -> str:
    if imsx is None:
        return ""
    parts = [p for p in (imsx.code_minor, imsx.description) if p]
    return f". The SIS said: {' - '.join(parts)}" if parts else ""


def _reason_phrase(code: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _reason(exc: httpx.TransportError) -> str:
    """Why a connection failed, in words: the root cause hides a few exceptions down."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused: nothing is listening there"
        if isinstance(cause, socket.gaierror):
            return "the host name does not resolve"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "the connection was dropped before an answer"
    return str(exc) or type(exc).__name__


def _path_pattern(endpoint: Endpoint) -> re.Pattern[str]:
    parts = [
        "[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p)
        for p in endpoint.path.split("/")
    ]
    return re.compile("/".join(parts))


def _kind_name(obj: Base) -> str:
    names = {LineItem: "line_item", Result: "result", Category: "category"}
    for model, name in names.items():
        if type(obj) is model:
            return name
    raise TypeError(f"sislink writes lineItems, results and categories, not {type(obj).__name__}")
