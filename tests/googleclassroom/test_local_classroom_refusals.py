"""The local Classroom refuses what Google refuses: requests the discovery document forbids
(answered 400 INVALID_ARGUMENT in Google's words), and what Classroom's rules forbid."""

from __future__ import annotations

import json
from typing import Any

import google_auth_httplib2
import httplib2
import httpx
import pytest
from google.oauth2 import service_account
from googleapiclient.errors import HttpError

from googleclassroom.google_world import google_service, new_course, students_of
from sislink.googleclassroom import SCOPES
from sislink.googleclassroom.emulator import ClassroomConfig, RunningClassroom, running_classroom


def _token(running: RunningClassroom, email: str, scopes: tuple[str, ...] = SCOPES) -> str:
    info = json.loads(running.key_file.read_text())
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=list(scopes)
    ).with_subject(email)
    credentials.refresh(google_auth_httplib2.Request(httplib2.Http()))
    return str(credentials.token)


def _raw(
    running: RunningClassroom, method: str, path: str, *, email: str | None = None, **kwargs: Any
) -> httpx.Response:
    token = _token(running, email or running.admin_email)
    return httpx.request(
        method,
        running.api_url.rstrip("/") + path,
        headers={"Authorization": f"Bearer {token}"},
        **kwargs,
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


# ---- what the discovery document forbids ---------------------------------------------------


def test_an_unknown_query_parameter_is_refused_in_googles_words(
    local_classroom: RunningClassroom,
) -> None:
    answer = _raw(local_classroom, "GET", "/v1/courses?colour=blue")
    assert answer.status_code == 400
    error = _error(answer)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == (
        'Invalid JSON payload received. Unknown name "colour": Cannot bind query parameter. '
        "Field 'colour' could not be found in request message."
    )


def test_a_parameter_of_the_wrong_type_or_outside_its_enum_is_refused(
    local_classroom: RunningClassroom,
) -> None:
    wrong_type = _error(_raw(local_classroom, "GET", "/v1/courses?pageSize=ten"))
    assert wrong_type["message"] == "Invalid value at 'page_size' (TYPE_INT32), \"ten\""
    wrong_enum = _raw(local_classroom, "GET", "/v1/courses?courseStates=OPEN")
    assert wrong_enum.status_code == 400
    assert "course_states[0]" in _error(wrong_enum)["message"]
    assert _error(wrong_enum)["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


def test_a_body_with_an_unknown_field_or_a_wrong_type_is_refused(
    local_classroom: RunningClassroom,
) -> None:
    unknown = _raw(
        local_classroom,
        "POST",
        "/v1/courses",
        json={"name": "Art", "ownerId": "me", "colour": "blue"},
    )
    assert unknown.status_code == 400
    assert _error(unknown)["message"] == (
        "Invalid JSON payload received. Unknown name \"colour\" at 'course': Cannot find field."
    )
    wrong = _raw(local_classroom, "POST", "/v1/courses", json={"name": 5, "ownerId": "me"})
    assert _error(wrong)["message"] == "Invalid value at 'course.name' (TYPE_STRING), 5"
    state = _raw(local_classroom, "POST", "/v1/courses", json={"name": "A", "courseState": "OPEN"})
    assert "course.course_state" in _error(state)["message"]
    broken = _raw(local_classroom, "POST", "/v1/courses", content=b"{not json")
    assert _error(broken)["status"] == "INVALID_ARGUMENT"
    assert local_classroom.backend.tables["course"] == {}  # nothing was created


def test_a_path_or_method_the_api_does_not_have_is_googles_404_page(
    local_classroom: RunningClassroom,
) -> None:
    answer = _raw(local_classroom, "GET", "/v1/lessons")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "was not found on this server" in answer.text
    assert _raw(local_classroom, "DELETE", "/v1/userProfiles/me").status_code == 404


def test_a_batch_of_more_than_fifty_calls_is_refused_whole(
    local_classroom: RunningClassroom,
) -> None:
    token = _token(local_classroom, local_classroom.admin_email)
    parts = "".join(
        f"--b\r\nContent-Type: application/http\r\nContent-ID: <x+{i}>\r\n\r\n"
        f"GET /v1/userProfiles/me HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n\r\n"
        for i in range(51)
    )
    answer = httpx.post(
        local_classroom.api_url + "batch",
        content=parts + "--b--\r\n",
        headers={"Content-Type": "multipart/mixed; boundary=b"},
    )
    assert answer.status_code == 400
    assert "at most 50 calls" in _error(answer)["message"]


def test_without_a_valid_token_every_call_is_unauthenticated(
    local_classroom: RunningClassroom,
) -> None:
    answer = httpx.get(
        local_classroom.api_url + "v1/courses", headers={"Authorization": "Bearer ya29.forged"}
    )
    assert answer.status_code == 401
    assert _error(answer)["status"] == "UNAUTHENTICATED"


def test_a_token_without_the_methods_scope_is_refused(local_classroom: RunningClassroom) -> None:
    rosters_only = ("https://www.googleapis.com/auth/classroom.rosters",)
    token = _token(local_classroom, local_classroom.admin_email, rosters_only)
    answer = httpx.get(
        local_classroom.api_url + "v1/courses", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 403
    assert _error(answer)["message"] == "Request had insufficient authentication scopes."


# ---- the token endpoint --------------------------------------------------------------------


def test_the_token_endpoint_refuses_scopes_the_domain_did_not_delegate() -> None:
    config = ClassroomConfig(
        delegated_scopes=frozenset({"https://www.googleapis.com/auth/classroom.courses"})
    )
    with (
        running_classroom(students=5, config=config) as running,
        pytest.raises(Exception) as caught,
    ):
        _token(running, running.admin_email)
    assert "unauthorized_client" in str(caught.value)


def test_the_token_endpoint_refuses_a_user_outside_the_domain(
    local_classroom: RunningClassroom,
) -> None:
    with pytest.raises(Exception) as caught:
        _token(local_classroom, "visitor@elsewhere.example.net")
    assert "Invalid email or User ID" in str(caught.value)


# ---- Classroom's rules ---------------------------------------------------------------------


def test_an_alias_that_exists_makes_create_answer_409_and_works_wherever_an_id_does(
    local_classroom: RunningClassroom,
) -> None:
    admin = google_service(local_classroom, local_classroom.admin_email)
    course = new_course(admin, local_classroom.teacher_email, alias="d:sis-cls-00001")
    with pytest.raises(HttpError) as caught:
        new_course(admin, local_classroom.teacher_email, alias="d:sis-cls-00001")
    assert caught.value.resp.status == 409
    assert admin.courses().get(id="d:sis-cls-00001").execute()["id"] == course["id"]
    aliases = admin.courses().aliases().list(courseId=course["id"]).execute()
    assert aliases["aliases"] == [{"alias": "d:sis-cls-00001"}]
    assert len(local_classroom.backend.tables["course"]) == 1


def test_inviting_a_member_to_a_role_they_hold_is_a_failed_precondition_not_a_409(
    local_classroom: RunningClassroom,
) -> None:
    # The discovery document: FAILED_PRECONDITION "if the user already has this role or a role
    # with greater permissions"; ALREADY_EXISTS only "if an invitation ... already exists".
    admin = google_service(local_classroom, local_classroom.admin_email)
    course = new_course(admin, local_classroom.teacher_email, courseState="ACTIVE")
    student = students_of(local_classroom, 1)[0]
    admin.courses().students().create(courseId=course["id"], body={"userId": student}).execute()
    for who, role in ((student, "STUDENT"), (local_classroom.teacher_email, "TEACHER")):
        with pytest.raises(HttpError) as caught:
            admin.invitations().create(
                body={"courseId": course["id"], "userId": who, "role": role}
            ).execute()
        assert caught.value.resp.status == 400
        assert json.loads(caught.value.content)["error"]["status"] == "FAILED_PRECONDITION"
    # A student invited to teach holds a lesser role: invited, and a teacher once accepted.
    made = (
        admin.invitations()
        .create(body={"courseId": course["id"], "userId": student, "role": "TEACHER"})
        .execute()
    )
    with pytest.raises(HttpError) as caught:
        admin.invitations().create(
            body={"courseId": course["id"], "userId": student, "role": "TEACHER"}
        ).execute()
    assert caught.value.resp.status == 409
    google_service(local_classroom, student).invitations().accept(id=made["id"]).execute()
    roster = local_classroom.backend.tables["roster"][course["id"]]
    user_id = local_classroom.directory.find(student).id  # type: ignore[union-attr]
    assert user_id in roster["teachers"] and user_id not in roster["students"]


def test_members_come_thirty_a_page_unless_a_page_size_is_asked(
    local_classroom: RunningClassroom,
) -> None:
    # The discovery document: teachers.list and students.list "The default is 30 if
    # unspecified or 0" (code that leaves pageSize out pages through more than it may think).
    admin = google_service(local_classroom, local_classroom.admin_email)
    course = new_course(admin, local_classroom.teacher_email, courseState="ACTIVE")
    for student in students_of(local_classroom, 35):
        admin.courses().students().create(courseId=course["id"], body={"userId": student}).execute()
    first = admin.courses().students().list(courseId=course["id"]).execute()
    assert len(first["students"]) == 30 and first["nextPageToken"]
    rest = (
        admin.courses()
        .students()
        .list(courseId=course["id"], pageToken=first["nextPageToken"])
        .execute()
    )
    assert len(rest["students"]) == 5 and "nextPageToken" not in rest
    whole = admin.courses().students().list(courseId=course["id"], pageSize=100).execute()
    assert len(whole["students"]) == 35 and "nextPageToken" not in whole


def test_only_a_domain_administrator_makes_domain_aliases(
    local_classroom: RunningClassroom,
) -> None:
    teacher = google_service(local_classroom, local_classroom.teacher_email)
    with pytest.raises(HttpError) as caught:
        new_course(teacher, "me", alias="d:mine")
    assert caught.value.resp.status == 403
    project_alias = new_course(teacher, "me", alias="p:mine")
    assert teacher.courses().get(id="p:mine").execute()["id"] == project_alias["id"]


def test_a_course_is_provisioned_until_its_owner_accepts_it(
    local_classroom: RunningClassroom,
) -> None:
    admin = google_service(local_classroom, local_classroom.admin_email)
    course = new_course(admin, local_classroom.teacher_email, alias="d:accept")
    assert course["courseState"] == "PROVISIONED"
    owner = google_service(local_classroom, local_classroom.teacher_email)
    accepted = (
        owner.courses()
        .patch(id="d:accept", updateMask="courseState", body={"courseState": "ACTIVE"})
        .execute()
    )
    assert accepted["courseState"] == "ACTIVE"
    assert accepted["updateTime"] > course["updateTime"]
    with pytest.raises(HttpError) as caught:  # active -> provisioned is not a transition
        owner.courses().patch(
            id="d:accept", updateMask="courseState", body={"courseState": "PROVISIONED"}
        ).execute()
    assert b"@CourseNotModifiable" in caught.value.content


def test_only_a_teacher_of_the_course_can_become_its_owner(
    local_classroom: RunningClassroom,
) -> None:
    admin = google_service(local_classroom, local_classroom.admin_email)
    new_course(admin, local_classroom.teacher_email, alias="d:owner")
    other = next(
        u.email
        for u in local_classroom.directory.users
        if u.role == "teacher" and u.email != local_classroom.teacher_email
    )
    with pytest.raises(HttpError) as caught:
        admin.courses().patch(id="d:owner", updateMask="ownerId", body={"ownerId": other}).execute()
    assert b"@IneligibleOwner" in caught.value.content
    admin.courses().teachers().create(courseId="d:owner", body={"userId": other}).execute()
    moved = (
        admin.courses().patch(id="d:owner", updateMask="ownerId", body={"ownerId": other}).execute()
    )
    assert moved["ownerId"] == local_classroom.directory.find(other).id  # type: ignore[union-attr]


def test_gradebook_settings_are_read_only_through_the_api(
    local_classroom: RunningClassroom,
) -> None:
    admin = google_service(local_classroom, local_classroom.admin_email)
    new_course(admin, local_classroom.teacher_email, alias="d:grades")
    with pytest.raises(HttpError) as caught:
        admin.courses().patch(
            id="d:grades",
            updateMask="gradebookSettings",
            body={"gradebookSettings": {"calculationType": "WEIGHTED_CATEGORIES"}},
        ).execute()
    assert caught.value.resp.status == 400


def _graded_course(running: RunningClassroom) -> tuple[Any, Any, str, dict[str, Any]]:
    admin = google_service(running, running.admin_email)
    teacher = google_service(running, running.teacher_email)
    new_course(admin, running.teacher_email, alias="d:work", courseState="ACTIVE")
    student = students_of(running, 1)[0]
    admin.courses().students().create(courseId="d:work", body={"userId": student}).execute()
    work = (
        teacher.courses()
        .courseWork()
        .create(
            courseId="d:work",
            body={
                "title": "Lab report",
                "workType": "ASSIGNMENT",
                "state": "PUBLISHED",
                "maxPoints": 20,
                "dueDate": {"year": 2020, "month": 1, "day": 10},
                "dueTime": {"hours": 23, "minutes": 59},
            },
        )
        .execute()
    )
    return admin, teacher, student, work


def test_draft_grades_stay_with_the_teacher_and_return_does_not_assign_them(
    local_classroom: RunningClassroom,
) -> None:
    _, teacher, student_email, work = _graded_course(local_classroom)
    submissions = teacher.courses().courseWork().studentSubmissions()
    found = submissions.list(courseId="d:work", courseWorkId=work["id"]).execute()
    submission = found["studentSubmissions"][0]
    assert submission["late"] is True  # due in 2020, never turned in
    graded = submissions.patch(
        courseId="d:work",
        courseWorkId=work["id"],
        id=submission["id"],
        updateMask="draftGrade",
        body={"draftGrade": 17},
    ).execute()
    assert graded["draftGrade"] == 17 and "assignedGrade" not in graded
    assert graded["updateTime"] > submission["updateTime"]
    student = google_service(local_classroom, student_email)
    mine = (
        student.courses()
        .courseWork()
        .studentSubmissions()
        .get(courseId="d:work", courseWorkId=work["id"], id=submission["id"])
        .execute()
    )
    assert "draftGrade" not in mine
    submissions.return_(courseId="d:work", courseWorkId=work["id"], id=submission["id"]).execute()
    returned = submissions.get(
        courseId="d:work", courseWorkId=work["id"], id=submission["id"]
    ).execute()
    assert returned["state"] == "RETURNED" and "assignedGrade" not in returned


def test_grading_periods_get_ids_and_may_not_overlap(local_classroom: RunningClassroom) -> None:
    admin, teacher, _, _ = _graded_course(local_classroom)
    periods = {
        "gradingPeriods": [
            {"title": "Q1", "startDate": {"year": 2026, "month": 8, "day": 1},
             "endDate": {"year": 2026, "month": 10, "day": 15}},
            {"title": "Q2", "startDate": {"year": 2026, "month": 10, "day": 16},
             "endDate": {"year": 2026, "month": 12, "day": 31}},
        ]
    }  # fmt: skip
    saved = (
        admin.courses()
        .updateGradingPeriodSettings(courseId="d:work", updateMask="gradingPeriods", body=periods)
        .execute()
    )
    assert [p["title"] for p in saved["gradingPeriods"]] == ["Q1", "Q2"]
    assert all(p.get("id") for p in saved["gradingPeriods"])
    periods["gradingPeriods"][1]["startDate"] = {"year": 2026, "month": 10, "day": 1}
    with pytest.raises(HttpError) as caught:
        admin.courses().updateGradingPeriodSettings(
            courseId="d:work", updateMask="gradingPeriods", body=periods
        ).execute()
    assert b"cannot overlap" in caught.value.content
    # The discovery document: "listed in chronological order", "a unique title".
    backwards = {"gradingPeriods": list(reversed(saved["gradingPeriods"]))}
    twice = {"gradingPeriods": [dict(p, title="Q1") for p in saved["gradingPeriods"]]}
    for body, said in ((backwards, b"chronological order"), (twice, b"must be unique")):
        with pytest.raises(HttpError) as caught:
            admin.courses().updateGradingPeriodSettings(
                courseId="d:work", updateMask="gradingPeriods", body=body
            ).execute()
        assert caught.value.resp.status == 400 and said in caught.value.content
    work = teacher.courses().courseWork().create(
        courseId="d:work",
        body={"title": "Quiz", "workType": "ASSIGNMENT", "state": "PUBLISHED", "maxPoints": 5,
              "dueDate": {"year": 2026, "month": 11, "day": 2}, "dueTime": {"hours": 9}},
    ).execute()  # fmt: skip
    assert work["gradingPeriodId"] == saved["gradingPeriods"][1]["id"]


def test_grade_categories_set_in_classrooms_own_pages_are_read_through_the_api(
    local_classroom: RunningClassroom,
) -> None:
    _, teacher, _, _ = _graded_course(local_classroom)
    token = _token(local_classroom, local_classroom.teacher_email)
    answer = httpx.put(
        local_classroom.api_url + "local/v1/courses/d:work/gradebookSettings",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "calculationType": "WEIGHTED_CATEGORIES",
            "gradeCategories": [
                {"name": "Homework", "weight": 300000},
                {"name": "Tests", "weight": 700000},
            ],
        },
    )
    assert answer.status_code == 200
    settings = teacher.courses().get(id="d:work").execute()["gradebookSettings"]
    assert [c["name"] for c in settings["gradeCategories"]] == ["Homework", "Tests"]
    tests_id = settings["gradeCategories"][1]["id"]
    work = teacher.courses().courseWork().create(
        courseId="d:work",
        body={"title": "Unit test", "workType": "ASSIGNMENT", "state": "PUBLISHED",
              "maxPoints": 50, "gradeCategory": {"id": tests_id}},
    ).execute()  # fmt: skip
    assert work["gradeCategory"]["name"] == "Tests"
    with pytest.raises(HttpError) as caught:
        teacher.courses().courseWork().create(
            courseId="d:work",
            body={"title": "X", "workType": "ASSIGNMENT", "gradeCategory": {"id": "nope"}},
        ).execute()
    assert caught.value.resp.status == 400


def test_the_per_user_quota_answers_429_on_a_moving_minute() -> None:
    config = ClassroomConfig(per_user_per_minute=5, per_client_per_minute=100)
    with running_classroom(students=5, config=config) as running:
        admin = google_service(running, running.admin_email)
        for _ in range(5):
            admin.courses().list().execute()
        with pytest.raises(HttpError) as caught:
            admin.courses().list().execute()
        assert caught.value.resp.status == 429
        assert b"RESOURCE_EXHAUSTED" in caught.value.content
        assert b"per user" in caught.value.content
        teacher = google_service(running, running.teacher_email)  # another user still may
        teacher.courses().list().execute()


def test_a_disabled_api_and_a_user_without_classroom_are_refused_as_google_does() -> None:
    with running_classroom(students=5, config=ClassroomConfig(api_enabled=False)) as running:
        with pytest.raises(HttpError) as caught:
            google_service(running, running.admin_email).courses().list().execute()
        assert b"SERVICE_DISABLED" in caught.value.content
    with running_classroom(students=5) as running:
        offline = next(u.email for u in running.directory.users if not u.classroom_enabled)
        with pytest.raises(HttpError) as caught:
            google_service(running, offline).courses().list().execute()
        assert b"@ClassroomApiDisabled" in caught.value.content


def test_state_kept_in_a_file_survives_a_restart(tmp_path) -> None:
    db = str(tmp_path / "classroom.db")
    with running_classroom(students=5, db_path=db) as running:
        new_course(
            google_service(running, running.admin_email), running.teacher_email, alias="d:kept"
        )
    with running_classroom(students=5, db_path=db) as running:
        kept = google_service(running, running.admin_email).courses().get(id="d:kept").execute()
        assert kept["name"] == "Biology"
