"""REST API for administrators under /api/admin/google: the Google Classroom connection (status,
connect, authorise, disconnect). Admin-only; no logic here: each route calls
`sislink.sync.google_connection`, the same services as `sislink google ...`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field, SecretStr

from sislink.classroom import Actor, Classroom
from sislink.console.auth import admin_actor, get_classroom
from sislink.console.routes.admin import answered_plainly
from sislink.sync import google_connection as service
from sislink.sync.google_connection import DEFAULT_API_ENDPOINT

router = APIRouter()


class GoogleConnectRequest(BaseModel):
    """The service account's JSON key file (its text) and an administrator's email. The key is
    stored sealed and never echoed back or logged."""

    key_file: SecretStr = Field(description="The JSON key file's text.")
    admin_email: str
    domain: str | None = None
    api_endpoint: str = DEFAULT_API_ENDPOINT


@router.get("/connection")
def google_status(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    view = service.status(classroom)
    return {"connected": view is not None, "connection": view.as_dict() if view else None}


@router.post("/connection", status_code=status.HTTP_201_CREATED)
def google_connect(
    body: GoogleConnectRequest,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        return service.connect(
            classroom,
            actor,
            key_file_text=body.key_file.get_secret_value(),
            admin_email=body.admin_email,
            domain=body.domain,
            api_endpoint=body.api_endpoint,
        ).as_dict()


@router.post("/connection/authorise")
def google_authorise(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    # A plain function: the client is synchronous (threads), so FastAPI runs it off the loop.
    with answered_plainly():
        return service.authorise(classroom, actor).as_dict()


@router.post("/connection/disconnect")
def google_disconnect(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    with answered_plainly():
        return service.disconnect(classroom, actor).as_dict()
