"""One rule for numbers people type: a mark, a coursework's max points, a class's extra-credit
limit. Plain digits 0-9 with at most one decimal point (or a decimal comma, where the caller
says a comma cannot be a thousands separator), and nothing else: exponent notation (1e3),
digits of other scripts (Arabic-Indic, full-width...), 'inf', 'nan', '1_0' and thousands
separators are refused, not read. Python's float() would read all of those, and a limit or
max points of 1e9 would let any mark through.
"""

from __future__ import annotations

import math
import re

from sislink.classroom.errors import InvalidInput

# A number as typed: digits 0-9, at most one decimal point (or comma, where allowed).
PLAIN_NUMBER = re.compile(r"(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)", re.ASCII)
EXPONENT = re.compile(r"[-+]?(?:[0-9]+[.,]?[0-9]*|[.,][0-9]+)[eE][-+]?[0-9]+", re.ASCII)


def read_plain_number(
    value: float | int | str, *, subject: str, decimal_comma: bool = False
) -> float:
    """`value` as a finite number, never negative. `subject` starts each refusal, e.g.
    "A mark of '1e3'" or "Max points of '1e3'". Numbers (not text) are taken as they are,
    when finite; text must be plain digits (see the module)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{subject} is not a number.")
    if not isinstance(value, str):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInput(f"{subject} is not a number.")
        if number < 0:
            raise InvalidInput(f"{subject} cannot be negative.")
        return number
    text = value.strip()
    if text.startswith("-") and PLAIN_NUMBER.fullmatch(text[1:]):
        raise InvalidInput(f"{subject} cannot be negative.")
    if EXPONENT.fullmatch(text):
        raise InvalidInput(
            f"{subject} is in exponent notation, which is not read as a number: type the "
            "number itself, with digits 0-9."
        )
    if any(ch.isdigit() and not ("0" <= ch <= "9") for ch in text):
        raise InvalidInput(
            f"{subject} has digits other than 0-9, which are not read as a number: type it "
            "with the digits 0-9."
        )
    if not PLAIN_NUMBER.fullmatch(text):
        raise InvalidInput(f"{subject} is not a number.")
    if "," in text and not decimal_comma:
        raise InvalidInput(
            f"{subject} has a comma, which could be a decimal or a thousands separator: write "
            f"decimals with a point ({text.replace(',', '.')})."
        )
    return float(text.replace(",", "."))
