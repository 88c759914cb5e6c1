"""REST API for teachers under /api/teacher: their classes, links, coursework, marks, exports."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
