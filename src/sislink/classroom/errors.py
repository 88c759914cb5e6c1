"""Errors raised by the classroom's services, in words a teacher or administrator can act on."""

from __future__ import annotations


class ClassroomError(Exception):
    """Something the classroom refused to do; the message says what and what to do instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ClassroomError):
    """A value given to a service is not acceptable (for example, a negative max points)."""


class NotFound(ClassroomError):
    """The thing asked for does not exist (any more)."""


class PermissionDenied(ClassroomError):
    """The person acting may not do this (for example, edit a class they do not teach)."""


class Conflict(ClassroomError):
    """This would clash with what is already stored (for example, an email already in use)."""


class SecretUnreadable(ClassroomError):
    """A stored secret cannot be decrypted with this installation's key."""
