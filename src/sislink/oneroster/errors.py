"""The imsx status of OneRoster errors: written one strict way, read in every way real SIS send it.

Written (provider): `{"imsx_codeMajor": ..., "imsx_severity": ..., "imsx_description": ...,
"imsx_CodeMinor": {"imsx_codeMinorField": [{"imsx_codeMinorFieldName": "TargetEndSystem",
"imsx_codeMinorFieldValue": ...}]}}`, as the 1.2 OpenAPI defines imsx_StatusInfoDType.

Read (consumer): that, the same wrapped in `imsx_StatusInfo`, a plain string minor, a single
minor field object instead of a list, and 1.1's `statusInfoSet` array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

CodeMajor = Literal["success", "processing", "failure", "unsupported"]
Severity = Literal["status", "warning", "error"]

INVALID_FILTER_FIELD = "invalid_filter_field"
INVALID_SELECTION_FIELD = "invalid_selection_field"
INVALID_SORT_FIELD = "invalid_sort_field"
INVALID_DATA = "invaliddata"
UNAUTHORISED = "unauthorisedrequest"
FORBIDDEN = "forbidden"
SERVER_BUSY = "server_busy"
UNKNOWN_OBJECT = "unknownobject"
INTERNAL_SERVER_ERROR = "internal_server_error"


@dataclass(frozen=True)
class ImsxStatus:
    code_major: str
    severity: str
    description: str = ""
    code_minors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def code_minor(self) -> str | None:
        return self.code_minors[0] if self.code_minors else None

    def body(self) -> dict[str, Any]:
        """This status as the 1.2 OpenAPI's imsx_StatusInfoDType."""
        data: dict[str, Any] = {"imsx_codeMajor": self.code_major, "imsx_severity": self.severity}
        if self.description:
            data["imsx_description"] = self.description
        if self.code_minors:
            data["imsx_CodeMinor"] = {
                "imsx_codeMinorField": [
                    {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": m}
                    for m in self.code_minors
                ]
            }
        return data


def failure(code_minor: str, description: str) -> ImsxStatus:
    """An error status, as the provider sends with a 4xx or 5xx."""
    return ImsxStatus("failure", "error", description, (code_minor,))


def read_status(body: Any) -> ImsxStatus | None:
    """Find an imsx status in any shape a SIS sends; None when the body carries none."""
    if isinstance(body, list):
        for item in body:
            found = read_status(item)
            if found:
                return found
        return None
    if not isinstance(body, dict):
        return None
    for wrapper in ("imsx_StatusInfo", "imsx_statusInfo", "statusInfo"):
        if isinstance(body.get(wrapper), dict):
            return read_status(body[wrapper])
    for set_key in ("statusInfoSet", "imsx_statusInfoSet"):
        if set_key in body:
            return read_status(body[set_key])
    major = body.get("imsx_codeMajor", body.get("codeMajor"))
    if major is None:
        return None
    severity = body.get("imsx_severity", body.get("severity", "error"))
    description = body.get("imsx_description", body.get("description", "")) or ""
    minor = body.get("imsx_CodeMinor", body.get("imsx_codeMinor", body.get("codeMinor")))
    return ImsxStatus(str(major), str(severity), str(description), tuple(_read_minors(minor)))


def _read_minors(minor: Any) -> list[str]:
    if minor is None:
        return []
    if isinstance(minor, str):
        return [minor]
    if isinstance(minor, list):
        return [m for item in minor for m in _read_minors(item)]
    if isinstance(minor, dict):
        for key in ("imsx_codeMinorField", "codeMinorField"):
            if key in minor:
                return _read_minors(minor[key])
        for key in ("imsx_codeMinorFieldValue", "codeMinorFieldValue"):
            if key in minor:
                return [str(minor[key])]
    return []
