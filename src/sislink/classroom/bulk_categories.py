"""Bulk upserts of grading categories from the SIS, keyed by sourcedId within their class.

A category belongs to one class and its title is unique in that class. A SIS category is
matched by its sourcedId, else by (class, title) when a category of that title was made here
(it is adopted, so coursework that uses it keeps it). Same write path as `bulk` (one read,
one INSERT, one UPDATE per batch) and exact counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from sislink.classroom.bulk import (
    SourcedIdCache,
    UpsertCounts,
    _chunks,
    _compiled_lookup,
    _dedupe,
    _driver_rows,
    _fetch_by,
    _missing,
    _Plan,
)
from sislink.classroom.models import Category, Class

_COLUMNS = ("sis_sourced_id", "class_id", "title", "weight", "active")


@dataclass(frozen=True, slots=True)
class CategoryRow:
    sourced_id: str
    class_sourced_id: str
    title: str
    weight: float | None = None
    active: bool = True


def _category_table() -> Table:
    table = Category.__table__
    assert isinstance(table, Table)
    return table


def upsert_categories(
    session: Session, rows: Iterable[CategoryRow], cache: SourcedIdCache | None = None
) -> UpsertCounts:
    """Upsert categories; one title per class (a clash is skipped with the reason)."""
    table = _category_table()
    unique_rows: list[CategoryRow] = _dedupe(rows)
    if cache is None:
        cache = SourcedIdCache()
    classes = cache.ids(session, Class, (row.class_sourced_id for row in unique_rows))
    plan = _Plan()
    wanted: list[tuple[CategoryRow, dict[str, Any]]] = []
    for row in unique_rows:
        if row.class_sourced_id not in classes:
            plan.skip(row.sourced_id, _missing("class", row.class_sourced_id))
            continue
        values = {
            "sis_sourced_id": row.sourced_id,
            "class_id": classes[row.class_sourced_id],
            "title": row.title.strip(),
            "weight": row.weight,
            "active": row.active,
        }
        wanted.append((row, values))
    by_sourced_id = _fetch_by(
        session, table, "sis_sourced_id", [row.sourced_id for row, _ in wanted], _COLUMNS
    )
    in_classes = _categories_of_classes(session, table, [v["class_id"] for _, v in wanted])
    # Who holds each (class, title) now: the sourcedId of a SIS category, or None if made here.
    holders = {(found["class_id"], found["title"]): found for found in in_classes}
    for row, values in wanted:
        found = by_sourced_id.get(row.sourced_id)
        key = (values["class_id"], values["title"])
        holder = holders.get(key)
        if holder is not None and (found is None or holder["id"] != found["id"]):
            if found is None and holder["sis_sourced_id"] is None:
                found = holder  # a category made here with this title: adopt it
            else:
                owner = holder["sis_sourced_id"] or "a category made in sislink"
                plan.skip(
                    row.sourced_id,
                    f"the class already has a category titled {values['title']!r} ({owner}); "
                    "titles are unique within a class: rename one of them in the SIS",
                )
                continue
        if found is not None:
            holders.pop((found["class_id"], found["title"]), None)
        holders[key] = {**values, "id": found["id"] if found else None}
        plan.add(found, values)
    return plan.write(session, table)


def _categories_of_classes(
    session: Session, table: Table, class_ids: Sequence[int]
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    connection = session.connection()
    names = ("id", *_COLUMNS)
    # Every column is of a plain type: read on the driver's cursor (bulk._driver_rows).
    sql, positional = _compiled_lookup(connection, table, "class_id", names)
    for chunk in _chunks(list(dict.fromkeys(class_ids))):
        keys = json.dumps(chunk)
        rows = _driver_rows(connection, sql, (keys,) if positional else {"keys": keys})
        found.extend(dict(zip(names, row, strict=True)) for row in rows)
    return found


def deactivate_categories(session: Session, sourced_ids: Sequence[str]) -> int:
    """Mark these imported categories inactive (never deleted: coursework keeps them)."""
    table = _category_table()
    changed = 0
    for chunk in _chunks(list(dict.fromkeys(sourced_ids))):
        statement = (
            update(table)
            .where(table.c.sis_sourced_id.in_(chunk), table.c.active.is_(True))
            .values(active=False)
        )
        changed += session.connection().execute(statement).rowcount
    return changed
