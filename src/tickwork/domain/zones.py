"""IANA time zones, always from the ``tzdata`` package.

Loading zones from the package rather than the host's ``/usr/share/zoneinfo`` means a
schedule fires at the same instants on every machine running the same tickwork release.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, tzinfo
from importlib import resources
from zoneinfo import ZoneInfo

from tickwork.errors import InvalidSchedule

_ROOT = resources.files("tzdata").joinpath("zoneinfo")


@functools.lru_cache(maxsize=1024)
def _load(name: str) -> ZoneInfo | None:
    if name in ("UTC", "Etc/UTC"):
        return ZoneInfo("UTC") if _ROOT.joinpath(name).is_file() else None
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or not all(c.isalnum() or c in "/_-+" for c in name)
    ):
        return None
    path = _ROOT.joinpath(*parts)
    if not path.is_file():
        return None
    with path.open("rb") as f:
        head = f.read(4)
        if head != b"TZif":
            return None
        f.seek(0)
        return ZoneInfo.from_file(f, key=name)


def get_zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The zone called ``name``, or :class:`InvalidSchedule` naming ``field``."""
    zone = _load(name) if isinstance(name, str) else None
    if zone is None:
        raise InvalidSchedule(
            field, f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        )
    return zone


def is_utc(zone: tzinfo) -> bool:
    """True when the zone never has an offset other than zero (UTC and its aliases)."""
    return zone is UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC")


def offset_at(zone: tzinfo, instant: datetime) -> timedelta:
    """The zone's UTC offset at an aware instant."""
    off = instant.astimezone(zone).utcoffset()
    assert off is not None
    return off
