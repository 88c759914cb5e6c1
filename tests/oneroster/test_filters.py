"""The filter grammar: built safely, parsed strictly, round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sislink.oneroster.filters import FilterSyntaxError, both, either, parse, where


def test_doubled_quotes_are_one_quote_in_the_value() -> None:
    assert parse("familyName='O''Neil'").first.value == "O'Neil"


def test_one_and_or_join_with_dotted_fields() -> None:
    parsed = parse("school.sourcedId='s1' AND status!='tobedeleted'")
    assert (
        parsed.join == "AND"
        and parsed.first.field == "school.sourcedId"
        and parsed.second is not None
    )
    assert parsed.second.op == "!="


@pytest.mark.parametrize(
    "bad", ["email", "email=a", "email='a", "='a'", "a='1' AND b='2' AND c='3'", "a='1' XOR b='2'"]
)
def test_malformed_filters_raise_with_a_position(bad: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse(bad)


def test_joining_two_joined_filters_is_refused() -> None:
    with pytest.raises(FilterSyntaxError):
        both(either(where("a", "=", "1"), where("b", "=", "2")), where("c", "=", "3"))


@given(st.text(max_size=30), st.sampled_from(["=", "!=", ">", ">=", "<", "<=", "~"]))
def test_any_value_round_trips_through_render_and_parse(value: str, op: str) -> None:
    built = where("email", op, value)  # type: ignore[arg-type]
    assert parse(built.render()) == built
