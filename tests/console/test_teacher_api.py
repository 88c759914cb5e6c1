"""The teacher's REST API under /api/teacher against the built-in SIS: list, unlink and link a
class, add coursework, set marks, export as a job, read the job and the report; another teacher,
permission off and a missing token are refused in plain words."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sislink.classroom import Actor, Classroom, InvalidInput, open_classroom
from sislink.classroom.models import Person, Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import people
from sislink.classroom.services.api_tokens import create_api_token
from sislink.console.app import create_app
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import connection
from sync.mark_export_world import World, build_world, sis_gradebook


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def world(sis: RunningProvider, tmp_path: Path) -> Iterator[World]:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'api.db'}", secret_box=SecretBox.generate())
    yield asyncio.run(build_world(sis, classroom, students=3))
    classroom.close()


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    app = create_app()
    app.state.classroom = world.classroom
    with TestClient(app) as client:
        yield client


def bearer(
    classroom: Classroom, email: str, *, name: str = "", role: Role = Role.TEACHER
) -> dict[str, str]:
    """A token for the person with this email (made a teacher first if they do not exist)."""
    with classroom.transaction() as session:
        person = people.find_person_by_email(session, email)
        if person is None:
            person = people.create_person(
                session, Actor.system(), name=name or email.split("@")[0], email=email, roles=[role]
            )
        _, token = create_api_token(session, Actor.system(), person)
    return {"Authorization": f"Bearer {token}"}


def student_emails(world: World) -> list[str]:
    with world.classroom.session() as session:
        return [session.get(Person, s).email or "" for s in world.students]  # type: ignore[union-attr]


def detail(response: Any) -> dict[str, str]:
    body: dict[str, dict[str, str]] = response.json()
    return body["detail"]


def test_a_teacher_links_adds_coursework_sets_marks_exports_and_reads_the_report(
    world: World, api: TestClient
) -> None:
    me = bearer(world.classroom, world.teacher_email)
    cls = world.class_id
    (listed,) = api.get("/api/teacher/classes", headers=me).json()
    assert listed["id"] == cls and listed["sis_class_id"] == world.sis_class_id

    gone = api.delete(f"/api/teacher/classes/{cls}/link", headers=me)
    assert gone.status_code == 200 and gone.json()["unlinked"] is True
    assert api.get("/api/teacher/classes", headers=me).json()[0]["sis_class_id"] is None
    not_linked = api.post(f"/api/teacher/classes/{cls}/exports", headers=me)
    assert not_linked.status_code == 409
    assert detail(not_linked)["problem"] == "class_not_linked"
    assert "not linked to a SIS class" in detail(not_linked)["message"]

    offered = api.get("/api/teacher/sis-classes", headers=me)
    assert offered.status_code == 200, offered.text
    assert world.sis_class_id in {c["sourced_id"] for c in offered.json()}
    linked = api.put(
        f"/api/teacher/classes/{cls}/link", headers=me, json={"sis_class_id": world.sis_class_id}
    )
    assert linked.status_code == 200, linked.text
    assert "Homework" in linked.json()["categories"] and linked.json()["grading_periods"]
    assert api.get(f"/api/teacher/classes/{cls}", headers=me).json()["sis_class_id"] == (
        world.sis_class_id
    )

    due = world.due_in_period().date().isoformat()
    essay = api.post(
        f"/api/teacher/classes/{cls}/coursework",
        headers=me,
        json={"title": "Essay", "points": 20, "due": due, "category": "Homework"},
    )
    assert essay.status_code == 201, essay.text
    quiz = api.post(
        f"/api/teacher/classes/{cls}/coursework",
        headers=me,
        json={"title": "Quiz", "points": 10, "due": due, "category": "tests"},
    )
    assert quiz.json()["category"] == "Tests"
    listed_work = api.get(f"/api/teacher/classes/{cls}/coursework", headers=me).json()
    assert [w["title"] for w in listed_work] == ["Essay", "Quiz"]

    a, b, c = student_emails(world)
    essay_marks = f"/api/teacher/classes/{cls}/coursework/{essay.json()['id']}/marks"
    quiz_marks = f"/api/teacher/classes/{cls}/coursework/{quiz.json()['id']}/marks"
    assert api.put(essay_marks, headers=me, json={"student": a, "score": 18}).status_code == 200
    assert (
        api.put(essay_marks, headers=me, json={"student": b, "score": "25"}).json()["score"] == 25
    )
    assert api.put(quiz_marks, headers=me, json={"student": c, "excused": True}).status_code == 200
    bad = api.put(quiz_marks, headers=me, json={"student": a, "score": "abc"})
    assert bad.status_code == 422 and "'abc' is not a number" in detail(bad)["message"]
    both = api.put(quiz_marks, headers=me, json={"student": a, "score": 1, "missing": True})
    assert both.status_code == 422 and "exactly one" in detail(both)["message"]
    nobody = api.put(quiz_marks, headers=me, json={"student": "nobody@x.example", "score": 1})
    assert nobody.status_code == 404 and "nobody@x.example" in detail(nobody)["message"]
    # A student of the school outside the class, by email or SIS identifier: not named.
    with world.classroom.transaction() as session:
        people.create_person(
            session,
            Actor.system(),
            name="Una Other",
            email="una@school.example",
            roles=[Role.STUDENT],
        ).sis_identifier = "S-5005"
    for named in ("una@school.example", "S-5005"):
        outsider = api.put(quiz_marks, headers=me, json={"student": named, "score": 1})
        said = detail(outsider)["message"]
        assert outsider.status_code == 404 and f"No student of this class is {named!r}" in said
        assert "Una" not in said and "S-5005" not in said.replace(repr(named), "")

    dry = api.post(f"/api/teacher/classes/{cls}/exports", headers=me, json={"dry_run": True})
    assert dry.status_code == 202, dry.text
    dry_job = api.get(f"/api/teacher/jobs/{dry.json()['job_id']}", headers=me).json()
    assert dry_job["status"] == "succeeded" and dry_job["report"]["writes"] == 0
    items, _ = asyncio.run(sis_gradebook(world))
    assert items == []  # a dry run sends nothing

    started = api.post(f"/api/teacher/classes/{cls}/exports", headers=me)
    assert started.status_code == 202, started.text
    job = api.get(f"/api/teacher/jobs/{started.json()['job_id']}", headers=me).json()
    assert job["status"] == "succeeded", job
    assert job["report"]["writes"] == 2 + 3 and job["progress"]["total"] == 5

    items, results = asyncio.run(sis_gradebook(world))
    assert sorted(i.title for i in items) == ["Essay", "Quiz"]
    by_title = {i.title: i.sourced_id for i in items}
    assert sorted(r.score for r in results[by_title["Essay"]]) == [18, 25]
    assert [r.score_status for r in results[by_title["Quiz"]]] == ["exempt"]

    report = api.get(f"/api/teacher/classes/{cls}/report", headers=me).json()
    assert report["outcome"] == "succeeded" and report["writes"] == 5
    assert [i["outcome"] for i in report["items"]] == ["exported"] * 5
    students = {i["student"] for i in report["items"] if i["kind"] == "result"}
    assert len(students) == 3 and all("@" in s for s in students)

    again = api.post(f"/api/teacher/classes/{cls}/exports", headers=me)
    assert (
        api.get(f"/api/teacher/jobs/{again.json()['job_id']}", headers=me).json()["report"][
            "writes"
        ]
        == 0
    )
    history = api.get(f"/api/teacher/classes/{cls}/reports", headers=me).json()
    assert [(h["outcome"], h["writes"]) for h in history] == [
        ("succeeded", 0),
        ("succeeded", 5),
        ("dry_run", 0),
    ]
    assert "items" not in history[0]
    first = api.get(f"/api/teacher/classes/{cls}/reports/{history[1]['report_id']}", headers=me)
    assert len(first.json()["items"]) == 5


def test_a_teacher_is_told_why_an_item_was_skipped(world: World, api: TestClient) -> None:
    me = bearer(world.classroom, world.teacher_email)
    cls = world.class_id
    made = api.post(
        f"/api/teacher/classes/{cls}/coursework",
        headers=me,
        json={"title": "Undated", "points": 5, "category": "Homework"},
    )
    assert made.status_code == 201 and made.json()["due"] is None
    job_id = api.post(f"/api/teacher/classes/{cls}/exports", headers=me).json()["job_id"]
    job = api.get(f"/api/teacher/jobs/{job_id}", headers=me).json()
    # Nothing was sent: the export needs attention (not "succeeded"), with the reason.
    assert job["status"] == "needs_attention"
    assert job["report"]["attention"]["count"] == 1
    assert "due date" in job["report"]["attention"]["reasons"][0]
    (item,) = api.get(f"/api/teacher/classes/{cls}/report", headers=me).json()["items"]
    assert item["outcome"] == "skipped" and item["coursework"] == "Undated"
    assert "due date" in item["reason"]


def test_another_teachers_class_is_refused_by_url(world: World, api: TestClient) -> None:
    me = bearer(world.classroom, world.teacher_email)
    other = bearer(world.classroom, "other@school.example")
    cls = world.class_id
    assert api.get("/api/teacher/classes", headers=other).json() == []
    for method, url, body in [
        ("GET", f"/api/teacher/classes/{cls}", None),
        ("GET", f"/api/teacher/classes/{cls}/coursework", None),
        ("POST", f"/api/teacher/classes/{cls}/coursework", {"title": "Mine now", "points": 1}),
        ("GET", f"/api/teacher/classes/{cls}/report", None),
        ("GET", f"/api/teacher/classes/{cls}/reports", None),
        ("DELETE", f"/api/teacher/classes/{cls}/link", None),
        ("PUT", f"/api/teacher/classes/{cls}/link", {"sis_class_id": world.sis_class_id}),
        ("POST", f"/api/teacher/classes/{cls}/exports", None),
    ]:
        answer = api.request(method, url, headers=other, json=body)
        assert answer.status_code == 403, (method, url, answer.text)
        assert detail(answer)["problem"] in {"forbidden", "not_your_class"}
        assert (
            "teach" in detail(answer)["message"] or "primary teacher" in detail(answer)["message"]
        )
    assert api.get("/api/teacher/classes/999999/coursework", headers=other).status_code == 404
    job_id = api.post(f"/api/teacher/classes/{cls}/exports", headers=me).json()["job_id"]
    assert api.get(f"/api/teacher/jobs/{job_id}", headers=other).status_code == 404
    assert api.get(f"/api/teacher/jobs/{job_id}", headers=me).status_code == 200
    assert api.get(f"/api/teacher/classes/{cls}", headers=me).json()["sis_class_id"] == (
        world.sis_class_id
    )


def test_a_token_stops_working_for_someone_no_longer_a_teacher(
    world: World, api: TestClient
) -> None:
    """The pages let in only administrators and teachers, and so does the API: an
    administrator who takes away a person's teacher role takes away their token's use too,
    though the roster still names them the class's teacher."""
    me = bearer(world.classroom, world.teacher_email)
    cls = world.class_id
    assert api.get(f"/api/teacher/classes/{cls}/coursework", headers=me).status_code == 200
    with world.classroom.transaction() as session:
        person = people.find_person_by_email(session, world.teacher_email)
        assert person is not None
        people.set_roles(session, Actor.system(), person.id, [])
    for method, url, body in [
        ("GET", f"/api/teacher/classes/{cls}/coursework", None),
        ("POST", f"/api/teacher/classes/{cls}/coursework", {"title": "Still mine", "points": 1}),
        ("POST", f"/api/teacher/classes/{cls}/exports", None),
        ("GET", "/api/teacher/tokens", None),
    ]:
        answer = api.request(method, url, headers=me, json=body)
        assert answer.status_code == 403, (method, url, answer.text)
        assert detail(answer)["problem"] == "forbidden"
        assert "no longer an administrator or teacher" in detail(answer)["message"]
    # Nor is a token made for a student any use: none is made (one made before was refused
    # above, as the teacher's is now).
    with world.classroom.transaction() as session:
        pupil = people.create_person(
            session,
            Actor.system(),
            name="Pupil",
            email="pupil@school.example",
            roles=[Role.STUDENT],
        )
        with pytest.raises(InvalidInput, match="not an administrator or teacher"):
            create_api_token(session, Actor.system(), pupil)


