"""Message templates (SPEC §6): ``{{ path }}`` placeholders filled from the payload.

Deliberately not a template language: no expressions, filters, loops or attribute access,
so a template stored by a user can never execute anything. Rendering never raises.

* A placeholder is ``{{`` + a dot-path + ``}}``, with optional whitespace inside the
  braces: ``{{ user.name }}``, ``{{items.0.title}}``.
* Each path segment is a key of an object, or a whole number indexing a list.
* A missing value, or null, renders as nothing.
* Strings render as they are, numbers as JSON numbers, booleans as ``true``/``false``,
  objects and lists as compact JSON.
* A rendered value is never itself searched for placeholders.
* No template (None or the empty string) renders the whole payload as compact JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

__all__ = ["render_message"]

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_MISSING = object()


def render_message(template: str | None, payload: Mapping[str, Any] | None) -> str:
    """Fill ``template``'s placeholders from ``payload``; see the module docstring."""
    if template is None or template == "":
        return _to_json(payload if payload is not None else {})
    if not isinstance(template, str):
        template = str(template)
    return _PLACEHOLDER.sub(lambda m: _fill(payload, m.group(1)), template)


def _fill(payload: object, path: str) -> str:
    try:
        return _to_text(_lookup(payload, path))
    except Exception:
        # Payloads are JSON in practice; an exotic object from a Python caller that fails
        # to render must not stop the invocation, so it renders as nothing.
        return ""


def _lookup(root: object, path: str) -> object:
    if not path:
        return _MISSING
    value = root
    for raw in path.split("."):
        segment = raw.strip()
        if isinstance(value, Mapping):
            value = value.get(segment, _MISSING)
        elif _is_list(value) and segment.isdigit() and segment.isascii():
            index = int(segment)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _is_list(value: object) -> TypeGuard[Sequence[object]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _to_text(value: object) -> str:
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Mapping) or _is_list(value):
        return _to_json(value)
    return str(value)


def _to_json(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (ValueError, TypeError, RecursionError):
        pass
    # A cycle, an integer too long to print, or an object whose str() fails.
    try:
        return str(value)
    except Exception:
        return ""
