"""Every request checked against the shipped discovery document, refused as Google's front end
refuses: 400 INVALID_ARGUMENT with its own wording ("Invalid JSON payload received. Unknown
name ...", "Invalid value at 'page_size' (TYPE_INT32), ...") and a BadRequest detail.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sislink.googleclassroom import discovery
from sislink.googleclassroom.emulator.backend import ApiFailure, invalid

_INT32 = (-(2**31), 2**31 - 1)


def snake(name: str) -> str:
    """Google's error messages name fields as protobuf does: `pageSize` -> `page_size`."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _type_name(spec: dict[str, Any], where: str) -> str:
    if spec.get("enum"):
        return f"type.googleapis.com/google.classroom.v1.{where}"
    kind = spec.get("type")
    fmt = spec.get("format")
    if kind == "integer":
        return "TYPE_INT64" if fmt == "int64" else "TYPE_INT32"
    if kind == "number":
        return "TYPE_DOUBLE" if fmt != "float" else "TYPE_FLOAT"
    if kind == "boolean":
        return "TYPE_BOOL"
    return "TYPE_STRING"


def _bad_value(field: str, spec: dict[str, Any], value: Any, where: str) -> ApiFailure:
    shown = json.dumps(value) if not isinstance(value, str) else f'"{value}"'
    return invalid(f"Invalid value at '{field}' ({_type_name(spec, where)}), {shown}", field)


def check_query(method: discovery.Method, query: list[tuple[str, str]]) -> dict[str, Any]:
    """The query parameters, typed; unknown, repeated or mistyped ones refused."""
    declared = {
        name: spec for name, spec in method.parameters.items() if spec.get("location") == "query"
    }
    common = discovery.common_parameters()
    values: dict[str, Any] = {}
    for name, raw in query:
        spec = declared.get(name) or common.get(name)
        if spec is None:
            raise invalid(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                f"parameter. Field '{name}' could not be found in request message."
            )
        field = snake(name)
        repeated = bool(spec.get("repeated"))
        if name in values and not repeated:
            raise invalid(
                f"Invalid JSON payload received. Field '{field}' is not repeated but was "
                "given more than once."
            )
        value: Any = raw
        if spec.get("type") == "integer":
            try:
                value = int(raw)
            except ValueError:
                raise _bad_value(field, spec, raw, "") from None
            if spec.get("format") == "int32" and not _INT32[0] <= value <= _INT32[1]:
                raise _bad_value(field, spec, raw, "")
        elif spec.get("type") == "boolean":
            if raw not in ("true", "false"):
                raise _bad_value(field, spec, raw, "")
            value = raw == "true"
        if spec.get("enum") and value not in spec["enum"]:
            index = f"[{len(values.get(name, []))}]" if repeated else ""
            enum_type = "".join(p[:1].upper() + p[1:] for p in name.removesuffix("s").split("_"))
            raise _bad_value(f"{field}{index}", spec, raw, enum_type)
        if repeated:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    for name, spec in declared.items():
        if spec.get("required") and name not in values:
            raise invalid(f"Missing required parameter: {name}", snake(name))
    if values.get("alt", "json") != "json":
        raise invalid(f"The local Classroom answers only alt=json, not alt={values['alt']}.")
    return values


def check_body(method: discovery.Method, raw: bytes) -> dict[str, Any] | None:
    """The JSON body, checked against the method's request schema (None for no schema)."""
    text = raw.decode("utf-8", "replace").strip()
    if method.request_schema is None:
        if text and text not in ("{}", "null"):
            raise invalid("Invalid JSON payload received. This method takes no request body.")
        return None
    if not text:
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        raise invalid("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(body, dict):
        raise invalid(
            f"Invalid JSON payload received. Expected an object for {snake(method.request_schema)}."
        )
    _check_object(body, method.request_schema, snake(method.request_schema))
    return body


def _check_object(value: dict[str, Any], schema_name: str, where: str) -> None:
    properties = discovery.schema(schema_name).get("properties", {})
    # Free-form objects (`"type": "object"` with additionalProperties) take any keys.
    if discovery.schema(schema_name).get("additionalProperties") is not None:
        return
    for key, item in value.items():
        spec = properties.get(key)
        if spec is None:
            raise invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot "
                "find field.",
                where,
            )
        _check_value(item, spec, f"{where}.{snake(key)}", schema_name)


def _check_value(item: Any, spec: dict[str, Any], where: str, owner: str) -> None:
    if item is None:
        return
    ref = spec.get("$ref")
    if ref:
        if not isinstance(item, dict):
            raise invalid(f"Invalid JSON payload received. Expected an object at '{where}'.", where)
        _check_object(item, ref, where)
        return
    kind = spec.get("type")
    if kind == "array":
        if not isinstance(item, list):
            raise invalid(f"Invalid JSON payload received. Expected a list at '{where}'.", where)
        for index, element in enumerate(item):
            _check_value(element, spec.get("items", {}), f"{where}[{index}]", owner)
        return
    if kind == "object":
        if not isinstance(item, dict):
            raise invalid(f"Invalid JSON payload received. Expected an object at '{where}'.", where)
        return
    enum_type = f"{owner}.{where.rsplit('.', 1)[-1]}"
    if kind == "string":
        fmt = spec.get("format")
        if fmt == "int64" and isinstance(item, int) and not isinstance(item, bool):
            return
        if not isinstance(item, str):
            raise _bad_value(where, spec, item, enum_type)
        if spec.get("enum") and item not in spec["enum"]:
            raise _bad_value(where, spec, item, enum_type)
        if fmt == "google-datetime":
            try:
                datetime.fromisoformat(item.replace("Z", "+00:00"))
            except ValueError:
                raise _bad_value(where, spec, item, enum_type) from None
        return
    if kind == "integer":
        if isinstance(item, bool) or not (
            isinstance(item, int) or (isinstance(item, float) and item.is_integer())
        ):
            raise _bad_value(where, spec, item, enum_type)
        return
    if kind == "number":
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise _bad_value(where, spec, item, enum_type)
        return
    if kind == "boolean" and not isinstance(item, bool):
        raise _bad_value(where, spec, item, enum_type)
