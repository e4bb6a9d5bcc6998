"""Header edits shared by the provider quirks: case-insensitive, JSON-valued headers merged."""

from __future__ import annotations

import json
from typing import Any


def get_header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set ``name``, dropping any spelling of it already present."""
    for key in [k for k in headers if k.lower() == name.lower()]:
        del headers[key]
    headers[name] = value


def json_header(headers: dict[str, str], name: str) -> dict[str, Any]:
    """The JSON object a header already holds (from a template), or an empty one."""
    try:
        value = json.loads(get_header(headers, name) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dump_json(value: dict[str, Any]) -> str:
    """Compact ASCII JSON: safe in a header, folded by the MIME writer if long."""
    return json.dumps(value, separators=(", ", ": "), sort_keys=True, ensure_ascii=True)
