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
* ``names`` given to the renderer are top-level names that come before the payload's:
  at run time ``previous`` is one (the trigger's previous completed run, SPEC §13), so
  ``{{ previous.result.output_text }}`` reads the last run's output, and renders as
  nothing when there is none.

A template repeats its placeholders at will, so a small template over a large payload can
render a huge message: :func:`rendered_size` gives the exact size in UTF-8 bytes without
building the message, and :func:`render_message` refuses to build one above a limit.
"""

from __future__ import annotations

import json
import re
from collections import ChainMap
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

__all__ = ["MessageTooLarge", "render_message", "rendered_size"]

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_MISSING = object()


class MessageTooLarge(Exception):
    """The message would be larger than the limit it is rendered under."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the message renders to {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


def render_message(
    template: str | None,
    payload: Mapping[str, Any] | None,
    max_bytes: int | None = None,
    *,
    names: Mapping[str, Any] | None = None,
) -> str:
    """Fill ``template``'s placeholders from ``payload`` (and ``names``, which come
    first); see the module docstring.

    With ``max_bytes``, raises :class:`MessageTooLarge` instead of building a message
    larger than that (in UTF-8 bytes).
    """
    if max_bytes is not None:
        size = rendered_size(template, payload, names=names)
        if size > max_bytes:
            raise MessageTooLarge(size, max_bytes)
    if template is None or template == "":
        return _to_json(payload if payload is not None else {})
    if not isinstance(template, str):
        template = str(template)
    texts = _Texts(_root(payload, names))
    return _PLACEHOLDER.sub(lambda m: texts.of(m.group(1)), template)


def _root(payload: Mapping[str, Any] | None, names: Mapping[str, Any] | None) -> object:
    if not names:
        return payload
    if not isinstance(payload, Mapping):
        return names
    return ChainMap(dict(names), payload)  # type: ignore[arg-type]


def rendered_size(
    template: str | None,
    payload: Mapping[str, Any] | None,
    *,
    names: Mapping[str, Any] | None = None,
) -> int:
    """The size in UTF-8 bytes of what :func:`render_message` returns, computed without
    building it: each distinct value is rendered once, however often it is used."""
    if template is None or template == "":
        return _utf8_len(_to_json(payload if payload is not None else {}))
    if not isinstance(template, str):
        template = str(template)
    texts = _Texts(_root(payload, names))
    size = 0
    end = 0
    for match in _PLACEHOLDER.finditer(template):
        size += _utf8_len(template[end : match.start()]) + texts.size(match.group(1))
        end = match.end()
    return size + _utf8_len(template[end:])


class _Texts:
    """Placeholder texts for one payload, each path and each value rendered once."""

    def __init__(self, payload: object) -> None:
        self._payload = payload
        self._by_path: dict[str, tuple[str, int]] = {}
        # Distinct paths can reach one value (``items.0``, ``items.00``): key by identity.
        self._by_value: dict[int, tuple[str, int]] = {}

    def of(self, path: str) -> str:
        return self._entry(path)[0]

    def size(self, path: str) -> int:
        return self._entry(path)[1]

    def _entry(self, path: str) -> tuple[str, int]:
        entry = self._by_path.get(path)
        if entry is None:
            entry = self._by_path[path] = self._render(path)
        return entry

    def _render(self, path: str) -> tuple[str, int]:
        try:
            value = _lookup(self._payload, path)
        except Exception:
            return "", 0
        entry = self._by_value.get(id(value))
        if entry is None:
            try:
                text = _to_text(value)
            except Exception:
                # Payloads are JSON in practice; an exotic object from a Python caller
                # that fails to render must not stop the invocation: it renders as
                # nothing.
                text = ""
            entry = self._by_value[id(value)] = (text, _utf8_len(text))
        return entry


def _utf8_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


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
