"""A token endpoint that answers oddly (issue 17 item 6): the token endpoint is blamed, not the
call that needed the token; a token with a line break or a control character is refused before
any use and never shown; a missing, zero or negative `expires_in` does not mean a new token
per call; a refusal's `error` and `error_description` are shown as words, never as a Python
dict, and never as "try again later"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostile.token_server import CLIENT_ID, CLIENT_SECRET, TokenReply, token_answers
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import people
from sislink.oneroster.consumer import MalformedResponse, OneRosterClient, run_conformance
from sislink.oneroster.consumer.exceptions import (
    ResponseTooLarge,
    TokenRefused,
    TokenResponseInvalid,
)
from sislink.sync import connection as sis_connection
from sislink.sync.errors import AuthorisationFailed
from sislink.sync.roster_import import RosterImportFailed, import_roster
from sislink.sync.sis_client import open_sis_client


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (TokenReply(200, b"<html>Sign in</html>", "text/html"), "not JSON"),
        (TokenReply.json(["a", "list"]), "not an object"),
        (TokenReply.json({"token_type": "Bearer"}), "without an access_token"),
        (TokenReply.token("x" * 20_000), "too long"),
        (TokenReply.token("abc", token_type="mac"), "not Bearer"),
    ],
    ids=["web-page", "a-list", "no-token", "too-long", "not-bearer"],
)
async def test_an_odd_token_answer_is_blamed_on_the_token_endpoint(
    answer: TokenReply, said: str
) -> None:
    with token_answers(lambda n, issue: answer) as sis:
        async with OneRosterClient(sis.settings()) as client:
            with pytest.raises(TokenResponseInvalid) as caught:
                await client.page("schools", limit=1)
        assert sis.oneroster_calls == 0  # nothing was sent without a token
    message = str(caught.value)
    assert "token endpoint (POST /oauth2/token)" in message and said in message
    assert "schools" not in message
    assert not isinstance(caught.value, MalformedResponse)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "token",
    ["abc\r\nX-Injected: yes", "abc\ndef", "abc\x00def", "abc\x1bdef", "abc def", "tok\u00e9n"],
    ids=["crlf-header", "newline", "nul", "escape", "space", "non-ascii"],
)
async def test_a_token_with_a_line_break_or_control_character_is_refused_before_use(
    token: str,
) -> None:
    with token_answers(lambda n, issue: TokenReply.token(token)) as sis:
        async with OneRosterClient(sis.settings()) as client:
            with pytest.raises(TokenResponseInvalid) as caught:
                await client.page("teachers", limit=1)
        assert sis.oneroster_calls == 0 and sis.authorizations == []
    message = str(caught.value)
    assert "line breaks or control characters" in message or "spaces" in message
    assert token not in message and "abc" not in message


@pytest.mark.anyio
async def test_a_control_character_token_never_reaches_a_check_sis_report() -> None:
    token = "secret-token-\x07-bell"
    with token_answers(lambda n, issue: TokenReply.token(token)) as sis:
        report = await run_conformance(sis.settings(), sis.teacher_email)
    text = json.dumps(report.as_dict())
    assert "secret-token" not in text
    assert report.checks[0].name == "token_is_issued" and report.checks[0].passed is False
    assert "token endpoint" in report.checks[0].details


@pytest.mark.anyio
@pytest.mark.parametrize(
    "expires_in",
    [None, 0, -30, "not a number", "NaN", "-Infinity", True],
    ids=["missing", "zero", "negative", "text", "nan", "minus-infinity", "boolean"],
)
async def test_an_unusable_expires_in_gets_a_default_lifetime_not_a_token_per_call(
    expires_in: object,
) -> None:
    def answer(n: int, issue: object) -> TokenReply:
        fields = {} if expires_in is None else {"expires_in": expires_in}
        assert callable(issue)
        return TokenReply.token(issue(), **fields)

    with token_answers(answer) as sis:
        async with OneRosterClient(sis.settings()) as client:
            for _ in range(5):
                await client.page("teachers", limit=1)
            assert client.tokens_fetched == 1
        assert sis.token_requests == 1 and sis.oneroster_calls == 5


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "words", "never"),
    [
        (
            {"error": "invalid_client", "error_description": "Client authentication failed"},
            "invalid_client: Client authentication failed",
            "{",
        ),
        ({"error": {"code": 17, "text": "nope"}, "error_description": ["a", "b"]}, "", "{'code'"),
        (
            {"error": "invalid_request", "error_description": "bad\r\nX-Evil: 1\x1b[31m"},
            "invalid_request: bad X-Evil: 1",
            "\x1b",
        ),
    ],
    ids=["words", "objects", "control-characters"],
)
async def test_a_refusal_shows_what_the_token_endpoint_said_as_words(
    body: dict[str, object], words: str, never: str
) -> None:
    with token_answers(lambda n, issue: TokenReply.json(body, status=400)) as sis:
        async with OneRosterClient(sis.settings()) as client:
            with pytest.raises(TokenRefused) as caught:
                await client.page("teachers", limit=1)
        assert sis.token_requests == 1  # a 400 is an answer: not retried
    message = str(caught.value)
    assert "POST /oauth2/token (token) answered 400" in message
    assert words in message and never not in message
    assert "try again later" not in message.lower()


# ---- through the product: Authorise and a roster import -------------------------------------


def _classroom(tmp_path: Path) -> tuple[Classroom, Actor]:
    classroom = open_classroom(
        f"sqlite:///{tmp_path / 'token.db'}", secret_box=SecretBox.generate()
    )
    with classroom.transaction() as session:
        person = people.create_person(
            session, Actor.system(), name="Ada", email="ada@district.example", roles=[Role.ADMIN]
        )
        return classroom, Actor.of(person)


@pytest.mark.anyio
async def test_authorise_shows_a_refusal_in_the_token_endpoints_words_without_try_again(
    tmp_path: Path,
) -> None:
    refusal = {"error": "unauthorized_client", "error_description": "This client is disabled"}
    classroom, admin = _classroom(tmp_path)
    try:
        with token_answers(lambda n, issue: TokenReply.json(refusal, status=403)) as sis:
            sis_connection.connect(
                classroom,
                admin,
                sis="generic-1.2",
                host_url=sis.host_url,
                token_url=sis.token_url,
                access_key=CLIENT_ID,
                secret_code=CLIENT_SECRET,
            )
            with pytest.raises(AuthorisationFailed) as caught:
                await sis_connection.authorise(classroom, admin)
    finally:
        classroom.close()
    message = caught.value.message
    assert "unauthorized_client: This client is disabled" in message
    assert "try again later" not in message.lower()
    assert CLIENT_SECRET not in message


@pytest.mark.anyio
async def test_a_roster_import_blames_the_token_endpoint_not_the_schools_endpoint(
    tmp_path: Path,
) -> None:
    def answer(n: int, issue: object) -> TokenReply:
        assert callable(issue)
        # Authorise gets a real token; the import's token request gets a web page.
        return TokenReply.token(issue()) if n == 1 else TokenReply(200, b"<html>", "text/html")

    classroom, admin = _classroom(tmp_path)
    try:
        with token_answers(answer) as sis:
            sis_connection.connect(
                classroom,
                admin,
                sis="generic-1.2",
                host_url=sis.host_url,
                token_url=sis.token_url,
                access_key=CLIENT_ID,
                secret_code=CLIENT_SECRET,
            )
            authorised = await sis_connection.authorise(classroom, admin)
            async with open_sis_client(classroom) as client:
                with pytest.raises(RosterImportFailed) as caught:
                    await import_roster(
                        classroom,
                        client,
                        connection_id=authorised.connection.id,
                    )
    finally:
        classroom.close()
    message = caught.value.message
    assert "token endpoint (POST /oauth2/token)" in message and "not JSON" in message
    assert "schools endpoint" not in message


@pytest.mark.anyio
async def test_a_token_answer_is_read_only_up_to_its_cap() -> None:
    huge = b'{"access_token": "' + b"a" * 300_000 + b'", "token_type": "Bearer"}'
    with token_answers(lambda n, issue: TokenReply(200, huge)) as sis:
        settings = sis.settings(max_token_response_bytes=16_384)
        async with OneRosterClient(settings) as client:
            with pytest.raises(ResponseTooLarge) as caught:
                await client.page("teachers", limit=1)
        assert sis.oneroster_calls == 0
    message = str(caught.value)
    assert "16,384 bytes" in message and "a token" in message and "aaaa" not in message
