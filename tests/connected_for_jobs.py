"""A saved, authorised SIS connection for tests of jobs that need one (nothing is asked of a SIS:
the jobs under test are given their work, or fail before they reach it)."""

from __future__ import annotations

from sislink.classroom import Actor, Classroom
from sislink.classroom.services import connections


def save_authorised_connection(classroom: Classroom, *, token_url: str | None = None) -> int:
    """Save a connection to a SIS at sis.example.org, marked authorised; returns its id."""
    with classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            Actor.system(),
            classroom.secret_box,
            partner="generic-1.2",
            version="1.2",
            host_url="https://sis.example.org",
            access_key="key",
            secret_code="not-a-real-secret",
            token_url=token_url,
        )
        connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id="d1")
        return saved.id
