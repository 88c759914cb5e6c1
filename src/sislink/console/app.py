"""The console application: the web pages (administrators, teachers) and the REST API.

`create_app(classroom)` builds it; `serve_console(classroom, host=, port=)` serves it with
uvicorn and, by default, runs the roster-import scheduler in the same process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from sislink.classroom import Classroom, open_classroom
from sislink.console import oidc
from sislink.console.background import BackgroundWork
from sislink.console.i18n import Languages
from sislink.console.pages import (
    accounts,
    activity,
    class_actions,
    classes,
    directory,
    language,
    login,
    school,
    setup,
)
from sislink.console.pages import google as google_pages
from sislink.console.pages import roster as roster_pages
from sislink.console.pages import sign_in as sign_in_pages
from sislink.console.pages.base import (
    LoginRequired,
    PageError,
    error_page,
    ids_that_name_rows,
    redirect,
)
from sislink.console.request_ids import RequestIds
from sislink.console.routes import admin, google, health, metrics, problems, roster, teacher
from sislink.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
# The most any request may send (forms, uploads, JSON), counted as it is read, whatever its
# Content-Length says: the largest real one is a gradebook sheet of at most 2 MB
# (class_actions.MAX_SHEET_BYTES) with its form around it. Without a bound, anyone, signed
# in or not, could post a form of 1,000 fields of 1 MB each (held in memory) or files of any
# size (spooled to disk), all read before the CSRF token or the sign-in is looked at, and a
# JSON body of any size was read and parsed before its API token was.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
logger = logging.getLogger("sislink.console")


def classroom_of(app: FastAPI) -> Classroom:
    """The classroom the app serves (`app.state.classroom`, else opened from the environment)."""
    found = getattr(app.state, "classroom", None)
    if found is None:
        found = open_classroom(Settings.from_env())
        app.state.classroom = found
    assert isinstance(found, Classroom)
    return found


def create_app(
    classroom: Classroom | None = None,
    *,
    scheduler: bool = False,
    allow_private_sis: bool | None = None,
) -> FastAPI:
    """The console app. Without `classroom`, the installation's is opened from the environment
    on first use. `scheduler` runs scheduled roster imports while the app runs;
    `allow_private_sis` (None: SISLINK_ALLOW_PRIVATE_SIS) lets a SIS on a private address in."""
    work = BackgroundWork()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if scheduler:
            work.start_scheduler(classroom_of(app))
        try:
            yield
        finally:
            work.stop()

    app = FastAPI(
        title="sislink",
        summary="Classroom to SIS link over OneRoster.",
        lifespan=lifespan,
        max_body_size=MAX_REQUEST_BYTES,
    )
    if classroom is not None:
        app.state.classroom = classroom
    app.state.background = work
    app.state.allow_private_sis = allow_private_sis
    app.add_middleware(RequestIds)
    # Each request's language (the picker's cookie, else Accept-Language), for pages and errors.
    app.add_middleware(Languages)
    # Each router's refusals, with the bodies actually sent, are in the OpenAPI (problems.py).
    app.include_router(
        admin.router, prefix="/api/admin", tags=["admin"], responses=problems.admin_responses
    )
    app.include_router(
        google.router,
        prefix="/api/admin/google",
        tags=["google"],
        responses=problems.admin_responses,
    )
    app.include_router(
        roster.router,
        prefix="/api/admin/roster",
        tags=["roster"],
        responses=problems.roster_responses,
    )
    app.include_router(
        teacher.router,
        prefix="/api/teacher",
        tags=["teacher"],
        responses=problems.teacher_responses,
    )
    # Probes for load balancers and orchestrators: unauthenticated, status words only.
    app.include_router(health.router, include_in_schema=False)
    app.include_router(metrics.router, include_in_schema=False)  # SISLINK_METRICS_TOKEN
    # A page's ids beyond any row's are a 404 page before anything else (not a 500).
    page_checks = [Depends(ids_that_name_rows)]
    for pages in (
        login,
        setup,
        google_pages,
        roster_pages,
        activity,
        accounts,
        directory,
        class_actions,
        classes,
        school,
        language,
    ):
        app.include_router(pages.router, include_in_schema=False, dependencies=page_checks)
    # Sign in with the school's accounts (OpenID Connect), and its administrator's page (a
    # provider's number is looked up as text there: any number is a sentence, not a 500).
    app.include_router(oidc.router, include_in_schema=False)
    app.include_router(sign_in_pages.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return redirect(request, f"/login?next={quote(exc.next_path, safe='/')}")

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return error_page(request, exc)

    return app


class _AccessPathRedacted(logging.Filter):
    """uvicorn's access log names each request's path and query: a secret a link carries (a
    set-password link's token, good for seven days) is masked there as in sislink's own logs.
    Its formatter reads the record's five arguments, so only the path among them changes."""

    def filter(self, record: logging.LogRecord) -> bool:
        from sislink.operations.logs import redact

        given = record.args
        if isinstance(given, tuple) and len(given) == 5:
            record.args = (*given[:2], redact(str(given[2])), *given[3:])
        return True


def _redact_access_log() -> None:
    """Mask secrets in uvicorn's access log, whichever handlers uvicorn then gives it (a
    logger's filters outlive the logging configuration uvicorn installs)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(found, _AccessPathRedacted) for found in access.filters):
        access.addFilter(_AccessPathRedacted())


def serve_console(
    classroom: Classroom,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    scheduler: bool = True,
    allow_private_sis: bool | None = None,
    log_level: str = "info",
) -> None:
    """Serve the console (pages and REST API) until Ctrl-C; with `scheduler`, scheduled roster
    imports run in the same process. Blocking: `sislink serve` and `sislink demo --serve`."""
    import uvicorn

    from sislink.jobs.runner import recover_interrupted
    from sislink.operations.logs import configure_logging, json_logs_wanted

    configure_logging()

    # Jobs left by a process that was killed are failed now, releasing their locks; jobs of a
    # process still running (a CLI export, another server) are theirs and are left alone.
    recovered = recover_interrupted(classroom)
    if recovered:
        logger.warning("jobs %s were left by a process that stopped; run them again", recovered)
    app = create_app(classroom, scheduler=scheduler, allow_private_sis=allow_private_sis)
    _redact_access_log()
    if json_logs_wanted():
        # uvicorn's own handlers would print plain lines: its loggers go through ours instead.
        uvicorn.run(app, host=host, port=port, log_level=log_level, log_config=None)
    else:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
