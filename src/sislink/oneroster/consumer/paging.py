"""Following a OneRoster collection across pages: RFC 8288 `Link` next when the SIS gives it,
else `limit`/`offset` with `X-Total-Count`, and a guard against servers that ignore `offset`.

Pure logic, no I/O: `Pager` is told what each page held and says where the next one is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

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


@dataclass
class Pager:
    """Where the next page of one collection is.

    `first_url` is the collection URL with every parameter except `limit` and `offset`.
    """

    first_url: str
    limit: int
    offset: int = 0
    pages_read: int = 0
    records_read: int = 0
    _previous_ids: tuple[str, ...] = field(default=(), repr=False)
    _seen_links: set[str] = field(default_factory=set, repr=False)

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

        Raises OffsetIgnored when this page holds exactly the ids of the page before it, or
        when a `Link` next points at a page already read.
        """
        page_ids = tuple(ids)
        if self.pages_read > 0 and page_ids and page_ids == self._previous_ids:
            raise OffsetIgnored(
                f"page {self.pages_read + 1} (offset {self.offset}) repeats page {self.pages_read}"
            )
        self._previous_ids = page_ids
        self._seen_links.add(current_url)
        self.pages_read += 1
        self.records_read += len(page_ids)
        self.offset += len(page_ids)
        if not page_ids:
            return None
        next_link = parse_link_header(link_header).get("next")
        if next_link:
            absolute = urljoin(current_url, next_link)
            if absolute in self._seen_links:
                raise OffsetIgnored(f"Link next points back at a page already read ({absolute})")
            return absolute
        total = _int_or_none(total_count)
        if total is not None:
            if self.offset >= total:
                return None
        elif len(page_ids) < self.limit:
            return None  # a short page without a total is the last one
        return with_query(self.first_url, {"limit": str(self.limit), "offset": str(self.offset)})


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
