"""The Classroom API's discovery document as shipped inside google-api-python-client, read as a
table of methods: the one authority on shapes for the client (batch path, scopes) and for the
local Classroom (routes, parameters, request bodies). Nothing is fetched at run time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

DOCUMENT = "discovery_cache/documents/classroom.v1.json"


@cache
def document() -> dict[str, Any]:
    """The shipped classroom.v1 discovery document (parsed once)."""
    text = resources.files("googleapiclient").joinpath(DOCUMENT).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@dataclass(frozen=True)
class Method:
    """One API method: `classroom.courses.students.create`, POST, `v1/courses/{courseId}/students`."""

    id: str
    http_method: str
    path: str  # flatPath, relative to the root: v1/courses/{courseId}/students
    parameters: dict[str, dict[str, Any]]
    request_schema: str | None
    response_schema: str | None
    scopes: tuple[str, ...]
    pattern: re.Pattern[str] = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """The id without the API's name: `courses.students.create`."""
        return self.id.removeprefix("classroom.")

    def path_parameters(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def _pattern(path: str) -> re.Pattern[str]:
    # A path parameter is one segment; ":verb" suffixes (e.g. ":return") are literal.
    regex = ""
    for piece in re.split(r"({\w+})", path):
        if piece.startswith("{"):
            regex += f"(?P<{piece[1:-1]}>[^/:]+)"
        else:
            regex += re.escape(piece)
    return re.compile(f"^/{regex}$")


@cache
def methods() -> tuple[Method, ...]:
    """Every method of the document (nested resources included)."""
    found: list[Method] = []

    def walk(resource: dict[str, Any]) -> None:
        for desc in resource.get("methods", {}).values():
            path = desc.get("flatPath", desc["path"])
            found.append(
                Method(
                    id=desc["id"],
                    http_method=desc["httpMethod"],
                    path=path,
                    parameters=desc.get("parameters", {}),
                    request_schema=(desc.get("request") or {}).get("$ref"),
                    response_schema=(desc.get("response") or {}).get("$ref"),
                    scopes=tuple(desc.get("scopes", ())),
                    pattern=_pattern(path),
                )
            )
        for child in resource.get("resources", {}).values():
            walk(child)

    walk(document())
    return tuple(found)


def method_named(name: str) -> Method:
    """A method by its name without the API prefix, e.g. `courses.students.create`."""
    for method in methods():
        if method.name == name:
            return method
    raise KeyError(name)


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = document()["schemas"][name]
    return found


def batch_path() -> str:
    """Where batches go, relative to the API's root (`batch`)."""
    return str(document().get("batchPath", "batch"))


def common_parameters() -> dict[str, dict[str, Any]]:
    """Parameters every method accepts (alt, fields, prettyPrint, quotaUser, ...)."""
    found: dict[str, dict[str, Any]] = document()["parameters"]
    return found


def known_scopes() -> frozenset[str]:
    return frozenset(document()["auth"]["oauth2"]["scopes"])
