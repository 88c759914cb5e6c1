"""Following a OneRoster collection across pages: RFC 8288 `Link` next when the SIS gives it,
else `limit`/`offset` with `X-Total-Count`, and a guard against servers that ignore `offset`.

Pure logic, no I/O: `Pager` is told what each page held and says where the next one is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

_LINK_PART = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("([^"]*)"|[^;,\s]+)')


def parse_link_header(value: str | None) -> dict[str, str]:
    """`<url>; rel="next", <url>; rel="last"` -> {"next": url, "last": url} (rel is lowercased;
    a link with several rels, `rel="next last"`, is listed under each)."""
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK_PART.finditer(value):
        url, params = match.group(1).strip(), match.group(2)
        for param in _PARAM.finditer(params):
            if param.group(1).lower() != "rel":
                continue
            rels = param.group(3) if param.group(3) is not None else param.group(2)
            for rel in rels.lower().split():
                links.setdefault(rel, url)
    return links


def with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with these query parameters set (replacing any of the same name)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    # %20 for spaces, never '+': OAuth 1.0a servers differ in how they read a '+' in the query
    # they put in the signature base string, while %20 means a space to every one of them.
    return urlunsplit(parts._replace(query=urlencode(query, safe="", quote_via=quote)))


class OffsetIgnored(Exception):
    """Raised by `Pager` when a page repeats the previous one; the client turns it into PagingError."""


class WalkStopped(Exception):
    """Raised by `Pager` when a walk goes past one of its bounds; the client turns it into
    RunawayCollection. The message says what was seen, in words, without the collection's name
    (the client adds it) and without advice (the client knows the setting to name)."""

    def __init__(self, message: str, *, bound: str) -> None:
        super().__init__(message)
        self.bound = bound  # "seen", "records", "pages" or "total"


class LinkElsewhere(Exception):
    """Raised by `Pager` when a `Link` next points away from the SIS (another scheme, host,
    port, or outside its base path); the client turns it into ForeignAddress."""

    def __init__(self, link: str) -> None:
        super().__init__(link)
        self.link = link


TOTAL_SLACK_FRACTION = 0.1
"""Records a SIS may add while a collection is being read, as a share of the X-Total-Count it
first gave (at least one page's worth): past that, the walk is not the collection it said."""


def same_place(url: str, prefixes: Sequence[str]) -> bool:
    """True when `url` has the scheme, host and port of one of `prefixes` and a path under its
    path (`prefixes` are URLs such as `https://sis.example.org/ims/oneroster`)."""
    target = urlsplit(url)
    try:
        port = target.port
    except ValueError:
        return False
    if _disguises_a_climb(target.path):
        return False
    path = _normal_path(target.path)
    for prefix in prefixes:
        allowed = urlsplit(prefix)
        if (
            target.scheme.lower() == allowed.scheme.lower()
            and (target.hostname or "") == (allowed.hostname or "")
            and _port_or_default(port, target.scheme)
            == _port_or_default(allowed.port, allowed.scheme)
        ):
            base = _normal_path(allowed.path).rstrip("/")
            if path == base or path.startswith(base + "/"):
                return True
    return False


def _normal_path(path: str) -> str:
    """The path with dot segments resolved (`/a/b/../c` -> `/a/c`), so `..` cannot climb out."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    return "/".join(out)


def _disguises_a_climb(path: str) -> bool:
    """True when a segment is `.` or `..` only once percent-decoded (`%2e%2e`, `%252e%252e`),
    or holds an encoded or back slash (`%2f`, `%5c`, `\\`): a server that decodes before it
    resolves would climb out of the base path that `_normal_path` saw nothing wrong with."""
    if "%" not in path and "\\" not in path:
        return False  # the usual path: nothing to decode
    for segment in path.split("/"):
        decoded = segment
        for _ in range(3):  # decoded until it stops changing
            once = unquote(decoded)
            if once == decoded:
                break
            decoded = once
        else:
            return True  # encoded three times over: nothing a SIS sends for a real page
        if decoded in (".", "..") and segment not in (".", ".."):
            return True
        if "/" in decoded or "\\" in decoded:
            return True
    return False


def _port_or_default(port: int | None, scheme: str) -> int:
    if port is not None:
        return port
    return 443 if scheme.lower() == "https" else 80


def _page_key(url: str) -> str:
    """One key per page whatever the order of its query parameters."""
    parts = urlsplit(url)
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), _normal_path(parts.path), urlencode(query), "")
    )


@dataclass
class Pager:
    """Where the next page of one collection is, and whether the walk is still believable.

    `first_url` is the collection URL with every parameter except `limit` and `offset`.
    `link_prefixes` are the URLs a `Link` next may point under (the SIS's OneRoster root); empty
    allows only the collection's own scheme, host and port. A walk stops (WalkStopped) at a
    page already read (by its URL, or holding the same records as an earlier page), at more
    records than the SIS's first X-Total-Count (plus TOTAL_SLACK_FRACTION), or past
    `max_records` or `max_pages`.
    """

    first_url: str
    limit: int
    offset: int = 0
    pages_read: int = 0
    records_read: int = 0
    max_records: int | None = None
    max_pages: int | None = None
    link_prefixes: tuple[str, ...] = ()
    claimed_total: int | None = None  # the first X-Total-Count the SIS gave
    _seen_pages: dict[str, int] = field(default_factory=dict, repr=False)
    _seen_contents: dict[int, int] = field(default_factory=dict, repr=False)

    def first_page_url(self) -> str:
        return with_query(self.first_url, {"limit": str(self.limit), "offset": "0"})

    def next_page_url(
        self,
        current_url: str,
        ids: Sequence[str],
        *,
        link_header: str | None,
        total_count: str | None,
    ) -> str | None:
        """Given what the page at `current_url` held, the URL of the next page, or None.

        Raises OffsetIgnored when this page holds exactly the ids of the page before it,
        WalkStopped when the walk goes past a bound, LinkElsewhere when `Link` next points
        away from the SIS.
        """
        page_ids = tuple(ids)
        page_number = self.pages_read + 1
        if page_ids:
            fingerprint = hash(page_ids)
            earlier = self._seen_contents.get(fingerprint)
            if earlier is not None and earlier == self.pages_read:
                # The page just before, again: the SIS ignores `offset` (the usual case).
                raise OffsetIgnored(
                    f"page {page_number} (offset {self.offset}) repeats page {earlier}"
                )
            if earlier is not None:
                raise WalkStopped(
                    f"page {page_number} holds the same records as page {earlier}", bound="seen"
                )
            self._seen_contents[fingerprint] = page_number
        self._seen_pages.setdefault(_page_key(current_url), page_number)
        self.pages_read = page_number
        self.records_read += len(page_ids)
        self.offset += len(page_ids)
        if not page_ids:
            return None
        total = _int_or_none(total_count)
        if self.claimed_total is None and total is not None:
            self.claimed_total = total
        self._check_bounds()
        next_link = parse_link_header(link_header).get("next")
        if next_link:
            absolute = urljoin(current_url, next_link)
            if not same_place(absolute, self.link_prefixes or (_origin(self.first_url),)):
                raise LinkElsewhere(absolute)
            earlier = self._seen_pages.get(_page_key(absolute))
            if earlier is not None:
                raise WalkStopped(
                    f"page {page_number}'s next link points back at page {earlier}", bound="seen"
                )
            return self._another_page(absolute)
        if total is not None:
            if self.offset >= total:
                return None
        elif len(page_ids) < self.limit:
            return None  # a short page without a total is the last one
        return self._another_page(
            with_query(self.first_url, {"limit": str(self.limit), "offset": str(self.offset)})
        )

    def _another_page(self, url: str) -> str:
        if self.max_pages is not None and self.pages_read >= self.max_pages:
            raise WalkStopped(
                f"{self.pages_read:,} pages ({self.records_read:,} records) were read and the "
                f"SIS offered another, past the ceiling of {self.max_pages:,} pages",
                bound="pages",
            )
        return url

    def _check_bounds(self) -> None:
        if self.max_records is not None and self.records_read > self.max_records:
            raise WalkStopped(
                f"{self.records_read:,} records were read in {self.pages_read:,} pages, past "
                f"the ceiling of {self.max_records:,} records",
                bound="records",
            )
        claimed = self.claimed_total
        if claimed is not None:
            allowed = claimed + max(self.limit, int(claimed * TOTAL_SLACK_FRACTION))
            if self.records_read > allowed:
                raise WalkStopped(
                    f"{self.records_read:,} records were read in {self.pages_read:,} pages "
                    f"although the SIS said it had {claimed:,} (X-Total-Count)",
                    bound="total",
                )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
