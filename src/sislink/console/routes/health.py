"""GET /healthz (the process answers) and GET /readyz (it can do its work: the database
answers, its schema is current, the broker accepts connections when one is configured).

Unauthenticated, for load balancers and orchestrators: the answers are status words only
(sislink.operations.health), never a host, an error or a revision.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sislink.classroom import Classroom
from sislink.console.auth import get_classroom
from sislink.operations.health import check_readiness_within

router = APIRouter()
logger = logging.getLogger("sislink.console")
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up and answering."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when every check is "ok" (or "not_checked"), else 503; the checks by name."""
    classroom: Classroom | None
    try:
        classroom = get_classroom(request)
    except Exception:  # the database could not even be opened (and migrated)
        logger.warning("readiness: the classroom could not be opened", exc_info=True)
        classroom = None
    readiness = await check_readiness_within(classroom)
    return JSONResponse(
        readiness.to_dict(), status_code=200 if readiness.ready else 503, headers=NO_STORE
    )
