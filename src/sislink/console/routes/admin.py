"""REST API for administrators under /api/admin: the SIS catalogue, eligibility, the connection
(status, connect, authorise, permission, disconnect), the school's time zone, the audit trail
and API tokens (list, revoke). Admin-only; no logic
here: each route calls `sislink.sync.connection`, the same services as the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field, SecretStr

from sislink.classroom import Actor, Classroom, ClassroomError, Conflict, NotFound, PermissionDenied
from sislink.classroom.services import time_zone
from sislink.classroom.services.api_tokens import list_api_tokens, revoke_api_token
from sislink.classroom.services.people import find_person_by_email
from sislink.console.auth import admin_actor, get_classroom
from sislink.console.routes.problems import TokenId
from sislink.sync import connection as service
from sislink.sync.connection_checks import DEFAULT_TIMEOUT_S
from sislink.sync.errors import (
    AuthorisationFailed,
    ConfirmationRequired,
    InvalidConnectionDetails,
    NotConnected,
    SyncError,
)

router = APIRouter()
# 422 by number: Starlette renamed its constant (UNPROCESSABLE_ENTITY -> _CONTENT).
UNPROCESSABLE = 422


@contextmanager
def answered_plainly() -> Iterator[None]:
    """Service errors become HTTP errors whose `detail` is the service's one sentence."""
    try:
        yield
    except AuthorisationFailed as exc:
        raise HTTPException(
            UNPROCESSABLE, {"problem": exc.problem, "message": exc.message}
        ) from None
    except InvalidConnectionDetails as exc:
        raise HTTPException(
            UNPROCESSABLE,
            {"problem": "invalid_details", "message": exc.message, "suggestion": exc.suggestion},
        ) from None
    except ConfirmationRequired as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, {"problem": "confirmation_required", "message": exc.message}
        ) from None
    except NotConnected as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, {"problem": "not_connected", "message": exc.message}
        ) from None
    except SyncError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, {"problem": "sync", "message": exc.message}
        ) from None
    except PermissionDenied as exc:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, {"problem": "forbidden", "message": exc.message}
        ) from None
    except NotFound as exc:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, {"problem": "not_found", "message": exc.message}
        ) from None
    except Conflict as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, {"problem": "conflict", "message": exc.message}
        ) from None
    except ClassroomError as exc:
        raise HTTPException(UNPROCESSABLE, {"problem": "invalid", "message": exc.message}) from None


class ConnectRequest(BaseModel):
    """What the administrator typed. The secret code is never echoed back or logged."""

    sis: str
    host_url: str
    access_key: str
    secret_code: SecretStr
    token_url: str | None = None
    vendor_key: SecretStr | None = None
    insecure: bool = False
    confirm_different_sis: bool = False
    # How the OAuth 2 token request sends the credentials; None: as the SIS's profile says.
    client_auth: Literal["basic", "post"] | None = None


class AuthoriseRequest(BaseModel):
    confirm_different_sis: bool = False
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=120)


class PermissionsRequest(BaseModel):
    teacher_export: bool


class TimeZoneRequest(BaseModel):
    """The school's IANA time zone; null goes back to SISLINK_TIME_ZONE, else the server's."""

    time_zone: str | None = Field(None, max_length=100, examples=["America/Chicago"])


@router.get("/partners")
def list_partners(actor: Actor = Depends(admin_actor)) -> list[dict[str, Any]]:
    return [entry.as_dict() for entry in service.partners()]


@router.get("/eligibility")
def eligibility(
    sis: str,
    version: str | None = None,
    licence: bool | None = None,
    hosting: Literal["vendor", "self"] | None = None,
    actor: Actor = Depends(admin_actor),
) -> dict[str, Any]:
    with answered_plainly():
        return service.eligibility(
            sis, version=version, has_licence=licence, hosting=hosting
        ).as_dict()


@router.get("/connection")
def connection_status(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    with answered_plainly():
        return service.status(classroom).as_dict()


@router.post("/connection", status_code=status.HTTP_201_CREATED)
def connect(
    body: ConnectRequest,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    extras = {"vendor_key": body.vendor_key.get_secret_value()} if body.vendor_key else {}
    with answered_plainly():
        return service.connect(
            classroom,
            actor,
            sis=body.sis,
            host_url=body.host_url,
            access_key=body.access_key,
            secret_code=body.secret_code.get_secret_value(),
            token_url=body.token_url,
            extra_credentials=extras,
            insecure=body.insecure,
            confirm_different_sis=body.confirm_different_sis,
            client_auth=body.client_auth,
        ).as_dict()


@router.post("/connection/authorise")
async def authorise(
    body: AuthoriseRequest | None = None,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    asked = body or AuthoriseRequest()
    with answered_plainly():
        report = await service.authorise(
            classroom,
            actor,
            confirm_different_sis=asked.confirm_different_sis,
            timeout_s=asked.timeout_s,
        )
    return report.as_dict()


@router.put("/connection/permissions")
def set_permissions(
    body: PermissionsRequest,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        return service.set_teacher_export(classroom, actor, body.teacher_export).as_dict()


@router.get("/time-zone")
def get_time_zone(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, str]:
    """The school's time zone (every time the console shows; the morning summary's hour) and
    where it comes from: `setting`, `environment` (SISLINK_TIME_ZONE) or `server`."""
    with classroom.session() as session:
        found = time_zone.school_time_zone(session)
    return {"time_zone": found.name, "source": found.source}


@router.put("/time-zone")
def set_time_zone(
    body: TimeZoneRequest,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, str]:
    """Set the school's time zone (`sislink time-zone`); a name that is none is refused (422)."""
    with answered_plainly(), classroom.transaction() as session:
        found = time_zone.set_school_time_zone(session, actor, body.time_zone)
    return {"time_zone": found.name, "source": found.source}


@router.post("/connection/disconnect")
def disconnect(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    with answered_plainly():
        return service.disconnect(classroom, actor).as_dict()


@router.get("/audit")
def audit(
    limit: int = Query(100, ge=1, le=1000),
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> list[dict[str, Any]]:
    with answered_plainly():
        return service.audit_trail(classroom, actor, limit=limit)


@router.get("/tokens")
def list_tokens(
    email: str | None = Query(None, description="Only this person's tokens."),
    include_revoked: bool = Query(False, description="Revoked tokens too."),
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> list[dict[str, Any]]:
    """Every API token (never the token itself): whose, its label, when made, last used and
    revoked."""
    with answered_plainly(), classroom.session() as session:
        person_id = None
        if email is not None:
            person = find_person_by_email(session, email)
            if person is None:
                raise NotFound(f"No person has the email {email.strip()!r}.")
            person_id = person.id
        found = list_api_tokens(
            session, actor, person_id=person_id, include_revoked=include_revoked
        )
        return [token.as_json() for token in found]


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: TokenId,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Revoke one API token: it stops working at once."""
    with answered_plainly(), classroom.transaction() as session:
        return revoke_api_token(session, actor, token_id).as_json()
