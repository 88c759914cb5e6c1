"""The administrator's People, Classes and Accounts pages and the audit trail in words, over
HTTP: search and filters, keyset pages (every person once), who has no email, a person's
classes; a set-password link made, roles changed, an account disabled, an API token made;
teachers are refused; audit lines name people and classes, not `class:1`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.console_world import ADMIN_EMAIL, PASSWORD, Console, PageClient, console
from sislink.classroom import Actor
from sislink.classroom.models import ApiToken, EnrolmentRole, LoginAccount, Role
from sislink.classroom.services import classes, directory, people


@pytest.fixture
def district(tmp_path: Path) -> Iterator[tuple[Console, PageClient, dict[str, int]]]:
    """23 students (two without email), two teachers and their classes, one linked."""
    with console(tmp_path) as served:
        ids: dict[str, int] = {}
        with served.classroom.transaction() as session:
            system = Actor.system()
            for n in range(23):
                person = people.create_person(
                    session,
                    system,
                    name=f"Student {n:02d}",
                    email=f"s{n}@school.example",
                    roles=[Role.STUDENT],
                )
                if n in (4, 17):  # as the SIS sends some students: without an email
                    person.email = person.email_key = None
                person.sis_identifier = f"ID-{n:03d}"
                ids[f"s{n}"] = person.id
            for name in ("Tess Teacher", "Uma Underwood"):
                teacher = people.create_person(
                    session,
                    system,
                    name=name,
                    email=f"{name.split()[0].lower()}@school.example",
                    roles=[Role.TEACHER],
                )
                ids[name] = teacher.id
            art = classes.create_class(
                session, system, title="Art 1", primary_teacher_id=ids["Tess Teacher"]
            )
            bio = classes.create_class(
                session, system, title="Biology 2", primary_teacher_id=ids["Uma Underwood"]
            )
            for n in range(23):
                classes.enrol(session, system, art.id, ids[f"s{n}"], EnrolmentRole.STUDENT)
            classes.enrol(session, system, bio.id, ids["s3"], EnrolmentRole.STUDENT)
            ids["art"], ids["bio"] = art.id, bio.id
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        yield served, admin, ids


def test_people_are_searched_filtered_and_paged_with_who_has_no_email(
    district: tuple[Console, PageClient, dict[str, int]],
) -> None:
    _, admin, _ids = district
    students = admin.get("/admin/people?role=student")
    assert "23 people." in students.text
    assert "2 of them have no email" in students.text
    # Keyset pages of 50 are too long for 23: ask for the pages the way the links do.
    seen: list[str] = re.findall(r'href="/admin/people/(\d+)"', students.text)
    assert len(seen) == 23 and 'id="next-page"' not in students.text

    no_email = admin.get("/admin/people?role=student&no_email=on")
    assert "2 people." in no_email.text
    assert "Student 04" in no_email.text and "Student 17" in no_email.text
    assert no_email.text.count('class="badge warn">no email') == 2

    found = admin.get("/admin/people?q=id-003")
    assert "1 person matching" in found.text and "Student 03" in found.text
    row = found.text.split("Student 03")[1].split("</tr>")[0]
    assert "Art 1" in row and "Biology 2" in row  # their classes, on the row
    assert admin.get("/admin/people?q=100%25").text.count("/admin/people/") == 0  # % is literal


def test_the_pages_are_keyset_pages_that_show_everyone_once(
    district: tuple[Console, PageClient, dict[str, int]],
) -> None:
    served, admin, _ = district
    with served.classroom.session() as session:
        admin_actor = Actor.system()
        names: list[str] = []
        after = None
        while True:
            page = directory.people_page(session, admin_actor, role="student", after=after, limit=7)
            names += [row.name for row in page.rows]
            after = page.next_after
            if after is None:
                break
    assert names == sorted(f"Student {n:02d}" for n in range(23))
    # The page's link carries the keyset.
    first = admin.get("/admin/people?role=student")
    assert 'id="next-page"' not in first.text


def test_classes_show_teacher_students_link_state_and_filter(
    district: tuple[Console, PageClient, dict[str, int]],
) -> None:
    _served, admin, _ids = district
    page = admin.get("/admin/classes")
    assert "2 classes: 0 linked, 2 not linked." in page.text
    art = page.text.split(">Art 1</a>")[1].split("</tr>")[0]
    assert "Tess Teacher" in art and "<td>23</td>" in art and "not linked" in art
    assert "never" in art
    assert "1 class matching" in admin.get("/admin/classes?q=uma").text
    assert "0 classes" in admin.get("/admin/classes?link=linked").text


def test_an_administrator_invites_resets_changes_roles_disables_and_makes_a_token(
    district: tuple[Console, PageClient, dict[str, int]],
) -> None:
    served, admin, ids = district
    tess = ids["Tess Teacher"]
    page = admin.get(f"/admin/people/{tess}")
    assert "no password and no invitation" in page.text
    assert "Art 1" in page.text
    invited = admin.post(f"/admin/people/{tess}/invite", {})
    link = re.search(r"(http://[^<\s]+/set-password\?token=[^<\s]+)</code>", invited.text)
    assert link is not None, invited.text
    teacher = served.client()
    token = link.group(1).split("token=")[1]
    teacher.get(f"/set-password?token={token}")
    done = teacher.post(
        "/set-password", {"token": token, "password": PASSWORD, "confirm": PASSWORD}
    )
    assert done.status_code == 200
    assert "signs in with a password" in admin.get(f"/admin/people/{tess}").text

    made = admin.post(f"/admin/people/{tess}/tokens", {"label": "gradebook sync"})
    assert 'id="new-token"' in made.text and "gradebook sync" in made.text
    roles = admin.post(f"/admin/people/{tess}/roles", {"teacher": "on", "admin": "on"})
    assert "roles are now: admin, teacher." in roles.text

    disabled = admin.post(f"/admin/people/{tess}/disable", {})
    assert "account is disabled" in disabled.text and "1 API tokens revoked" in disabled.text
    with served.classroom.session() as session:
        assert session.get(LoginAccount, tess) is None
        live = [t for t in session.query(ApiToken).all() if t.revoked_at is None]
        assert live == []
    assert teacher.get("/classes").url.path == "/login"

    # Accounts: invite by email, with a plain sentence for an unknown one.
    unknown = admin.post("/admin/accounts/invite", {"email": "nobody@school.example"})
    assert unknown.status_code == 400 and "No person has the email" in unknown.text
    assert "sislink users" not in unknown.text and "the Roster page" in unknown.text
    uma = admin.post("/admin/accounts/invite", {"email": "uma@school.example"})
    assert "/set-password?token=" in uma.text and "Uma Underwood" in uma.text
    # API tokens are made from the tokens page too, shown once.
    from_tokens = admin.post("/admin/tokens/new", {"email": "uma@school.example", "label": "x"})
    assert 'id="new-token"' in from_tokens.text


def test_teachers_cannot_open_the_administrators_pages(
    district: tuple[Console, PageClient, dict[str, int]],
) -> None:
    served, _, _ = district
    served.person_with_password("tess@school.example", Role.TEACHER)
    teacher = served.client()
    teacher.sign_in("tess@school.example")
    for url in ("/admin/people", "/admin/classes", "/admin/accounts", "/admin/people/1"):
        assert teacher.get(url).status_code == 403, url


def test_the_audit_trail_says_who_did_what_to_whom_in_names(
    district: tuple[Console, PageClient, dict[str, int]],
) -> None:
    _served, admin, ids = district
    admin.post(f"/admin/people/{ids['Uma Underwood']}/invite", {})
    activity = admin.get("/admin/activity")
    lines = activity.text.split('id="audit-lines"')[1].split("</ul>")[0]
    assert "Ada Admin (ada@district.example) sent a set-password link to Uma Underwood" in lines
    assert f'href="/admin/people/{ids["Uma Underwood"]}"' in lines
    assert (
        "sislink (the command line or a scheduled job) enrolled Student 03 (s3@school.example) as student in Biology 2"
        in lines
    )
    assert "person:" not in lines and "class:" not in lines
