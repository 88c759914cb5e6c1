"""What the REST API answers when it refuses, as the OpenAPI documents it, and ids checked as
the database can hold them.

Admin and teacher routes answer `{"detail": {"problem": CODE, "message": SENTENCE}}`; roster
routes answer `{"detail": SENTENCE}`; a request that does not match the schema gets FastAPI's
`{"detail": [{"loc": [...], "msg": ..., "type": ...}]}` (422). `admin_responses`,
`teacher_responses` and `roster_responses` put exactly those bodies in the OpenAPI.

An id outside 1..MAX_ROW_ID names no row (ids are 32-bit on PostgreSQL): `class_id_in_path`
and its siblings answer 404 for it at once, as for any id that names nothing, instead of letting
the database fail on it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from sislink.classroom.models import MAX_ROW_ID


class Problem(BaseModel):
    """One refusal in words: `problem` is a short code a program can test, `message` a
    sentence a person can act on."""

    problem: str = Field(description="A short code, e.g. not_found, forbidden, not_connected.")
    message: str = Field(description="What went wrong and what to do, in one or two sentences.")
    suggestion: str | None = Field(
        None, description="For invalid connection details: the Host URL sislink suggests."
    )


class ValidationIssue(BaseModel):
    """One way the request did not match the schema (FastAPI's own answer)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ProblemAnswer(BaseModel):
    detail: Problem


class ProblemOrInvalidAnswer(BaseModel):
    detail: Problem | list[ValidationIssue]


class TextAnswer(BaseModel):
    detail: str


class TextOrInvalidAnswer(BaseModel):
    detail: str | list[ValidationIssue]


def _answer(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


_WHEN = {
    400: "The body is not JSON (Starlette's own answer).",
    401: "No API token, or an unknown or revoked one (with `WWW-Authenticate: Bearer`).",
    403: "The token's person may not do this (not an administrator, not their class...).",
    404: "The id names nothing this person may see.",
    409: "The state of things does not allow it now (not connected, already running...).",
    422: "The request does not match the schema, or a value in it is not acceptable.",
    502: "The SIS failed or refused; the message gives its words.",
}


def _responses(codes: tuple[int, ...], text_codes: tuple[int, ...]) -> dict[int | str, Any]:
    found: dict[int | str, Any] = {}
    for code in codes:
        if code == 422:
            model: type[BaseModel] = (
                TextOrInvalidAnswer if code in text_codes else ProblemOrInvalidAnswer
            )
        else:
            model = TextAnswer if code in text_codes else ProblemAnswer
        found[code] = _answer(model, _WHEN[code])
    return found


admin_responses = _responses((400, 401, 403, 404, 409, 422), (400,))
teacher_responses = _responses((400, 401, 403, 404, 409, 422, 502), (400,))
# The roster routes answer their own refusals as plain sentences; who may call them (401, 403)
# is decided by the same bearer check as everywhere else.
roster_responses = _responses((400, 401, 403, 404, 409, 422, 502), (400, 404, 409, 422, 502))


def _not_found(message: str, *, text: bool = False) -> HTTPException:
    detail: Any = message if text else {"problem": "not_found", "message": message}
    return HTTPException(status.HTTP_404_NOT_FOUND, detail)


def storable(row_id: int) -> bool:
    """True if a row could have this id."""
    return 1 <= row_id <= MAX_ROW_ID


def class_id_in_path(
    class_id: Annotated[int, Path(description="The class's id.")],
) -> int:
    if not storable(class_id):
        raise _not_found(f"There is no class with id {class_id}; it may have been deleted.")
    return class_id


def coursework_id_in_path(
    coursework_id: Annotated[int, Path(description="The coursework's id.")],
) -> int:
    if not storable(coursework_id):
        raise _not_found(f"There is no coursework with id {coursework_id}.")
    return coursework_id


def report_id_in_path(
    report_id: Annotated[int, Path(description="The export report's id.")],
) -> int:
    if not storable(report_id):
        raise _not_found(f"There is no export report with id {report_id}.")
    return report_id


def job_id_in_path(
    job_id: Annotated[int, Path(description="The job's id.")],
) -> int:
    if not storable(job_id):
        raise _not_found(f"You have no export job with id {job_id}.")
    return job_id


def roster_job_id_in_path(
    job_id: Annotated[int, Path(description="The roster import job's id.")],
) -> int:
    if not storable(job_id):
        raise _not_found(f"There is no roster import job with id {job_id}.", text=True)
    return job_id


def token_id_in_path(
    token_id: Annotated[int, Path(description="The API token's id (from the token list).")],
) -> int:
    if not storable(token_id):
        raise _not_found(f"There is no API token with id {token_id}.")
    return token_id


ClassId = Annotated[int, Depends(class_id_in_path)]
CourseworkId = Annotated[int, Depends(coursework_id_in_path)]
ReportId = Annotated[int, Depends(report_id_in_path)]
JobId = Annotated[int, Depends(job_id_in_path)]
RosterJobId = Annotated[int, Depends(roster_job_id_in_path)]
TokenId = Annotated[int, Depends(token_id_in_path)]
