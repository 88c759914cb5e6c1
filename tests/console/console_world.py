"""The console served in-process over a SQLite classroom, with a form-filling client that signs
in and sends each form's CSRF token, as a browser does. Used by tests/console/test_pages_*.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import accounts, people
from sislink.console.app import create_app
from sislink.console.background import BackgroundWork
from sislink.oneroster.provider.server import RunningProvider
from sislink.sync.connection import partners

ADMIN_EMAIL = "ada@district.example"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class PageClient:
    """A TestClient that reads the CSRF token from the last page and sends it with forms."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token = ""

    def get(self, url: str, **options: object) -> httpx.Response:
        answer = self.client.get(url, **options)  # type: ignore[arg-type]
        found = CSRF.search(answer.text)
        if found:
            self.token = found.group(1)
        return answer

    def post(
        self, url: str, data: dict[str, str] | None = None, *, csrf: bool = True, **options: object
    ) -> httpx.Response:
        if csrf and not self.token:
            self.get("/login")
        body = {**(data or {}), **({"csrf_token": self.token} if csrf else {})}
        answer = self.client.post(url, data=body, **options)  # type: ignore[arg-type]
        found = CSRF.search(answer.text)
        if found:
            self.token = found.group(1)
        return answer

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        self.get("/login")
        return self.post("/login", {"email": email, "password": password})


@dataclass
class Console:
    classroom: Classroom
    app: FastAPI

    @property
    def background(self) -> BackgroundWork:
        work = self.app.state.background
        assert isinstance(work, BackgroundWork)
        return work

    def client(self) -> PageClient:
        return PageClient(TestClient(self.app))

    def person_with_password(self, email: str, role: Role, name: str | None = None) -> int:
        with self.classroom.transaction() as session:
            person = people.find_person_by_email(session, email)
            if person is None:
                person = people.create_person(
                    session,
                    Actor.system(),
                    name=name or email.split("@")[0],
                    email=email,
                    roles=[role],
                )
            accounts.set_password(session, Actor.system(), person.id, PASSWORD)
            return person.id


@contextmanager
def console(tmp_path: Path) -> Iterator[Console]:
    """A console over a fresh SQLite classroom, with one administrator who has a password."""
    classroom = open_classroom(
        f"sqlite:///{tmp_path / 'console.db'}", secret_box=SecretBox.generate()
    )
    app = create_app(classroom, allow_private_sis=True)
    served = Console(classroom, app)
    served.person_with_password(ADMIN_EMAIL, Role.ADMIN, "Ada Admin")
    try:
        yield served
    finally:
        served.background.stop()
        classroom.close()


def connect_and_authorise(admin: PageClient, sis: RunningProvider) -> httpx.Response:
    """The administrator's SIS setup through the pages: choose, connect, authorise."""
    admin.get(f"/admin/sis?sis={sis.profile}")
    form = {
        "sis": sis.profile,
        "host_url": sis.host_url,
        "access_key": sis.client_id,
        "secret_code": sis.client_secret,
        "insecure": "on",
    }
    needs_token_url = {p.name: p.token_url_needed for p in partners()}
    if needs_token_url[sis.profile]:
        form["token_url"] = sis.token_url
    if sis.extra_headers:
        form["vendor_key"] = next(iter(sis.extra_headers.values()))
    saved = admin.post("/admin/sis/connect", form)
    assert saved.status_code == 200, saved.text
    return admin.post("/admin/sis/authorise")


def import_roster(served: Console, admin: PageClient) -> httpx.Response:
    started = admin.post("/admin/roster/import", {"full": "on"})
    assert started.status_code == 200, started.text
    served.background.wait_idle(timeout_s=120)
    return admin.get(str(started.url))


def invite_and_sign_in(served: Console, email: str) -> PageClient:
    """An invitation link as `sislink users invite` makes it, followed by the teacher."""
    with served.classroom.transaction() as session:
        _, token = accounts.invite(session, Actor.system(), email)
    teacher = served.client()
    page = teacher.get(f"/set-password?token={token}")
    assert page.status_code == 200, page.text
    done = teacher.post(
        "/set-password", {"token": token, "password": PASSWORD, "confirm": PASSWORD}
    )
    assert done.status_code == 200, done.text
    return teacher
