"""REST API for the roster import under /api/admin/roster."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
