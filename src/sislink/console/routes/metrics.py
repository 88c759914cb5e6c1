"""GET /metrics: Prometheus metrics (sislink.operations.metrics), for the scraper only.

Only with `Authorization: Bearer <SISLINK_METRICS_TOKEN>`; without the variable set the page
does not exist (404), so an installation that does not scrape shows nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sislink.console.auth import get_classroom
from sislink.operations.metrics import (
    CONTENT_TYPE,
    METRICS_TOKEN_VARIABLE,
    MetricsUnavailable,
    exposition,
)

router = APIRouter()


def _bearer_of(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The metrics in Prometheus' text format, for the holder of the metrics token."""
    expected = os.environ.get(METRICS_TOKEN_VARIABLE, "").strip()
    if not expected:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    if not hmac.compare_digest(_bearer_of(request).encode(), expected.encode()):
        return JSONResponse(
            {"detail": "Send the metrics token: Authorization: Bearer <SISLINK_METRICS_TOKEN>."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        body = await asyncio.to_thread(exposition, get_classroom(request))
    except MetricsUnavailable as unavailable:
        return JSONResponse({"detail": str(unavailable)}, status_code=503)
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
