"""Logs as one JSON object per line (SISLINK_LOG_FORMAT=json), each carrying the ids of what it
is about: the job, its kind, the connection, the class, the console request.

The ids live in context variables: the job runner sets the job's (`log_context`), the console's
middleware the request's, and every record logged inside picks them up (asyncio tasks and
`asyncio.to_thread` copy the context, so work a job spreads out carries them too).

Nothing secret is logged on purpose; `RedactingFilter` is the second line of defence: it masks
bearer tokens, passwords and secrets in `key=value` or JSON form, passwords in URLs, and mark
values (`score`, `mark`) before any handler sees the record.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

LOG_FORMAT_VARIABLE = "SISLINK_LOG_FORMAT"
LOG_LEVEL_VARIABLE = "SISLINK_LOG_LEVEL"
MASK = "[redacted]"

# The ids a record may carry, by the name they have in the JSON line.
CONTEXT_FIELDS = ("job_id", "job_kind", "connection_id", "class_id", "request_id")
_context: dict[str, ContextVar[str | int | None]] = {
    name: ContextVar(f"sislink_log_{name}", default=None) for name in CONTEXT_FIELDS
}

# Words whose value is never logged: `client_secret=...`, `"password": "..."`, `token: ...`.
_UNLOGGED_KEYS = (
    r"[a-z_]*secret[a-z_]*|[a-z_]*password[a-z_]*|passwd|[a-z_]*tokens?|api[_-]?key|"
    r"private[_-]?key|authorization|cookie|set-cookie|score|mark|marks|points_earned"
)
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_UNLOGGED_KEYS})\b["']?\s*[=:]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&}\]]+)""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<scheme>bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)", re.IGNORECASE)


# Words that follow "secret:" or "token:" in sislink's own sentences ("it refused the client id
# or secret: check both"): advice or a state, never a credential. Only after a colon: a value
# after `=` is always masked.
_ADVICE_WORDS = frozenset(
    [
        "check",
        "set",
        "give",
        "ask",
        "see",
        "use",
        "run",
        "try",
        "enter",
        "type",
        "copy",
        "paste",
        "open",
        "make",
        "update",
        "renew",
        "reconnect",
        "authorise",
        "authorize",
        "sign",
        "the",
        "a",
        "an",
        "it",
        "its",
        "is",
        "was",
        "none",
        "not",
        "no",
        "wrong",
        "expired",
        "missing",
        "unknown",
        "invalid",
        "refused",
        "rejected",
        "revoked",
        "empty",
        "required",
    ]
)


def _masked(found: re.Match[str]) -> str:
    key, value = found.group("key"), found.group("value")
    if key.rstrip().endswith(":") and value.lower() in _ADVICE_WORDS:
        return found.group(0)
    return f"{key}{MASK}"


def redact(text: str) -> str:
    """`text` with secret-looking values masked (see the module's docstring)."""
    text = _BEARER.sub(lambda found: f"{found.group('scheme')} {MASK}", text)
    text = _URL_PASSWORD.sub(lambda found: f"{found.group('head')}{MASK}", text)
    return _KEY_VALUE.sub(_masked, text)


def url_in_words(url: str) -> str:
    """A server's URL as a message may name it: its scheme, host and port, never its user or
    password (a broker's, Redis's)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def current_ids() -> dict[str, str | int]:
    """The ids set in this context (only those that are set)."""
    found = {name: variable.get() for name, variable in _context.items()}
    return {name: value for name, value in found.items() if value is not None}


@contextmanager
def log_context(**ids: str | int | None) -> Iterator[None]:
    """Every record logged inside carries these ids (None leaves an id unset)."""
    unknown = set(ids) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log ids {sorted(unknown)}; known: {', '.join(CONTEXT_FIELDS)}")
    tokens: list[tuple[ContextVar[str | int | None], Token[str | int | None]]] = []
    for name, value in ids.items():
        if value is not None:
            variable = _context[name]
            tokens.append((variable, variable.set(value)))
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


class ContextFilter(logging.Filter):
    """Puts the context's ids on each record (as attributes named after CONTEXT_FIELDS)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_ids().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and any exception text, in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be kept, still redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message,
    the ids that are set, and the exception (as text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines for people at a terminal, with the ids in brackets when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        )
        text = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        if ids:
            text += f" [{ids}]"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


class SislinkLogHandler(logging.StreamHandler[IO[str]]):
    """The handler `configure_logging` installs (found again by its class, so it is installed
    once however often configure_logging is called)."""


def configure_logging(
    environ: Mapping[str, str] | None = None, *, stream: IO[str] | None = None
) -> SislinkLogHandler:
    """Send logs to stderr (or `stream`): JSON lines when SISLINK_LOG_FORMAT=json, else plain
    text; at SISLINK_LOG_LEVEL (default: info for JSON, warning for text, as before). Every
    line is redacted and carries the context's ids. Replaces an earlier call's handler."""
    env = os.environ if environ is None else environ
    form = (env.get(LOG_FORMAT_VARIABLE) or "text").strip().lower()
    if form not in ("json", "text"):
        raise ValueError(f"{LOG_FORMAT_VARIABLE} is {form!r}; use 'json' or 'text'.")
    default_level = "INFO" if form == "json" else "WARNING"
    level_name = (env.get(LOG_LEVEL_VARIABLE) or default_level).strip().upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ValueError(
            f"{LOG_LEVEL_VARIABLE} is {level_name!r}; use DEBUG, INFO, WARNING or ERROR."
        )
    root = logging.getLogger()
    for old in [found for found in root.handlers if isinstance(found, SislinkLogHandler)]:
        root.removeHandler(old)
    handler = SislinkLogHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if form == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def json_logs_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """True when SISLINK_LOG_FORMAT=json (servers then hand uvicorn's loggers to ours)."""
    env = os.environ if environ is None else environ
    return (env.get(LOG_FORMAT_VARIABLE) or "").strip().lower() == "json"