def test_permission_off_refuses_export_with_a_clear_message(world: World, api: TestClient) -> None:
    me = bearer(world.classroom, world.teacher_email)
    connection.set_teacher_export(world.classroom, Actor.system(), False)
    refused = api.post(f"/api/teacher/classes/{world.class_id}/exports", headers=me)
    assert refused.status_code == 403
    assert detail(refused)["problem"] == "permission_off"
    assert "switched off for teachers" in detail(refused)["message"]
    everything = api.post("/api/teacher/exports", headers=me)
    assert everything.status_code == 403 and "switched off" in detail(everything)["message"]
    connection.set_teacher_export(world.classroom, Actor.system(), True)
    allowed = api.post("/api/teacher/exports", headers=me)
    assert allowed.status_code == 202
    job = api.get(f"/api/teacher/jobs/{allowed.json()['job_id']}", headers=me).json()
    assert job["status"] == "succeeded" and job["kind"] == "mark_export_all"


def test_disconnected_refuses_export_and_no_token_is_401(world: World, api: TestClient) -> None:
    assert api.get("/api/teacher/classes").status_code == 401
    wrong = api.get("/api/teacher/classes", headers={"Authorization": "Bearer slk_nope"})
    assert wrong.status_code == 401
    me = bearer(world.classroom, world.teacher_email)
    connection.disconnect(world.classroom, Actor.system())
    refused = api.post(f"/api/teacher/classes/{world.class_id}/exports", headers=me)
    assert refused.status_code == 409 and detail(refused)["problem"] == "disconnected"
    offline = api.get("/api/teacher/sis-classes", headers=me)
    assert offline.status_code == 409 and detail(offline)["problem"] == "not_connected"


