"""The console application: FastAPI app factory mounting the REST API routers."""

from __future__ import annotations

from fastapi import FastAPI

from sislink.console.routes import admin, roster, teacher


def create_app() -> FastAPI:
    app = FastAPI(title="sislink", summary="Classroom to SIS link over OneRoster.")
    app.include_router(admin.router, prefix="/api/admin", tags=["admin"])
    app.include_router(roster.router, prefix="/api/admin/roster", tags=["roster"])
    app.include_router(teacher.router, prefix="/api/teacher", tags=["teacher"])
    return app
