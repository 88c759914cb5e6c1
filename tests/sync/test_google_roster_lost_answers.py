"""Classroom applies a batch of adds but its answer is lost on the way back (the connection drops
after Google did the work, as happens on the internet): the people added stay known as
sislink's, so when the SIS ends their enrolment they are removed (they are not mistaken for a
teacher's own additions). A loopback HTTP relay in front of the local Classroom drops the answer
of the first batch that adds students."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from sislink.classroom import open_classroom
from sislink.classroom.models import GoogleCourseLink, GoogleCourseMember
from sislink.classroom.secrets import SecretBox
from sislink.sync import google_connection
from sync.google_roster_world import (
    ADMIN,
    World,
    classroom_courses,
    classroom_matches_the_sis,
    district,
)


class Relay:
    """Passes every request to the local Classroom; drops the answer of the first batch that
    adds students (after the Classroom applied it)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.dropped = 0
        self.lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream = http.client.HTTPConnection(
                    relay.upstream.hostname, relay.upstream.port, timeout=30
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                with relay.lock:
                    drop = (
                        relay.dropped == 0
                        and self.command == "POST"
                        and "batch" in self.path
                        and b"/students" in body
                        and b"POST " in body
                    )
                    if drop:
                        relay.dropped += 1
                if drop:  # Classroom did it; the answer never arrives
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def relayed_world(tmp_path: Path) -> Iterator[tuple[World, Relay]]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'lost.db'}", secret_box=SecretBox.generate())
    try:
        with district(opened) as world, Relay(world.google.api_url) as relay:
            google_connection.disconnect(opened, ADMIN)
            google_connection.connect(
                opened,
                ADMIN,
                key_file_text=world.google.key_file.read_text(),
                admin_email=world.google.admin_email,
                api_endpoint=relay.url,
            )
            google_connection.authorise(opened, ADMIN)
            yield world, relay
    finally:
        opened.close()


def _recorded_students(world: World) -> dict[str, set[str]]:
    with world.classroom.session() as session:
        rows = session.execute(
            select(GoogleCourseLink.alias, GoogleCourseMember.email_key)
            .join(GoogleCourseMember, GoogleCourseMember.link_id == GoogleCourseLink.id)
            .where(GoogleCourseMember.role == "student")
        ).all()
    recorded: dict[str, set[str]] = {}
    for alias, email in rows:
        recorded.setdefault("d:" + alias, set()).add(email)
    return recorded


def test_students_added_by_a_batch_whose_answer_was_lost_stay_known_as_sislinks(
    relayed_world: tuple[World, Relay],
) -> None:
    world, relay = relayed_world
    world.sync()
    assert relay.dropped == 1
    world.sync()  # whatever the first run could not tell, the second finishes
    classroom_matches_the_sis(world)
    in_classroom = {a: s for a, (_, _, s) in classroom_courses(world.google).items() if s}
    # Every student in Classroom was placed by sislink and is known as such.
    assert _recorded_students(world) == in_classroom

    # So the SIS ending the enrolment of any of them removes them from the course.
    sid, (_, _, students) = next((k, v) for k, v in sorted(world.roster().items()) if v[2])
    gone = sorted(students)[0]
    world.end_enrolment(gone, sid)
    world.import_roster()
    assert world.sync().to_dict()["counts"]["students"]["removed"] == 1
    classroom_matches_the_sis(world)
