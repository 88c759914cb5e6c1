"""Every 1.2 endpoint family answers bodies that validate against 1EdTech's official OpenAPI."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.oneroster.versions import Service, spec_for

SPEC = spec_for("1.2")
ROSTER = "rostering/v1p2"
GRADEBOOK = "gradebook/v1p2"


def _openapi_path(path: str) -> str:
    """Our endpoint path (`teachers/{teacher_id}/classes`) as 1EdTech's (`/teachers/{teacherSourcedId}/classes`)."""

    def rename(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "id":
            return "{sourcedId}"
        head, *rest = name.split("_")[:-1]
        return "{" + head + "".join(w.title() for w in rest) + "SourcedId}"

    return "/" + re.sub(r"\{([a-z_]+)\}", rename, path)


@pytest.fixture(scope="module")
def ids(provider: RunningProvider, http: httpx.Client) -> dict[str, str]:
    """An id for every kind of placeholder, with gradebook objects written for the occasion."""
    teacher = http.get(
        f"{ROSTER}/teachers", params={"filter": f"email='{provider.teacher_email}'"}
    ).json()["users"][0]
    klass = http.get(f"{ROSTER}/teachers/{teacher['sourcedId']}/classes").json()["classes"][0]
    student = http.get(f"{ROSTER}/classes/{klass['sourcedId']}/students").json()["users"][0]
    term = klass["terms"][0]["sourcedId"]
    period = http.get(f"{ROSTER}/terms/{term}/gradingPeriods").json()["academicSessions"][0]
    category = http.get(f"{GRADEBOOK}/classes/{klass['sourcedId']}/categories").json()[
        "categories"
    ][0]
    enrollment = http.get(f"{ROSTER}/enrollments", params={"limit": 1}).json()["enrollments"][0]
    line_item_id, result_id, scale_id = (str(uuid.uuid4()) for _ in range(3))
    school = klass["school"]["sourcedId"]
    assert (
        http.put(
            f"{GRADEBOOK}/lineItems/{line_item_id}",
            json={
                "lineItem": {
                    "title": "Quiz",
                    "assignDate": "2026-09-01",
                    "dueDate": "2026-09-02T12:00:00Z",
                    "class": {"sourcedId": klass["sourcedId"]},
                    "school": {"sourcedId": school},
                    "category": {"sourcedId": category["sourcedId"]},
                    "gradingPeriod": {"sourcedId": period["sourcedId"]},
                    "resultValueMin": 0,
                    "resultValueMax": 10,
                }
            },
        ).status_code
        == 201
    )
    assert (
        http.put(
            f"{GRADEBOOK}/results/{result_id}",
            json={
                "result": {
                    "score": 9,
                    "scoreStatus": "fully graded",
                    "scoreDate": "2026-09-03",
                    "lineItem": {"sourcedId": line_item_id},
                    "student": {"sourcedId": student["sourcedId"]},
                    "comment": "Well done",
                    "late": "false",
                }
            },
        ).status_code
        == 201
    )
    assert (
        http.put(
            f"{GRADEBOOK}/scoreScales/{scale_id}",
            json={
                "scoreScale": {
                    "title": "A-F",
                    "type": "letter",
                    "class": {"sourcedId": klass["sourcedId"]},
                    "scoreScaleValue": [{"itemValueLHS": "A", "itemValueRHS": "90"}],
                }
            },
        ).status_code
        == 201
    )
    return {
        "class_id": klass["sourcedId"],
        "school_id": school,
        "course_id": klass["course"]["sourcedId"],
        "term_id": term,
        "teacher_id": teacher["sourcedId"],
        "student_id": student["sourcedId"],
        "user_id": student["sourcedId"],
        "line_item_id": line_item_id,
        # single-object ids, by endpoint name
        "academic_session": period["sourcedId"],
        "class": klass["sourcedId"],
        "course": klass["course"]["sourcedId"],
        "enrollment": enrollment["sourcedId"],
        "grading_period": period["sourcedId"],
        "org": school,
        "school": school,
        "student": student["sourcedId"],
        "teacher": teacher["sourcedId"],
        "term": term,
        "user": student["sourcedId"],
        "category": category["sourcedId"],
        "line_item": line_item_id,
        "result": result_id,
        "score_scale": scale_id,
    }


@pytest.mark.parametrize("name", sorted(SPEC.endpoints))
def test_every_1_2_get_validates_against_the_official_openapi(
    name: str, http: httpx.Client, ids: dict[str, str], openapi: Any
) -> None:
    endpoint = SPEC.endpoint(name)
    path_ids = {p: ids[name] if p == "id" else ids[p] for p in endpoint.placeholders}
    response = http.get(SPEC.url_path(name, **path_ids), params={"limit": 5})
    assert response.status_code == 200, response.text
    service = "rostering" if endpoint.service is Service.ROSTERING else "gradebook"
    body = response.json()
    openapi.validate(
        openapi.response_schema(service, _openapi_path(endpoint.path), "get", "200"), body
    )
    if endpoint.collection:
        assert body[endpoint.kind.collection_key], f"{name} returned no objects to validate"
        assert int(response.headers["x-total-count"]) >= len(body[endpoint.kind.collection_key])


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (f"{ROSTER}/users", {"filter": "email~"}, 400),
        (f"{ROSTER}/users", {"filter": "colour='red'"}, 400),
        (f"{ROSTER}/users/nobody", {}, 404),
        (f"{GRADEBOOK}/lineItems/nothing", {}, 404),
    ],
)
def test_errors_are_imsx_status_bodies(
    path: str, params: dict[str, Any], status: int, http: httpx.Client, openapi: Any
) -> None:
    response = http.get(path, params=params)
    assert response.status_code == status
    openapi.validate_named("rostering", "imsx_StatusInfoDType", response.json())


def test_an_updating_put_answers_as_the_openapi_lists_201_without_a_body(
    http: httpx.Client, ids: dict[str, str], openapi: Any
) -> None:
    listed = openapi.docs["gradebook"]["paths"]["/lineItems/{sourcedId}"]["put"]["responses"]
    assert [code for code in listed if code.startswith("2")] == ["201"]
    assert "content" not in listed["201"]
    line_item = http.get(f"{GRADEBOOK}/lineItems/{ids['line_item']}").json()
    response = http.put(f"{GRADEBOOK}/lineItems/{ids['line_item']}", json=line_item)
    assert (response.status_code, response.content) == (201, b"")


def test_a_profile_whose_sis_answers_200_answers_an_update_with_the_object(
    openapi: Any, fetch_token: Any
) -> None:
    with running_provider(profile="infinite-campus", students=40) as sis:
        headers = {"Authorization": f"Bearer {fetch_token(sis)}", **sis.extra_headers}
        with httpx.Client(base_url=sis.base_url + "/", headers=headers, timeout=30) as http:
            category = http.get(f"{GRADEBOOK}/categories", params={"limit": 1}).json()
            (first,) = category["categories"]
            response = http.put(f"{GRADEBOOK}/categories/{first['sourcedId']}", json=first)
    assert response.status_code == sis.update_status == 200
    openapi.validate_named("gradebook", "SingleCategoryDType", response.json())