def test_missing_and_excused_marks_replace_a_score_and_go_as_the_class_chose(
    world: World, api: TestClient
) -> None:
    me = bearer(world.classroom, world.teacher_email)
    cls = world.class_id
    settings_url = f"/api/teacher/classes/{cls}/export-settings"
    assert api.get(settings_url, headers=me).json() == {
        "class_id": cls,
        "missing_as": "zero",
        "export_drafts": False,
        "extra_credit_limit": 2.0,
    }
    essay = api.post(
        f"/api/teacher/classes/{cls}/coursework",
        headers=me,
        json={
            "title": "Essay",
            "points": 20,
            "due": world.due_in_period().date().isoformat(),
            "category": "Homework",
        },
    ).json()
    marks_url = f"/api/teacher/classes/{cls}/coursework/{essay['id']}/marks"
    a, b, c = student_emails(world)
    for email, score in ((a, 15), (b, 12), (c, 11)):
        assert api.put(marks_url, headers=me, json={"student": email, "score": score}).is_success
    missing = api.put(marks_url, headers=me, json={"student": a, "missing": True}).json()
    assert (missing["score"], missing["excused"], missing["missing"]) == (None, False, True)
    excused = api.put(marks_url, headers=me, json={"student": b, "excused": True}).json()
    assert (excused["score"], excused["excused"], excused["missing"]) == (None, True, False)
    draft = api.put(marks_url, headers=me, json={"student": c, "score": 13, "draft": True}).json()
    assert (draft["score"], draft["state"]) == (13, "draft")

    changed = api.patch(settings_url, headers=me, json={"missing_as": "not_submitted"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "class_id": cls,
        "missing_as": "not_submitted",
        "export_drafts": False,
        "extra_credit_limit": 2.0,
    }
    job_id = api.post(f"/api/teacher/classes/{cls}/exports", headers=me).json()["job_id"]
    assert api.get(f"/api/teacher/jobs/{job_id}", headers=me).json()["status"] == "succeeded"
    items, results = asyncio.run(sis_gradebook(world))
    sis_id = {world.sis_students[s]: e for s, e in zip(world.students, (a, b, c), strict=True)}
    held = {sis_id[r.student.sourced_id]: r for r in results[items[0].sourced_id]}
    assert set(held) == {a, b}  # c's mark is a draft: it stays home
    assert (held[a].score_status, held[a].score) == ("not submitted", None)
    assert (held[b].score_status, held[b].score) == ("exempt", None)

    drafts = api.patch(settings_url, headers=me, json={"export_drafts": True})
    assert drafts.json()["export_drafts"] is True and drafts.json()["missing_as"] == "not_submitted"
    job_id = api.post(f"/api/teacher/classes/{cls}/exports", headers=me).json()["job_id"]
    assert api.get(f"/api/teacher/jobs/{job_id}", headers=me).json()["report"]["writes"] == 1
    _, results = asyncio.run(sis_gradebook(world))
    assert 13 in {r.score for r in results[items[0].sourced_id]}


def test_export_settings_are_refused_to_others_and_bad_values_are_explained(
    world: World, api: TestClient
) -> None:
    me = bearer(world.classroom, world.teacher_email)
    other = bearer(world.classroom, "other@school.example")
    url = f"/api/teacher/classes/{world.class_id}/export-settings"
    assert api.get(url).status_code == 401
    seen = api.get(url, headers=other)
    assert seen.status_code == 403 and "You do not teach" in detail(seen)["message"]
    changed = api.patch(url, headers=other, json={"export_drafts": True})
    assert changed.status_code == 403 and "Only the primary teacher" in detail(changed)["message"]
    bad = api.patch(url, headers=me, json={"missing_as": "blank", "export_drafts": True})
    assert bad.status_code == 422 and "'not-submitted'" in detail(bad)["message"]
    typo = api.patch(url, headers=me, json={"missingAs": "zero"})
    assert typo.status_code == 422 and "missingAs" in typo.text
    assert api.get(url, headers=me).json()["export_drafts"] is False  # nothing changed
    assert api.get("/api/teacher/classes/999999/export-settings", headers=me).status_code == 404


def test_a_mark_set_through_the_api_follows_the_same_rule_as_every_other_way(
    world: World, api: TestClient
) -> None:
    me = bearer(world.classroom, world.teacher_email)
    cls = world.class_id
    essay = api.post(
        f"/api/teacher/classes/{cls}/coursework",
        headers=me,
        json={"title": "Essay", "points": 20, "category": "Homework"},
    ).json()
    marks_url = f"/api/teacher/classes/{cls}/coursework/{essay['id']}/marks"
    a, _, _ = student_emails(world)
    with world.classroom.transaction() as session:
        found = people.find_person_by_email(session, a)
        assert found is not None
        found.sis_identifier = "S-1001"
    for score, said in (
        ("1e3", "exponent notation"),
        ("\u0661\u0665", "digits other than 0-9"),
        (1e20, "more than 2 times its 20 points"),
        (41, "more than 2 times its 20 points"),
        ("8,5", "has a comma"),
    ):
        refused = api.put(marks_url, headers=me, json={"student": a, "score": score})
        assert refused.status_code in (400, 422), refused.text
        assert said in refused.text, refused.text
    by_id = api.put(marks_url, headers=me, json={"student": "S-1001", "score": 40})
    assert by_id.status_code == 200, by_id.text
    assert (by_id.json()["student"], by_id.json()["score"]) == (a, 40)  # extra credit, at 2x
    nobody = api.put(marks_url, headers=me, json={"student": "S-404", "score": 4})
    assert nobody.status_code == 404
    assert "No student of this class is 'S-404'" in nobody.text
    raised = api.patch(
        f"/api/teacher/classes/{cls}/export-settings",
        headers=me,
        json={"extra_credit_limit": 3},
    )
    assert raised.json()["extra_credit_limit"] == 3.0
    more = api.put(marks_url, headers=me, json={"student": a, "score": 60})
    assert more.status_code == 200 and more.json()["score"] == 60
