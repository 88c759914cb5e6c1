"""The classroom: our own data (SQLAlchemy, SQLite or PostgreSQL) and the services that change it.

Open it with `open_classroom(Settings.from_env())`; migrations run on open. Services live in
`sislink.classroom.services`, roster bulk upserts in `sislink.classroom.bulk`.
"""

from sislink.classroom.db import Classroom, create_classroom_engine, migrate, open_classroom
from sislink.classroom.errors import (
    ClassroomError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SecretUnreadable,
)
from sislink.classroom.secrets import SecretBox, load_secret_box
from sislink.classroom.services.access import Actor

__all__ = [
    "Actor",
    "Classroom",
    "ClassroomError",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "SecretBox",
    "SecretUnreadable",
    "create_classroom_engine",
    "load_secret_box",
    "migrate",
    "open_classroom",
]
