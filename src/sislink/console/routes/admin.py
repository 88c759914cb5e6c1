"""REST API for administrators under /api/admin: the SIS connection (connect, authorise, permission, disconnect, status)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
