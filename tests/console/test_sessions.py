"""Console sessions: signed cookies that cannot be forged or changed, HttpOnly and SameSite, a
CSRF token on every form, and sessions kept in the database that end, in every browser and for
every saved cookie, with sign-out, a password change or a disabled account."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from console.console_world import ADMIN_EMAIL, PASSWORD, console
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import LoginAccount, Role
from sislink.classroom.services import accounts, people
from sislink.console.sessions import COOKIE_NAME, SessionCodec, SessionData

KEY = b"k" * 32


def test_a_session_cookie_reads_back_as_it_was_written() -> None:
    codec = SessionCodec(KEY)
    data = SessionData(session_key="abc")
    assert codec.loads(codec.dumps(data)) == data


def test_a_changed_or_foreign_session_cookie_is_refused() -> None:
    codec = SessionCodec(KEY)
    value = codec.dumps(SessionData(session_key="seven"))
    payload, signature = value.split(".")
    forged = SessionCodec(b"x" * 32).dumps(SessionData(session_key="one"))
    other_person = codec.dumps(SessionData(session_key="one")).split(".")[0] + "." + signature
    assert codec.loads(forged) is None
    assert codec.loads(other_person) is None
    assert codec.loads(payload) is None
    assert codec.loads("") is None


def test_an_old_session_cookie_has_expired() -> None:
    codec = SessionCodec(KEY, max_age_s=60)
    data = SessionData(session_key="seven", issued_at=1000)
    assert codec.loads(codec.dumps(data), now=1059) == data
    assert codec.loads(codec.dumps(data), now=1061) is None


def test_the_csrf_token_must_match_exactly() -> None:
    data = SessionData()
    assert data.csrf_matches(data.csrf_token)
    assert not data.csrf_matches(data.csrf_token + "x")
    assert not data.csrf_matches("")
    assert not data.csrf_matches(None)


def test_signing_in_sets_an_httponly_samesite_cookie_and_a_new_csrf_token(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        browser.get("/login")
        anonymous_token = browser.token
        answer = browser.post(
            "/login", {"email": ADMIN_EMAIL, "password": PASSWORD}, follow_redirects=False
        )
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}=")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        browser.get("/admin/sis")
        assert browser.token and browser.token != anonymous_token


def test_a_form_without_this_sessions_csrf_token_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        browser.sign_in(ADMIN_EMAIL)
        browser.get("/admin/roster")
        refused = browser.client.post(
            "/admin/roster/schedule",
            data={"enabled": "on", "interval_minutes": "30", "csrf_token": "not-the-token"},
        )
        assert refused.status_code == 403
        assert "reload the page" in refused.text
        missing = browser.post("/admin/roster/schedule", {"interval_minutes": "30"}, csrf=False)
        assert missing.status_code == 403
        page = browser.get("/admin/roster")
        assert 'value="360"' in page.text  # the default interval, unchanged


def test_signing_out_ends_the_session(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        browser.sign_in(ADMIN_EMAIL)
        assert browser.get("/admin/sis").status_code == 200
        browser.post("/logout")
        gone = browser.get("/admin/sis", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


def test_a_password_change_ends_sessions_made_before_it(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        browser.sign_in(ADMIN_EMAIL)
        assert browser.get("/admin/sis").status_code == 200
        with served.classroom.transaction() as session:
            person = people.find_person_by_email(session, ADMIN_EMAIL)
            assert person is not None
            accounts.set_password(session, Actor.system(), person.id, "another long password")
        stale = browser.get("/admin/sis", follow_redirects=False)
        assert stale.status_code == 303


def test_passwords_are_kept_as_argon2_hashes_only(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        person = people.create_person(
            session, Actor.system(), name="T", email="t@school.example", roles=[Role.TEACHER]
        )
        accounts.set_password(session, Actor.system(), person.id, PASSWORD)
    with classroom.transaction() as session:
        stored = session.scalars(select(LoginAccount.password_hash)).one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert accounts.sign_in(session, "T@School.example", PASSWORD) is not None
        assert accounts.sign_in(session, "t@school.example", PASSWORD + "!") is None
        assert accounts.sign_in(session, "nobody@school.example", PASSWORD) is None


def test_the_session_signing_key_is_made_once_and_kept_sealed(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        first = accounts.session_signing_key(session, classroom.secret_box)
    with classroom.transaction() as session:
        assert accounts.session_signing_key(session, classroom.secret_box) == first
        from sislink.classroom.models import ConsoleKey

        sealed = session.scalars(select(ConsoleKey.key_sealed)).one()
        assert first.hex() not in sealed


def test_a_cookie_saved_before_signing_out_no_longer_works_nor_do_other_sessions(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        browser.sign_in(ADMIN_EMAIL)
        saved = browser.client.cookies.get(COOKIE_NAME)
        assert saved
        elsewhere = served.client()
        elsewhere.sign_in(ADMIN_EMAIL)
        assert elsewhere.get("/admin/sis").status_code == 200
        browser.post("/logout")
        replayed = served.client()
        replayed.client.cookies.set(COOKIE_NAME, saved)
        assert replayed.get("/admin/sis", follow_redirects=False).status_code == 303
        assert elsewhere.get("/admin/sis", follow_redirects=False).status_code == 303


def test_a_cookie_saved_before_a_password_change_no_longer_works(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        browser = served.client()
        browser.sign_in(ADMIN_EMAIL)
        saved = browser.client.cookies.get(COOKIE_NAME)
        with served.classroom.transaction() as session:
            person = people.find_person_by_email(session, ADMIN_EMAIL)
            assert person is not None
            accounts.set_password(session, Actor.system(), person.id, "another long password")
        replayed = served.client()
        replayed.client.cookies.set(COOKIE_NAME, str(saved))
        assert replayed.get("/admin/sis", follow_redirects=False).status_code == 303


def test_disabling_an_account_ends_its_sessions_and_it_cannot_sign_in(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        teacher_id = served.person_with_password("tom@school.example", Role.TEACHER, "Tom")
        browser = served.client()
        browser.sign_in("tom@school.example")
        assert browser.get("/classes").status_code == 200
        with served.classroom.transaction() as session:
            accounts.disable_account(session, Actor.system(), teacher_id)
        assert browser.get("/classes", follow_redirects=False).status_code == 303
        again = served.client().sign_in("tom@school.example")
        assert again.status_code == 401


def test_a_session_of_a_person_no_longer_allowed_in_does_not_come_back(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        teacher_id = served.person_with_password("tom@school.example", Role.TEACHER, "Tom")
        browser = served.client()
        browser.sign_in("tom@school.example")
        with served.classroom.transaction() as session:
            people.set_roles(session, Actor.system(), teacher_id, set())
        assert browser.get("/classes", follow_redirects=False).status_code == 303
        with served.classroom.transaction() as session:
            people.set_roles(session, Actor.system(), teacher_id, {Role.TEACHER})
        assert browser.get("/classes", follow_redirects=False).status_code == 303


def test_a_cookie_or_form_token_with_letters_outside_ascii_is_refused_not_a_crash(
    tmp_path: Path,
) -> None:
    """A cookie another site under the same domain set (or a browser mangled) must not keep
    anyone from the sign-in page: refused as any foreign cookie is."""
    codec = SessionCodec(KEY)
    assert codec.loads("é.é") is None
    assert codec.loads(codec.dumps(SessionData()).split(".")[0] + ".é") is None
    assert codec.unsign_text("é.é") is None
    assert not SessionData().csrf_matches("é")
    with console(tmp_path) as served:
        browser = served.client()
        foreign = f"{COOKIE_NAME}=\u00e9t\u00e9.\u00e9; sislink_flash=\u00e9.\u00e9".encode()
        assert browser.get("/login", headers={"Cookie": foreign}).status_code == 200
        refused = browser.post("/language", {"language": "es", "csrf_token": "\u00e9"}, csrf=False)
        assert refused.status_code == 403
        assert browser.sign_in(ADMIN_EMAIL).status_code == 200


def test_no_page_is_shown_in_another_sites_frame(tmp_path: Path) -> None:
    """A site of the same domain gets the session cookie in a frame (SameSite=Lax is about
    sites): the pages refuse to be framed, so none can be clicked through unseen."""
    with console(tmp_path) as served:
        browser = served.client()
        for page in (browser.get("/login"), browser.sign_in(ADMIN_EMAIL), browser.get("/nope")):
            if page.headers.get("content-type", "").startswith("text/html"):
                assert page.headers["x-frame-options"] == "DENY"
                assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert browser.get("/admin/sis").headers["x-frame-options"] == "DENY"
