"""A marker for "argument not given", where None is a real value (it clears a field)."""

from __future__ import annotations

import enum


class Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = Unset.UNSET
