"""OAuth 2 client authentication by HTTP Basic or in the form body (RFC 6749 section 2.3.1,
issue 14 item 10): chosen per profile, or per connection at connect; stored with the
connection; a SIS that refuses the way sislink sent them says so in its own words, and
Authorise says to try the other way; a refused scope is named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hostile.token_server import CLIENT_ID, CLIENT_SECRET, TokenReply, token_answers
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import SisConnection
from sislink.classroom.secrets import SecretBox
from sislink.oneroster.consumer import OAuth2Settings
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.oneroster.versions import CLASSROOM_SCOPES, spec_for
from sislink.partners import catalogue
from sislink.partners.catalogue import ProfileError, profile_from_toml
from sislink.sync import connection as sis_connection
from sislink.sync.errors import AuthorisationFailed, InvalidConnectionDetails
from sislink.sync.sis_client import open_sis_client, settings_for

ADMIN = Actor.system()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(
        f"sqlite:///{tmp_path / 'client-auth.db'}", secret_box=SecretBox.generate()
    )
    try:
        yield opened
    finally:
        opened.close()


def typed(sis: RunningProvider, **changes: Any) -> dict[str, Any]:
    return {
        "sis": "generic-1.2",
        "host_url": sis.host_url,
        "token_url": sis.token_url,
        "access_key": sis.client_id,
        "secret_code": sis.client_secret,
        **changes,
    }


def stored_client_auth(classroom: Classroom) -> str | None:
    with classroom.session() as session:
        return (
            session.scalars(select(SisConnection).order_by(SisConnection.id.desc()))
            .first()
            .client_auth
        )  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_sis_that_refuses_basic_says_so_and_connecting_with_post_authorises(
    classroom: Classroom,
) -> None:
    with running_provider(students=20, client_auth=["post"]) as sis:
        view = sis_connection.connect(classroom, ADMIN, **typed(sis))
        assert view.client_auth == "basic"  # the profile's way
        with pytest.raises(AuthorisationFailed) as caught:
            await sis_connection.authorise(classroom, ADMIN)
        message = caught.value.message
        assert caught.value.problem == "wrong_credentials"
        assert "does not take client credentials by HTTP Basic" in message  # the SIS's words
        assert "--client-auth post" in message and "try again later" not in message.lower()
        assert sis.client_secret not in message

        view = sis_connection.connect(classroom, ADMIN, **typed(sis, client_auth="post"))
        assert view.client_auth == "post" and stored_client_auth(classroom) == "post"
        report = await sis_connection.authorise(classroom, ADMIN)
        assert report.message == "Authorised"
        with classroom.session() as session:
            newest = session.scalars(
                select(SisConnection).order_by(SisConnection.id.desc())
            ).first()
            assert newest is not None
            auth = settings_for(newest, classroom.secret_box).auth
        assert isinstance(auth, OAuth2Settings) and auth.credentials_in == "form"
        async with open_sis_client(classroom) as client:  # imports and exports use this
            assert (await client.page("teachers", limit=1)).records


@pytest.mark.anyio
async def test_a_sis_that_takes_only_basic_refuses_the_form_body(classroom: Classroom) -> None:
    with running_provider(students=20, client_auth=["basic"]) as sis:
        sis_connection.connect(classroom, ADMIN, **typed(sis, client_auth="post"))
        with pytest.raises(AuthorisationFailed) as caught:
            await sis_connection.authorise(classroom, ADMIN)
        assert "does not take client credentials in the form body" in caught.value.message
        assert "--client-auth basic" in caught.value.message
        sis_connection.connect(classroom, ADMIN, **typed(sis, client_auth="basic"))
        # The profile's own way is not stored: a corrected profile would apply.
        assert stored_client_auth(classroom) is None
        assert (await sis_connection.authorise(classroom, ADMIN)).message == "Authorised"


def test_client_authentication_is_basic_or_post_and_only_for_oauth2(
    classroom: Classroom,
) -> None:
    with (
        running_provider(students=20) as sis,
        pytest.raises(InvalidConnectionDetails, match=r"basic \(HTTP Basic\) or post"),
    ):
        sis_connection.connect(classroom, ADMIN, **typed(sis, client_auth="digest"))
    with (
        running_provider(profile="generic-1.1", students=20) as sis_1_1,
        pytest.raises(InvalidConnectionDetails, match=r"OAuth 1\.0a"),
    ):
        sis_connection.connect(
            classroom,
            ADMIN,
            sis="generic-1.1",
            host_url=sis_1_1.host_url,
            access_key=sis_1_1.client_id,
            secret_code=sis_1_1.client_secret,
            client_auth="post",
        )


def test_a_profile_says_how_its_token_request_sends_the_credentials() -> None:
    assert {p.client_auth for p in catalogue().values()} <= {"basic", "post"}
    text = """
name = "x"
display_name = "X"
oneroster_version = "1.2"
auth = "oauth2"
client_auth = "post"
[urls]
root_url = "{base}/ims/oneroster"
host_url_example = "https://x.example"
"""
    assert profile_from_toml(text, "x.toml").client_auth == "post"
    with pytest.raises(ProfileError, match='client_auth must be "basic" or "post"'):
        profile_from_toml(text.replace('"post"', '"form"'), "x.toml")


@pytest.mark.anyio
async def test_a_refused_scope_is_named(classroom: Classroom) -> None:
    refusal = {"error": "invalid_scope", "error_description": "Scope not allowed"}
    with token_answers(lambda n, issue: TokenReply.json(refusal, status=400)) as sis:
        sis_connection.connect(
            classroom,
            ADMIN,
            sis="generic-1.2",
            host_url=sis.host_url,
            token_url=sis.token_url,
            access_key=CLIENT_ID,
            secret_code=CLIENT_SECRET,
        )
        with pytest.raises(AuthorisationFailed) as caught:
            await sis_connection.authorise(classroom, ADMIN)
    message = caught.value.message
    assert caught.value.problem == "missing_scope"
    for uri in spec_for("1.2").scope_uris(CLASSROOM_SCOPES):
        assert uri in message
    assert "invalid_scope: Scope not allowed" in message
