"""The REST API answers what its OpenAPI says: schemathesis generates requests from the schema
(valid ones, and invalid ones it expects refused) for every operation, with an administrator's
token and a teacher's, against the real app served by uvicorn on loopback. No answer may be a
server error or differ from the schema (status, content type, headers, body).

Bounded and repeatable: a fixed number of examples per operation, derandomized (the same
requests every run). `POST /api/admin/connection` is left out: it saves whatever Host URL it is
given, and the authorise that follows would then reach hosts the fuzzer invented (tests talk only
to loopback); its answers are covered by test_admin_api.py.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, text

from conftest import postgres_url_or_skip
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.db import normalise_database_url
from sislink.classroom.models import EnrolmentRole, Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import classes, coursework, people
from sislink.classroom.services.api_tokens import create_api_token
from sislink.console.app import create_app

EXAMPLES_PER_OPERATION = 25
LEFT_OUT = {("POST", "/api/admin/connection")}
# "Responses that differ from the OpenAPI", and server errors. Not schemathesis's guesses about
# what must be accepted or refused: a schema-valid blank title is refused in words (422) by
# design, and unknown query parameters are ignored, as HTTP APIs commonly do.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class LiveApi:
    url: str
    classroom: Classroom

    @property
    def admin_token(self) -> str:
        return self._token("ada@district.example")

    @property
    def teacher_token(self) -> str:
        return self._token("tom@school.example")

    def _token(self, email: str) -> str:
        """A new token each time: an operation that revokes tokens (DELETE .../tokens/{id})
        may revoke the one it was given, and must not leave the next operation without one."""
        with self.classroom.transaction() as session:
            person = people.find_person_by_email(session, email)
            assert person is not None
            return create_api_token(session, Actor.system(), person)[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seed(classroom: Classroom) -> None:
    """An administrator, a teacher with a class (coursework, a student), and another teacher's
    class: so that ids 1, 2... name real rows, some the teacher may not touch."""
    system = Actor.system()
    with classroom.transaction() as session:
        people.create_person(
            session, system, name="Ada", email="ada@district.example", roles=[Role.ADMIN]
        )
        tom = people.create_person(
            session, system, name="Tom", email="tom@school.example", roles=[Role.TEACHER]
        )
        una = people.create_person(
            session, system, name="Una", email="una@school.example", roles=[Role.TEACHER]
        )
        sam = people.create_person(
            session, system, name="Sam", email="sam@school.example", roles=[Role.STUDENT]
        )
        mine = classes.create_class(session, system, title="Maths 7", primary_teacher_id=tom.id)
        classes.create_class(session, system, title="Una's secret class", primary_teacher_id=una.id)
        classes.enrol(session, system, mine.id, sam.id, EnrolmentRole.STUDENT)
        coursework.create_coursework(
            session, system, mine.id, title="Fractions", max_points=10, publish=True
        )


@contextmanager
def _database(kind: str, home: Path) -> Iterator[str]:
    """An empty database for the module: a SQLite file, or a fresh PostgreSQL schema (where
    ids are 32-bit, the database the issue's 500s came from)."""
    if kind == "sqlite":
        yield f"sqlite:///{home / 'api.db'}"
        return
    base_url = normalise_database_url(postgres_url_or_skip())
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = base_url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def live_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    home: Path = tmp_path_factory.mktemp("api_schema")
    with _database(request.param, home) as url:
        classroom = open_classroom(url, secret_box=SecretBox.generate())
        _seed(classroom)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(classroom, allow_private_sis=False),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the console did not start")
            time.sleep(0.05)
        try:
            yield LiveApi(f"http://127.0.0.1:{port}", classroom)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            classroom.close()


def _operations() -> list[schemathesis.APIOperation]:
    """Every operation of the OpenAPI the app serves (read from the app itself, so that the
    tests are known before the server starts), less those left out above."""
    schema = schemathesis.openapi.from_dict(create_app().openapi())
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if (op.method.upper(), op.path) not in LEFT_OUT]


OPERATIONS = _operations()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_every_answer_is_what_the_openapi_documents(
    operation: schemathesis.APIOperation, mode: GenerationMode, live_api: LiveApi
) -> None:
    http = requests.Session()
    tokens = (live_api.admin_token, live_api.teacher_token)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case) -> None:
        for token in tokens:
            case.call_and_validate(
                base_url=live_api.url,
                session=http,
                headers={"Authorization": f"Bearer {token}"},
                checks=CHECKS,
                timeout=30,
            )

    with http:
        answers_as_documented()


TOO_LARGE = 2**31  # one past the largest id a PostgreSQL INTEGER holds


@pytest.mark.parametrize(
    "path",
    [
        f"/api/teacher/classes/{TOO_LARGE}",
        f"/api/teacher/classes/{TOO_LARGE}/coursework",
        f"/api/teacher/classes/1/reports/{TOO_LARGE}",
        f"/api/teacher/jobs/{TOO_LARGE}",
        f"/api/teacher/classes/{2**63}/export-settings",
        f"/api/admin/roster/jobs/{TOO_LARGE}",
        "/api/teacher/classes/-1",
    ],
)
def test_an_id_no_row_can_have_answers_404_not_a_server_error(live_api: LiveApi, path: str) -> None:
    answer = requests.get(
        live_api.url + path,
        headers={"Authorization": f"Bearer {live_api.admin_token}"},
        timeout=30,
    )
    assert answer.status_code == 404, answer.text
    assert "no" in str(answer.json()["detail"]).lower()


def test_a_refusal_does_not_name_another_teachers_class(live_api: LiveApi) -> None:
    tom = {"Authorization": f"Bearer {live_api.teacher_token}"}
    unas_class = f"{live_api.url}/api/teacher/classes/2"
    answers = [
        requests.get(unas_class, headers=tom, timeout=30),
        requests.get(f"{unas_class}/coursework", headers=tom, timeout=30),
        requests.patch(
            f"{unas_class}/export-settings", headers=tom, json={"export_drafts": True}, timeout=30
        ),
        requests.delete(f"{unas_class}/link", headers=tom, timeout=30),
        requests.post(f"{unas_class}/exports", headers=tom, json={}, timeout=30),
    ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert "secret" not in answer.text and "with id 2" in answer.text


def test_refusals_carry_the_body_the_openapi_documents(live_api: LiveApi) -> None:
    anonymous = requests.get(f"{live_api.url}/api/teacher/classes", timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["detail"]["problem"] == "unauthorised"
    teacher_at_admin = requests.get(
        f"{live_api.url}/api/admin/audit",
        headers={"Authorization": f"Bearer {live_api.teacher_token}"},
        timeout=30,
    )
    assert teacher_at_admin.status_code == 403
    assert teacher_at_admin.json()["detail"]["problem"] == "forbidden"
    documented = requests.get(f"{live_api.url}/openapi.json", timeout=30).json()
    answers = documented["paths"]["/api/teacher/classes/{class_id}"]["get"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(answers)
    assert answers["403"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ProblemAnswer"
    )
