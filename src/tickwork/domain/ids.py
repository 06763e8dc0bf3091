"""Identifiers: sortable unique ids, and the canonical idempotency key of a slot.

An id is a short type prefix, an underscore and 26 characters of lower-case Crockford
base32 (the ULID layout): 48 bits of milliseconds since the Unix epoch, then 80 random
bits. Ids therefore sort by creation time to the millisecond as plain strings (in SQL
too). Within one millisecond a process makes them *monotonic*, as ULID's monotonic mode
does: the random part of the next id is the previous one's plus a random step, so ids a
process makes in one millisecond sort in the order it made them (a definition push
lists its triggers in the order they were pushed; the slots one dispatch pass records
list in slot order). Ids of different processes within one millisecond still sort
arbitrarily among themselves. The instant is a parameter: this module never reads the
clock.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime, timedelta

from tickwork.domain.schedule import format_instant

__all__ = ["id_timestamp", "new_id", "schedule_key"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
# Every pair of digits, indexed by the 10 bits it encodes; the shifts of the 13 pairs.
_DIGIT_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_PAIR_SHIFTS = tuple(range(120, -1, -10))
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,15}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BODY_LENGTH = 26
_RANDOM_BYTES = 10
_MAX_MILLIS = (1 << 48) - 1
_MAX_RANDOM = (1 << 80) - 1
# The largest step between two ids of one millisecond: large enough that the next id
# cannot be guessed from the last, small enough that 2^40 ids fit in the 80 bits.
_STEP_BYTES = 5

_WORDS: set[str] = set()  # prefixes already checked

_lock = threading.Lock()
_last = (-1, 0)  # (milliseconds, random part) of the last id made without ``entropy``


def _random_part(millis: int) -> int:
    global _last
    with _lock:
        last_millis, last_random = _last
        step = int.from_bytes(os.urandom(_STEP_BYTES), "big") + 1
        if millis == last_millis and last_random + step <= _MAX_RANDOM:
            value = last_random + step
        else:
            value = int.from_bytes(os.urandom(_RANDOM_BYTES), "big")
        _last = (millis, value)
        return value


def new_id(prefix: str, now: datetime, entropy: bytes | None = None) -> str:
    """A new id such as ``trg_01jnv3x7k2q9c8d4f6g5h3j2kq``.

    ``prefix`` is a short lower-case word (``trg``; a trailing ``_`` is tolerated).
    ``now`` (aware) fixes the time part; ``entropy`` (10 bytes) fixes the random part
    for tests. Without it the random part comes from :func:`os.urandom`, monotonic
    within a millisecond (see the module docstring).
    """
    word = prefix[:-1] if prefix.endswith("_") else prefix
    if word not in _WORDS:
        if not _PREFIX.fullmatch(word):
            raise ValueError(f"id prefix {prefix!r} must be a short lower-case word such as 'trg'")
        _WORDS.add(word)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    millis = (now - _EPOCH) // timedelta(milliseconds=1)
    if not 0 <= millis <= _MAX_MILLIS:
        raise ValueError("now is outside the range an id can encode")
    if entropy is None:
        random_part = _random_part(millis)
    elif len(entropy) != _RANDOM_BYTES:
        raise ValueError(f"entropy must be {_RANDOM_BYTES} bytes")
    else:
        random_part = int.from_bytes(entropy, "big")
    number = (millis << 80) | random_part
    # 128 bits in 26 base32 digits (130 bits, the first two zero), two digits at a time.
    return f"{word}_{''.join([_DIGIT_PAIRS[(number >> s) & 0x3FF] for s in _PAIR_SHIFTS])}"


def id_timestamp(value: str) -> datetime:
    """The instant (millisecond precision, UTC) encoded in an id made by :func:`new_id`."""
    _, sep, body = value.rpartition("_")
    if not sep or len(body) != _BODY_LENGTH or any(c not in _DECODE for c in body):
        raise ValueError(f"{value!r} is not a tickwork id")
    number = 0
    for c in body:
        number = number * 32 + _DECODE[c]
    return _EPOCH + timedelta(milliseconds=number >> 80)


def schedule_key(trigger_id: str, scheduled_for: datetime) -> str:
    """The idempotency key of a scheduled slot: ``sched:{trigger_id}:{scheduled_for}``.

    ``scheduled_for`` is written as ISO-8601 UTC with a ``Z``, e.g.
    ``sched:trg_01j…:2026-03-08T07:00:00Z`` (see :func:`format_instant` for instants
    with a fraction of a second). The same slot gives the same key in every process.
    """
    return f"sched:{trigger_id}:{format_instant(scheduled_for)}"
