"""API tokens: shown once, stored only as a hash, resolved to the person who holds them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import ApiToken, Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import people
from sislink.console.auth import (
    create_api_token,
    person_for_token,
    revoke_api_tokens,
    token_hash,
)


def test_a_token_is_stored_only_as_its_hash_and_finds_its_person(tmp_path: Path) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'auth.db'}", secret_box=SecretBox.generate())
    try:
        with classroom.transaction() as session:
            ada = people.create_person(
                session, Actor.system(), name="Ada", email="ada@x.example", roles=[Role.ADMIN]
            )
            row, token = create_api_token(session, Actor.system(), ada, label="scripts")
            assert row.token_hash == token_hash(token) != token
            assert token not in repr(row)
        with classroom.transaction() as session:
            found = person_for_token(session, token)
            assert found is not None and found.email == "ada@x.example"
            assert person_for_token(session, token + "x") is None
            assert person_for_token(session, "not-a-token") is None
            stored = session.scalars(select(ApiToken)).one()
            assert stored.last_used_at is not None
        with classroom.transaction() as session:
            ada = people.find_person_by_email(session, "ada@x.example")
            assert ada is not None
            assert revoke_api_tokens(session, Actor.system(), ada) == 1
        with classroom.transaction() as session:
            assert person_for_token(session, token) is None
        assert token.encode() not in (tmp_path / "auth.db").read_bytes()
    finally:
        classroom.close()
