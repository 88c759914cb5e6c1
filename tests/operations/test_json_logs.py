"""SISLINK_LOG_FORMAT=json: one JSON object per line, with the job's ids, and no secret, token
or mark value in any line, over a real roster import and a real mark export (DEBUG level)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import JobStatus
from sislink.googleclassroom import ClassroomClient, ClientSettings, ServiceAccountKey, TokenRefused
from sislink.googleclassroom.emulator import running_classroom
from sislink.jobs.mark_export import run_class_export
from sislink.jobs.roster import run_roster_import
from sislink.oneroster.provider.server import running_provider
from sislink.operations.logs import configure_logging, log_context, redact
from sync.mark_export_world import build_world, connect_classroom

KNOWN_SECRET = "Zq7-known-sis-secret-4410"
# A mark nothing else in a log line could spell: not an id, and not a time (7.375 was, once:
# "02:03:47.375+00:00"; a log time has three digits after the point, this mark seven).
KNOWN_SCORE = 8.6171875


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged, as sislink writes it with SISLINK_LOG_FORMAT=json at DEBUG."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    captured = io.StringIO()
    handler = configure_logging(
        {"SISLINK_LOG_FORMAT": "json", "SISLINK_LOG_LEVEL": "DEBUG"}, stream=captured
    )
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        assert root.handlers == handlers


def parsed(captured: io.StringIO) -> list[dict[str, object]]:
    lines = captured.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


@pytest.mark.anyio
async def test_an_import_and_an_export_log_json_lines_with_job_ids_and_no_secret(
    classroom: Classroom, json_log: io.StringIO
) -> None:
    with running_provider(profile="generic-1.2", students=40, client_secret=KNOWN_SECRET) as sis:
        world = await build_world(sis, classroom, students=3)
        work = world.add_coursework("Fractions")
        for student in world.students:
            world.mark(work, student, score=KNOWN_SCORE)
        exported = await run_class_export(classroom, world.teacher, world.class_id)
        imported = await run_roster_import(classroom, Actor.system())
    assert imported.status in (JobStatus.SUCCEEDED, JobStatus.NEEDS_ATTENTION)
    assert exported.job.status is JobStatus.SUCCEEDED
    assert exported.writes > 0

    lines = parsed(json_log)
    text = json_log.getvalue()
    assert KNOWN_SECRET not in text
    assert str(KNOWN_SCORE) not in text
    assert not re.search(r"bearer (?!\[redacted\])", text, re.IGNORECASE)
    assert "access_token" not in text.replace('"access_token": "[redacted]"', "")
    by_job = {line.get("job_id"): line for line in lines if line.get("job_id") is not None}
    assert imported.job_id in by_job and exported.job.job_id in by_job
    export_lines = [line for line in lines if line.get("job_id") == exported.job.job_id]
    assert all(line["class_id"] == world.class_id for line in export_lines)
    assert all(
        line["job_kind"] == "roster_import"
        for line in lines
        if line.get("job_id") == imported.job_id
    )
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)


def test_a_secret_logged_by_mistake_is_redacted(json_log: io.StringIO) -> None:
    mistaken = logging.getLogger("sislink.sync")
    with log_context(request_id="r-1"):
        mistaken.warning("token answer: client_secret=%s", KNOWN_SECRET)
        mistaken.warning("sent Authorization: Bearer %s", "eyJhbGciOi.payload.sig")
        mistaken.warning("connected to %s", f"postgresql://sislink:{KNOWN_SECRET}@db/sislink")
        mistaken.warning("wrote %s", {"score": KNOWN_SCORE, "sourcedId": "r-9"})
        try:
            raise ValueError(f"password={KNOWN_SECRET}")
        except ValueError:
            mistaken.exception("the call failed")
    lines = parsed(json_log)
    text = json_log.getvalue()
    assert KNOWN_SECRET not in text and "eyJhbGciOi" not in text and str(KNOWN_SCORE) not in text
    assert "r-9" in text  # what is not secret stays
    assert [line["request_id"] for line in lines] == ["r-1"] * 5
    assert "ValueError" in str(lines[-1]["exception"])


def test_redact_keeps_plain_sentences() -> None:
    sentence = "Basic auth failed for the mark export of class 7; run it again."
    assert redact(sentence) == sentence


@pytest.mark.anyio
async def test_a_roster_import_refused_by_the_sis_logs_no_secret(
    classroom: Classroom, json_log: io.StringIO
) -> None:
    """The SIS refuses the credentials (a secret typed wrong): the failure is logged, in JSON,
    without the secret that was sent or the one the SIS expects."""
    wrong = "Zq7-typed-wrong-secret-8802"
    with running_provider(profile="generic-1.2", students=20, client_secret=KNOWN_SECRET) as sis:
        connect_classroom(dataclasses.replace(sis, client_secret=wrong), classroom)
        refused = await run_roster_import(classroom, Actor.system())
    assert refused.status is JobStatus.FAILED
    lines = parsed(json_log)
    text = json_log.getvalue()
    assert KNOWN_SECRET not in text and wrong not in text
    assert not re.search(r"basic (?!\[redacted\])[A-Za-z0-9+/=]{8,}", text, re.IGNORECASE)
    assert any(line.get("job_id") == refused.job_id for line in lines)


def test_a_google_token_refusal_logs_no_key_assertion_or_token(json_log: io.StringIO) -> None:
    """Google refuses a token (a user outside the domain) after another was granted: nothing of
    the service account's private key, the signed assertion or the granted token is logged."""
    with running_classroom(students=5) as running:
        key = json.loads(running.key_file.read_text())
        with ClassroomClient(
            ServiceAccountKey.from_file(running.key_file),
            admin_email=running.admin_email,
            api_endpoint=running.api_url,
            settings=ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05),
        ) as client:
            client.execute(lambda service: service.courses().list(pageSize=5))
            granted = [c.token for c in client._credentials.values() if c.token]
            with pytest.raises(TokenRefused):
                client.execute(
                    lambda service: service.courses().list(pageSize=5),
                    as_user="visitor@elsewhere.example.net",
                )
    assert granted
    text = json_log.getvalue()
    parsed(json_log)
    private_key_body = "".join(key["private_key"].splitlines()[1:-1])
    assert private_key_body[20:60] not in text.replace("\\n", "")
    assert all(token not in text for token in granted)
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text)  # no signed JWT assertion
    assert "assertion=" not in text or "assertion=[redacted]" in text


def test_redact_keeps_advice_after_a_word_like_secret_and_masks_values() -> None:
    """The SIS client's own sentence on a refused secret is advice, not a secret: it reaches the
    log and the summary e-mail whole. Values after the same words are still masked."""
    advice = (
        "POST /oauth2/token (token) answered 401 Unauthorized: it refused the client id or "
        "secret: check both (and that the secret is current)"
    )
    assert redact(advice) == advice
    assert redact("token: expired, sign in again") == "token: expired, sign in again"
    assert KNOWN_SECRET not in redact(f"secret: {KNOWN_SECRET}")
    assert "hunter2" not in redact("client_secret: hunter2")
    assert "hunter2" not in redact("password=hunter2")
    assert "check" not in redact("client_secret=check")  # `=` is always a value
    assert "7.5" not in redact("score: 7.5")
