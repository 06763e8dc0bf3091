"""Values that come from targets, made safe to store (SPEC §9).

A target's answer is another tenant's input as far as the database is concerned: one NUL
byte, lone surrogate or over-long id in an outcome must not make the statement that
stores a whole batch of outcomes fail. Everything a target returns passes through here
before it is written: text loses what no database column can hold, and is capped.
"""

from __future__ import annotations

import math
import re
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MAX_CONVERSATION_ID",
    "MAX_ERROR_CHARS",
    "clean_id",
    "clean_json",
    "clean_text",
    "with_traceback",
]

MAX_ERROR_CHARS = 4000
MAX_CONVERSATION_ID = 200
# Nested answers are stored up to this depth; deeper parts become their text.
_MAX_DEPTH = 64
_REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters other than tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str, max_chars: int | None = None) -> str:
    """``value`` without NUL bytes or lone surrogates (each becomes U+FFFD), cut to
    ``max_chars`` characters (the cut is marked with an ellipsis)."""
    if "\x00" in value:
        value = value.replace("\x00", _REPLACEMENT)
    if not value.isascii() and _SURROGATE.search(value):
        value = _SURROGATE.sub(_REPLACEMENT, value)
    if max_chars is not None and len(value) > max_chars:
        value = value[: max_chars - 1] + "…"
    return value


def clean_id(value: object, max_chars: int = MAX_CONVERSATION_ID) -> str | None:
    """An identifier a target returned (a conversation id), or None when it is not one:
    not a string, empty, longer than ``max_chars``, or holding control characters or lone
    surrogates. An id is never cut: a shortened id would name something else."""
    if not isinstance(value, str) or not value or len(value) > max_chars:
        return None
    if _CONTROL.search(value) or (not value.isascii() and _SURROGATE.search(value)):
        return None
    return value


def clean_json(value: Any, _depth: int = 0) -> Any:
    """A JSON document every backend stores as given: strings (keys too) cleaned as by
    :func:`clean_text`, non-finite numbers as null, anything else as its text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)
    if _depth >= _MAX_DEPTH:
        return clean_text(_safe_str(value), MAX_ERROR_CHARS)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [clean_json(v, _depth + 1) for v in value]
    return clean_text(_safe_str(value), MAX_ERROR_CHARS)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return type(value).__name__


def with_traceback(error: str, exc: BaseException | None = None) -> str:
    """``error``, followed by ``exc``'s traceback when there is one, in at most
    :data:`MAX_ERROR_CHARS` characters: the message first, then as many of the innermost
    frames (where the handler raised) as fit."""
    head = error[:MAX_ERROR_CHARS]
    if exc is None:
        return head
    lines = traceback.format_exception(exc)
    # The header and the last lines (the exception itself) are kept; frames from the
    # outermost are left out until the rest fits.
    first, frames, last = lines[:1], lines[1:-1], lines[-1:]
    room = MAX_ERROR_CHARS - len(head) - 2 - sum(len(x) for x in (*first, *last))
    kept: list[str] = []
    for frame in reversed(frames):
        if len(frame) > room - 40:
            break
        kept.insert(0, frame)
        room -= len(frame)
    if room < 0:
        return head
    dropped = len(frames) - len(kept)
    note = [f"  ... {dropped} outer frame(s) left out\n"] if dropped else []
    text = head + "\n\n" + "".join([*first, *note, *kept, *last]).rstrip("\n")
    return text[:MAX_ERROR_CHARS]
