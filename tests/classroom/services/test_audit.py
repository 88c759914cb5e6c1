"""Audit events keep who did what, and never the secrets that may be passed in details."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sislink.classroom.db import Classroom
from sislink.classroom.services import audit

if TYPE_CHECKING:
    from ..conftest import School


def test_secret_looking_details_are_redacted_at_any_depth(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        audit.record_event(
            session,
            school.admin,
            "sis.checked",
            "sis_connection:1",
            {
                "host_url": "https://sis.example",
                "secret_code": "abc",
                "request": {"Authorization": "Bearer xyz", "path": "/teachers"},
                "access_token": "tok",
            },
        )
    with classroom.transaction() as session:
        (event,) = audit.recent_events(session, action="sis.checked")
        assert event.actor_id == school.admin.person_id
        assert event.details == {
            "host_url": "https://sis.example",
            "secret_code": "<redacted>",
            "request": {"Authorization": "<redacted>", "path": "/teachers"},
            "access_token": "<redacted>",
        }
