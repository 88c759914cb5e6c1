"""What the consumer sends for 1.2 validates against 1EdTech's official gradebook OpenAPI."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import jsonschema
import pytest

from conftest import OPENAPI_DIR
from sislink.oneroster.consumer import ConnectionSettings, OneRosterClient
from sislink.oneroster.models import Category, GUIDRef, LineItem, Result

GRADEBOOK = OPENAPI_DIR / "gradebook.json"


def _validator(schema_name: str) -> jsonschema.Draft4Validator:
    if not GRADEBOOK.exists():
        # Never skipped: a layout without the official files must fail, not pass silently.
        pytest.fail(
            f"1EdTech's OneRoster 1.2 OpenAPI files are not at {OPENAPI_DIR}: put them in "
            "../shared/reference/oneroster-1.2-openapi beside the checkout (see tests/conftest.py)"
        )
    spec = json.loads(GRADEBOOK.read_text())
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def _line_item() -> LineItem:
    return LineItem(
        sourced_id="li-1",
        title="Essay",
        assign_date=datetime(2026, 2, 1, tzinfo=UTC),
        due_date=datetime(2026, 2, 8, tzinfo=UTC),
        class_=GUIDRef(sourced_id="c-1"),
        school=GUIDRef(sourced_id="s-1"),
        category=GUIDRef(sourced_id="cat-1"),
        grading_period=GUIDRef(sourced_id="gp-1"),
        result_value_min=0,
        result_value_max=100,
    )


def _result() -> Result:
    return Result(
        sourced_id="r-1",
        line_item=GUIDRef(sourced_id="li-1"),
        student=GUIDRef(sourced_id="u-1"),
        class_=GUIDRef(sourced_id="c-1"),
        score_status="fully graded",
        score=300,
        score_date=date(2026, 2, 9),
    )


@pytest.mark.parametrize(
    ("obj", "schema"),
    [
        (_line_item(), "SingleLineItemDType"),
        (_result(), "SingleResultDType"),
        (Category(sourced_id="cat-1", title="Homework"), "SingleCategoryDType"),
    ],
)
def test_put_bodies_validate_against_the_official_schema(
    obj: Any, schema: str, oauth2_settings: ConnectionSettings
) -> None:
    body = OneRosterClient(oauth2_settings).body_for(obj)
    _validator(schema).validate(body)


def test_refs_carry_href_sourced_id_and_type(oauth2_settings: ConnectionSettings) -> None:
    body = OneRosterClient(oauth2_settings).body_for(_line_item())["lineItem"]
    assert body["class"] == {
        "sourcedId": "c-1",
        "type": "class",
        "href": "http://127.0.0.1:9/ims/oneroster/rostering/v1p2/classes/c-1",
    }
    assert body["category"]["href"].endswith("/gradebook/v1p2/categories/cat-1")
    assert body["status"] == "active" and body["dateLastModified"].endswith("Z")


def test_result_score_date_is_a_date(oauth2_settings: ConnectionSettings) -> None:
    body = OneRosterClient(oauth2_settings).body_for(_result())["result"]
    assert body["scoreDate"] == "2026-02-09"


def test_a_1_1_line_item_keeps_grading_period_and_drops_school(
    oauth1_settings: ConnectionSettings,
) -> None:
    body = OneRosterClient(oauth1_settings).body_for(_line_item())["lineItem"]
    assert "school" not in body and body["gradingPeriod"]["sourcedId"] == "gp-1"
    assert body["class"]["href"].endswith("/v1p1/classes/c-1")
