"""The consumer against the built-in SIS over HTTP: every profile, both versions, both auth kinds.

The Classroom calls by name, writes that say whether they created or updated, paging that
streams every record exactly once, and filters whose quotes and spaces reach the SIS intact
(and, with OAuth 1.0a, still verify).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from sislink.oneroster.consumer import ConnectionSettings, OneRosterClient
from sislink.oneroster.models import (
    AcademicSession,
    Category,
    Class,
    GUIDRef,
    LineItem,
    Result,
    User,
)
from sislink.oneroster.provider.server import RunningProvider

pytestmark = pytest.mark.anyio
Connect = Callable[..., ConnectionSettings]


async def _class_with_everything(
    sis: OneRosterClient, email: str
) -> tuple[Class, User, Category, AcademicSession]:
    teacher = await sis.find_teacher_by_email(email)
    assert teacher is not None
    klass = (await sis.classes_for_teacher(teacher.sourced_id))[0]
    student = (await sis.students_for_class(klass.sourced_id))[0]
    category = (await sis.categories_for_class(klass.sourced_id))[0]
    period = (await sis.grading_periods_for_term(klass.terms[0].sourced_id))[0]
    return klass, student, category, period


def _line_item(klass: Class, category: Category, period: AcademicSession, title: str) -> LineItem:
    now = datetime.now(UTC).replace(microsecond=0)
    return LineItem(
        sourced_id=str(uuid.uuid4()),
        title=title,
        assign_date=now,
        due_date=now + timedelta(days=3),
        class_=GUIDRef(sourced_id=klass.sourced_id),
        school=GUIDRef(sourced_id=klass.school.sourced_id),
        category=GUIDRef(sourced_id=category.sourced_id),
        grading_period=GUIDRef(sourced_id=period.sourced_id),
        result_value_min=0,
        result_value_max=100,
    )


async def test_classroom_reads_return_models_for_the_teachers_classes(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        teacher = await sis.find_teacher_by_email(running.teacher_email)
        assert isinstance(teacher, User) and teacher.email == running.teacher_email
        assert teacher.has_role("teacher")
        classes = await sis.classes_for_teacher(teacher.sourced_id)
        assert classes and all(isinstance(c, Class) and c.status == "active" for c in classes)
        students = await sis.students_for_class(classes[0].sourced_id)
        assert students and all(s.has_role("student") and s.email for s in students)
        categories = await sis.categories_for_class(classes[0].sourced_id)
        assert categories and all(isinstance(c, Category) for c in categories)
        periods = await sis.grading_periods_for_term(classes[0].terms[0].sourced_id)
        assert periods and {p.type for p in periods} == {"gradingPeriod"}


async def test_unknown_teacher_email_finds_nobody(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        assert await sis.find_teacher_by_email("nobody.here@example.org") is None


async def test_a_filter_value_with_a_quote_and_spaces_reaches_the_sis_intact(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        teacher = await sis.find_teacher_by_email(running.teacher_email)
        assert teacher is not None
        odd_email = f"o'neil and co {uuid.uuid4().hex[:6]}@example.org"
        record = running.store.get("user", teacher.sourced_id)
        assert record is not None
        running.store.put(
            "user", {**record, "sourcedId": f"odd-{odd_email[-20:]}", "email": odd_email}
        )
        found = await sis.find_teacher_by_email(odd_email)
        assert found is not None and found.email == odd_email


async def test_paging_streams_every_record_exactly_once(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        ids = [u.sourced_id async for u in sis.iter_collection("users", page_size=17)]
        assert len(ids) == len(set(ids)) == running.store.count("user")
        enrollments = [r["sourcedId"] async for r in sis.iter_records("enrollments", page_size=500)]
        assert len(set(enrollments)) == running.store.count("enrollment")


async def test_an_endpoint_given_as_a_path_is_the_same_as_by_name(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        teacher = await sis.find_teacher_by_email(running.teacher_email)
        assert teacher is not None
        by_name = [
            c.sourced_id
            async for c in sis.iter_collection("teacher_classes", teacher_id=teacher.sourced_id)
        ]
        by_path = [
            c.sourced_id
            async for c in sis.iter_collection(f"teachers/{teacher.sourced_id}/classes")
        ]
        assert by_name == by_path and by_name
        one = await sis.get(f"classes/{by_name[0]}")
        assert isinstance(one, Class) and one.sourced_id == by_name[0]


async def test_line_item_put_says_created_then_updated_and_delete_removes_it(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        klass, _, category, period = await _class_with_everything(sis, running.teacher_email)
        item = _line_item(klass, category, period, "Essay on rivers")
        first = await sis.put_line_item(item)
        again = await sis.put_line_item(item.model_copy(update={"title": "Essay on seas"}))
        assert first.status_code == 201
        # An update answers 201 without a body (1EdTech's OpenAPI) or 200 with the object.
        assert again.status_code == running.update_status
        assert again.kept is None or again.kept.title == "Essay on seas"
        kept = await sis.get("line_item", id=item.sourced_id)
        assert isinstance(kept, LineItem) and kept.title == "Essay on seas"
        listed = {li.sourced_id for li in await sis.line_items_for_class(klass.sourced_id)}
        assert item.sourced_id in listed
        assert await sis.delete_line_item(item.sourced_id) is True
        assert await sis.delete_line_item(item.sourced_id) is False  # already gone
        listed = {li.sourced_id for li in await sis.line_items_for_class(klass.sourced_id)}
        assert item.sourced_id not in listed


async def test_results_keep_extra_credit_and_exempt_and_can_be_deleted(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        klass, student, category, period = await _class_with_everything(sis, running.teacher_email)
        item = _line_item(klass, category, period, "Quiz")
        await sis.put_line_item(item)
        result = Result(
            sourced_id=str(uuid.uuid4()),
            line_item=GUIDRef(sourced_id=item.sourced_id),
            student=GUIDRef(sourced_id=student.sourced_id),
            class_=GUIDRef(sourced_id=klass.sourced_id),
            score_status="fully graded",
            score=300,
            score_date=date.today(),
        )
        created = await sis.put_result(result)
        assert created.status_code == 201
        assert created.kept is None or created.kept.score == 300
        [read_back] = await sis.results_for_line_item(klass.sourced_id, item.sourced_id)
        assert read_back.score == 300  # extra credit: past the lineItem's 100 points
        exempt = await sis.put_result(
            result.model_copy(update={"score_status": "exempt", "score": None})
        )
        assert exempt.status_code == running.update_status
        [kept] = await sis.results_for_line_item(klass.sourced_id, item.sourced_id)
        assert kept.score_status == "exempt"
        assert await sis.delete_result(result.sourced_id)
        assert await sis.results_for_line_item(klass.sourced_id, item.sourced_id) == []
        await sis.delete_line_item(item.sourced_id)


async def test_a_category_can_be_put(
    profile_sis: tuple[RunningProvider, str], connect: Connect
) -> None:
    running, auth_kind = profile_sis
    async with OneRosterClient(connect(running, auth_kind)) as sis:
        category = Category(sourced_id=str(uuid.uuid4()), title="Projects")
        outcome = await sis.put_category(category)
        assert outcome.status_code == 201
        kept = await sis.get("category", id=category.sourced_id)
        assert isinstance(kept, Category) and kept.title == "Projects"
