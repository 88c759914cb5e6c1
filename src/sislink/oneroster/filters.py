"""OneRoster `filter` expressions: built safely by consumers, parsed strictly by the provider.

Grammar (OneRoster 1.1 and 1.2, section "Filtering"): `field op 'value'`, optionally joined to
one more predicate by ` AND ` or ` OR `. Operators: = != > >= < <= ~ (contains). Values are
single-quoted; a quote inside a value is doubled. Fields may be dotted (`school.sourcedId`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Operator = Literal["=", "!=", ">", ">=", "<", "<=", "~"]
Join = Literal["AND", "OR"]
OPERATORS: tuple[Operator, ...] = ("!=", ">=", "<=", "=", ">", "<", "~")


class FilterSyntaxError(ValueError):
    """A filter that does not follow the OneRoster grammar; the message says where and why."""


@dataclass(frozen=True)
class Predicate:
    field: str
    op: Operator
    value: str

    def render(self) -> str:
        return f"{self.field}{self.op}{quote(self.value)}"


@dataclass(frozen=True)
class Filter:
    """One predicate, or two joined by AND / OR."""

    first: Predicate
    join: Join | None = None
    second: Predicate | None = None

    def render(self) -> str:
        if self.join is None or self.second is None:
            return self.first.render()
        return f"{self.first.render()} {self.join} {self.second.render()}"

    @property
    def predicates(self) -> tuple[Predicate, ...]:
        return (self.first,) if self.second is None else (self.first, self.second)

    def __str__(self) -> str:
        return self.render()


def quote(value: str) -> str:
    """A filter value in single quotes, embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def where(field: str, op: Operator, value: str) -> Filter:
    """Build a one-predicate filter: `where("email", "=", "o'neil@school.org")`."""
    _check_field(field)
    if op not in OPERATORS:
        raise FilterSyntaxError(
            f"Unknown filter operator {op!r}; use one of {', '.join(OPERATORS)}"
        )
    return Filter(Predicate(field, op, value))


def both(left: Filter, right: Filter) -> Filter:
    return _join(left, "AND", right)


def either(left: Filter, right: Filter) -> Filter:
    return _join(left, "OR", right)


def _join(left: Filter, join: Join, right: Filter) -> Filter:
    if left.second is not None or right.second is not None:
        raise FilterSyntaxError("OneRoster filters allow one AND or OR, not more")
    return Filter(left.first, join, right.first)


_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _check_field(field: str) -> None:
    if not _FIELD.fullmatch(field):
        raise FilterSyntaxError(
            f"{field!r} is not a field name; use letters, digits and dots (e.g. school.sourcedId)"
        )


def parse(text: str) -> Filter:
    """Parse a filter parameter. Raises FilterSyntaxError with the position of the problem."""
    parser = _Parser(text)
    first = parser.predicate()
    if parser.at_end():
        return Filter(first)
    join = parser.join()
    second = parser.predicate()
    if not parser.at_end():
        raise FilterSyntaxError(
            f"Unexpected text at position {parser.pos + 1} of filter {text!r}: "
            "a filter has at most two predicates joined by one AND or OR"
        )
    return Filter(first, join, second)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def at_end(self) -> bool:
        self._skip_spaces()
        return self.pos >= len(self.text)

    def _fail(self, what: str) -> FilterSyntaxError:
        return FilterSyntaxError(
            f"Invalid filter {self.text!r} at position {self.pos + 1}: {what}. "
            "Expected field op 'value', e.g. email='a@b.org'"
        )

    def predicate(self) -> Predicate:
        self._skip_spaces()
        match = _FIELD.match(self.text, self.pos)
        if not match:
            raise self._fail("expected a field name")
        field = match.group(0)
        self.pos = match.end()
        self._skip_spaces()
        op = next((o for o in OPERATORS if self.text.startswith(o, self.pos)), None)
        if op is None:
            raise self._fail(f"expected an operator ({' '.join(OPERATORS)}) after {field!r}")
        self.pos += len(op)
        self._skip_spaces()
        return Predicate(field, op, self._value())

    def _value(self) -> str:
        if self.pos >= len(self.text) or self.text[self.pos] != "'":
            raise self._fail("expected a value in single quotes")
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "'":
                if self.text.startswith("''", self.pos):
                    out.append("'")
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self._fail("the value's closing quote is missing")

    def join(self) -> Join:
        self._skip_spaces()
        for word in ("AND", "OR"):
            end = self.pos + len(word)
            if self.text[self.pos : end].upper() == word and (
                end >= len(self.text) or self.text[end] == " "
            ):
                self.pos = end
                return "AND" if word == "AND" else "OR"
        raise self._fail("expected AND or OR between two predicates")
