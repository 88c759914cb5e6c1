"""Errors raised by sync services, each a plain sentence saying what failed and what to do.

SyncError
+-- NotConnected              no current, authorised SIS connection
+-- InvalidConnectionDetails  what the administrator typed cannot be used (before any call)
+-- ConfirmationRequired      this would switch to a different SIS: the admin must confirm
+-- AuthorisationFailed       the SIS did not accept the connection; `problem` names why
"""

from __future__ import annotations


class SyncError(Exception):
    """Something sync refused or could not do; `message` is one plain sentence for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotConnected(SyncError):
    """There is no authorised SIS connection (never connected, not yet authorised, or
    disconnected): nothing may be imported from or exported to the SIS."""


class InvalidConnectionDetails(SyncError):
    """A Host URL, token URL, partner name or credential that cannot be used, found before any
    call to the SIS. `suggestion` is a value that would work, when one is known."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


class ConfirmationRequired(SyncError):
    """Connecting would replace the SIS sislink is linked to by a different one; the
    administrator must confirm (old class links are then set aside)."""


class AuthorisationFailed(SyncError):
    """The SIS did not accept the connection. `problem` is a stable name for the cause (dns,
    refused, tls, timeout, unreachable, wrong_credentials, missing_scope, wrong_path,
    wrong_version, wrong_token_url, not_oneroster, no_district, sis_error, rate_limited);
    `message` says what failed and what to do."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
