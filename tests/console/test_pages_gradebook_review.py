"""The gradebook's save where a review found it wrong: a page opened before a mark was changed
elsewhere (another tab, a co-teacher, a CSV import) does not undo that change when saved; a cell
typed for coursework deleted (or a student who left) since the page was opened is not dropped
silently; and the gradebook's form, read with room for 20,000 fields, has a size it may not
pass (refused in one sentence, nothing saved)."""

from __future__ import annotations

from html.parser import HTMLParser

from sqlalchemy import select

from console import test_pages_gradebook_real_size as real_size
from console.test_pages_gradebook_real_size import School, add_coursework
from sislink.classroom import Actor
from sislink.classroom.models import Mark, Person
from sislink.classroom.services import coursework as coursework_service
from sislink.classroom.services import marks, people
from sislink.console.pages.classes import GRADEBOOK_MAX_BYTES
from sislink.oneroster.provider.server import RunningProvider

# The real-size tests' fixtures: the built-in SIS, and a school connected to it with the
# roster imported and its teacher signed in.
sis = real_size.sis
school = real_size.school


class _GridForm(HTMLParser):
    """The fields of the gradebook's form as the page serves them (what a browser would post
    back untouched)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.inside = found.get("id") == "grid-form"
        elif tag == "input" and self.inside and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def served_form(page: str) -> dict[str, str]:
    parser = _GridForm()
    parser.feed(page)
    parser.fields.pop("csrf_token", None)  # PageClient sends the current one
    return parser.fields


def score_of(school: School, coursework_id: int, student_id: int) -> float | None:
    with school.served.classroom.session() as session:
        return session.scalars(
            select(Mark.score).where(
                Mark.coursework_id == coursework_id, Mark.student_id == student_id
            )
        ).first()


def as_teacher(
    school: School, email: str, coursework_id: int, student_id: int, score: float
) -> None:
    with school.served.classroom.transaction() as session:
        me = people.find_person_by_email(session, email)
        assert me is not None
        marks.set_mark(session, Actor.of(me), coursework_id, student_id, score=score)


def test_a_page_opened_before_a_mark_changed_elsewhere_does_not_undo_it(
    school: School, sis: RunningProvider
) -> None:
    teacher, cid = school.teacher, school.class_id
    first, second = school.students[:2]
    essay = add_coursework(school.served, sis.teacher_email, cid, title="Essay", max_points=20)
    teacher.post(f"/classes/{cid}/gradebook", {f"m{essay}_{first}": "5", f"m{essay}_{second}": "6"})
    form = served_form(teacher.get(f"/classes/{cid}/gradebook").text)
    assert form[f"m{essay}_{first}"] == "5"

    # Another tab (or a co-teacher, or a CSV import) changes the first student's mark.
    as_teacher(school, sis.teacher_email, essay, first, 9)
    # The page opened before is saved with only the second student's mark changed.
    answer = teacher.post(f"/classes/{cid}/gradebook", {**form, f"m{essay}_{second}": "7"})

    assert score_of(school, essay, second) == 7
    assert score_of(school, essay, first) == 9  # not undone by the page's 5
    assert "after you opened the page" in answer.text
    assert "9" in answer.text


def test_a_cell_of_coursework_deleted_since_the_page_was_opened_is_not_dropped_silently(
    school: School, sis: RunningProvider
) -> None:
    teacher, cid = school.teacher, school.class_id
    first = school.students[0]
    essay = add_coursework(school.served, sis.teacher_email, cid, title="Essay", max_points=20)
    lab = add_coursework(school.served, sis.teacher_email, cid, title="Lab", max_points=10)
    form = served_form(teacher.get(f"/classes/{cid}/gradebook").text)
    with school.served.classroom.transaction() as session:
        me = people.find_person_by_email(session, sis.teacher_email)
        assert me is not None
        coursework_service.delete_coursework(session, Actor.of(me), lab)

    answer = teacher.post(
        f"/classes/{cid}/gradebook", {**form, f"m{lab}_{first}": "8", f"m{essay}_{first}": "4"}
    )

    assert score_of(school, essay, first) == 4
    assert answer.status_code == 400
    assert "1 cell was not saved" in answer.text
    assert "no longer in the class" in answer.text


def test_a_gradebook_form_past_its_size_is_refused_whole(
    school: School, sis: RunningProvider
) -> None:
    teacher, cid = school.teacher, school.class_id
    first = school.students[0]
    essay = add_coursework(school.served, sis.teacher_email, cid, title="Essay", max_points=20)
    teacher.get(f"/classes/{cid}/gradebook")
    answer = teacher.post(
        f"/classes/{cid}/gradebook",
        # Each field under Starlette's 1 MB a field (20,000 of them would be 20 GB read).
        {
            f"m{essay}_{first}": "5",
            **{f"padding{n}": "x" * (GRADEBOOK_MAX_BYTES // 3) for n in range(4)},
        },
    )
    assert answer.status_code == 413
    assert "too large" in answer.text
    assert score_of(school, essay, first) is None
    # A real class's form is far below it: 100 students x 199 coursework of 6-character marks.
    assert 100 * 199 * len("m12345_123456=100.25&") < GRADEBOOK_MAX_BYTES


HOSTILE_NAME = 'O\'Brien "Bo" & <script>alert(1)</script>'
HOSTILE_TITLE = 'Lab "1" & <img src=x onerror=alert(2)>'


class _Cells(HTMLParser):
    """Each grid input's aria-label and title, and how many images the page has."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self.titles: list[str] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("aria-label"):
            self.labels.append(str(found["aria-label"]))
            if found.get("title"):
                self.titles.append(str(found["title"]))
        if tag == "img":
            self.images += 1


def test_names_and_titles_are_text_in_every_place_of_the_grid(
    school: School, sis: RunningProvider
) -> None:
    teacher, cid = school.teacher, school.class_id
    first = school.students[0]
    with school.served.classroom.transaction() as session:
        person = session.get(Person, first)
        assert person is not None
        person.name = HOSTILE_NAME
    lab = add_coursework(school.served, sis.teacher_email, cid, title=HOSTILE_TITLE, max_points=10)
    teacher.post(f"/classes/{cid}/gradebook", {f"m{lab}_{first}": "5"})
    # A refused cell: its error (with the name and title) in the cell's title and under it.
    answer = teacher.post(f"/classes/{cid}/gradebook", {f"m{lab}_{first}": "five"})
    assert answer.status_code == 400
    page = answer.text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    parsed = _Cells()
    parsed.feed(page)
    assert f"{HOSTILE_NAME}, {HOSTILE_TITLE}" in parsed.labels
    assert any(t.startswith(f"{HOSTILE_NAME}, {HOSTILE_TITLE}: ") for t in parsed.titles)
    assert parsed.images == 0
