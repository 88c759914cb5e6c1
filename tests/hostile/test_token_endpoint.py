"""A token endpoint that answers oddly (issue 17 item 6): the token endpoint is blamed, not the
call that needed the token; a token with a line break or a control character is refused before
any use and never shown; a missing, zero or negative `expires_in` does not mean a new token
per call; a refusal's `error` and `error_description` are shown as words, never as a Python
dict, and never as "try again later"."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hostile.hostile_sis import ACCESS_TOKEN, HostileSIS, Received, Reply, json_reply, token_reply
from hostile.hostile_sis import CLIENT_ID as HOSTILE_CLIENT_ID
from hostile.hostile_sis import CLIENT_SECRET as HOSTILE_CLIENT_SECRET
from hostile.token_server import CLIENT_ID, CLIENT_SECRET, TokenReply, token_answers
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import people
from sislink.classroom.services.audit import recent_events
from sislink.oneroster.consumer import MalformedResponse, OneRosterClient, run_conformance
from sislink.oneroster.consumer.exceptions import (
    PermissionDenied,
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


# ---- a secret or token the SIS echoes back is hidden (review of issue 17) ---------------------


def _echoes_of(secret: str) -> dict[str, str]:
    """The secret as a token endpoint may repeat it: as given, as it went in the form body,
    as it went in the Basic pair, and the Basic value itself."""
    import base64
    from urllib.parse import quote, quote_plus

    pair = f"{quote(CLIENT_ID, safe='')}:{quote(secret, safe='')}"
    return {
        "plain": secret,
        "form-encoded": quote_plus(secret),
        "percent-encoded": quote(secret, safe=""),
        "basic": base64.b64encode(pair.encode()).decode("ascii"),
    }


ODD_SECRET = "s3cret+with/odd=chars&a space"


@pytest.mark.anyio
@pytest.mark.parametrize("form", list(_echoes_of(ODD_SECRET)))
async def test_a_token_refusal_that_echoes_the_secret_shows_it_hidden(form: str) -> None:
    echoed = _echoes_of(ODD_SECRET)[form]
    refusal = {"error": "invalid_client", "error_description": f"bad client_secret {echoed}"}
    with token_answers(lambda n, issue: TokenReply.json(refusal, status=401)) as sis:
        settings = sis.settings()
        auth = dataclasses.replace(settings.auth, client_secret=ODD_SECRET)
        async with OneRosterClient(dataclasses.replace(settings, auth=auth)) as client:
            with pytest.raises(TokenRefused) as caught:
                await client.page("teachers", limit=1)
    assert "invalid_client: bad client_secret [hidden]" in str(caught.value)
    assert echoed not in str(caught.value)
    assert caught.value.error_description == "bad client_secret [hidden]"


@pytest.mark.anyio
async def test_authorise_keeps_a_secret_the_token_endpoint_echoed_out_of_message_and_audit(
    tmp_path: Path,
) -> None:
    refusal = {"error": "invalid_client", "error_description": f"bad client_secret {CLIENT_SECRET}"}
    classroom, admin = _classroom(tmp_path)
    try:
        with token_answers(lambda n, issue: TokenReply.json(refusal, status=401)) as sis:
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
        with classroom.session() as session:
            events = recent_events(session, action="sis.authorise_failed")
            audit = json.dumps([event.details for event in events])
    finally:
        classroom.close()
    assert "bad client_secret [hidden]" in caught.value.message
    assert CLIENT_SECRET not in caught.value.message
    assert "bad client_secret [hidden]" in audit
    assert CLIENT_SECRET not in audit


def _forbidden_echoing_the_token(request: Received, status_code: int = 403) -> Reply:
    if request.path == "/oauth/token":
        return token_reply()
    status = {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": f"token {ACCESS_TOKEN} lacks the roster scope",
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {
                    "imsx_codeMinorFieldName": "TargetEndSystemID",
                    "imsx_codeMinorFieldValue": "unauthorisedrequest",
                }
            ]
        },
    }
    return json_reply(status, status=status_code)


@pytest.mark.anyio
async def test_a_refusal_that_echoes_the_bearer_token_shows_it_hidden() -> None:
    with HostileSIS(_forbidden_echoing_the_token) as sis:
        async with OneRosterClient(sis.settings()) as client:
            with pytest.raises(PermissionDenied) as caught:
                await client.page("users", limit=1)
    message = str(caught.value)
    assert "token [hidden] lacks the roster scope" in message
    assert ACCESS_TOKEN not in message
    assert caught.value.imsx is not None
    assert ACCESS_TOKEN not in caught.value.imsx.description


@pytest.mark.anyio
async def test_authorise_keeps_an_echoed_bearer_token_out_of_message_and_audit(
    tmp_path: Path,
) -> None:
    """A 409 (an answer Authorise quotes word for word) whose description repeats the token."""
    classroom, admin = _classroom(tmp_path)
    try:
        with HostileSIS(lambda request: _forbidden_echoing_the_token(request, 409)) as sis:
            sis_connection.connect(
                classroom,
                admin,
                sis="generic-1.2",
                host_url=sis.origin,
                token_url=sis.token_url,
                access_key=HOSTILE_CLIENT_ID,
                secret_code=HOSTILE_CLIENT_SECRET,
            )
            with pytest.raises(AuthorisationFailed) as caught:
                await sis_connection.authorise(classroom, admin)
        with classroom.session() as session:
            events = recent_events(session, action="sis.authorise_failed")
            audit = json.dumps([event.details for event in events])
    finally:
        classroom.close()
    assert "token [hidden] lacks the roster scope" in caught.value.message
    assert ACCESS_TOKEN not in caught.value.message
    assert ACCESS_TOKEN not in audit and "[hidden]" in audit


@pytest.mark.anyio
async def test_a_token_endpoint_that_redirects_is_said_to_redirect_not_to_refuse_the_secret() -> (
    None
):
    def shape(request: Received) -> Reply:
        if request.path == "/oauth/token":
            return Reply(302, {"Location": "https://login.example.org/oauth/token?next=1"})
        return json_reply({"users": []})

    with HostileSIS(shape) as sis:
        async with OneRosterClient(sis.settings()) as client:
            with pytest.raises(TokenRefused) as caught:
                await client.page("users", limit=1)
        assert [r.path for r in sis.calls()] == []  # no OneRoster call without a token
    message = str(caught.value)
    assert "POST /oauth/token (token) answered 302 Found" in message
    assert "redirected the request to https://login.example.org/oauth/token" in message
    assert "follows no redirect" in message and "check the token URL" in message
    assert "client id or secret" not in message
