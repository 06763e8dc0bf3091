"""Business calendars (SPEC §16): which local dates a trigger does not fire on, and why.

A calendar is the JSON object a trigger carries as ``calendar``::

    {"exclude_dates": ["2026-12-24"], "exclude_ranges": [["2026-08-01", "2026-08-15"]],
     "holidays": "DE-BY", "weekends": "exclude", "shift": "next_business_day"}

Every key is optional. Dates are local dates of the trigger's zone. A date is *excluded*
when it is a public holiday of the ``holidays`` calendar (a country, optionally with a
subdivision, from the pinned ``holidays`` package: its data changes with its releases),
one of ``exclude_dates``, inside one of ``exclude_ranges`` (both ends included), or, with
``"weekends": "exclude"``, a weekend day (Saturday and Sunday, or the country's own
weekend when ``holidays`` names one). Every other date is a *business day*. What happens
to a slot on an excluded date is ``shift``'s business (see :mod:`tickwork.domain.slots`).

This is the only module that imports the ``holidays`` package. Holiday names are in
English where the package has them (``holiday: Christmas Day``).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, get_args

import holidays as holiday_data
from holidays import registry

from tickwork.errors import ValidationError, ValidationErrors

__all__ = [
    "MAX_EXCLUDE_DATES",
    "MAX_EXCLUDE_RANGES",
    "SHIFTS",
    "WEEKEND_POLICIES",
    "Calendar",
    "Shift",
    "known_countries",
    "parse_calendar",
]

Shift = Literal["skip", "next_business_day", "previous_business_day"]
WeekendPolicy = Literal["exclude", "include"]
SHIFTS: tuple[str, ...] = get_args(Shift)
WEEKEND_POLICIES: tuple[str, ...] = get_args(WeekendPolicy)
MAX_EXCLUDE_DATES = 1000
MAX_EXCLUDE_RANGES = 200
FIELD = "calendar"
KEYS = ("exclude_dates", "exclude_ranges", "holidays", "weekends", "shift")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DEFAULT_WEEKEND = frozenset({5, 6})


@dataclass(frozen=True)
class Calendar:
    """A validated calendar. Build one with :func:`parse_calendar`."""

    exclude_dates: tuple[date, ...] = ()
    exclude_ranges: tuple[tuple[date, date], ...] = ()
    holidays: str | None = None
    weekends: WeekendPolicy = "include"
    shift: Shift = "skip"

    def exclusion(self, day: date) -> str | None:
        """Why ``day`` (a local date) is excluded, or None for a business day.

        One reason is given, the most specific first: ``holiday: Christmas Day``,
        ``excluded date 2026-12-24``, ``excluded range 2026-08-01 to 2026-08-15``,
        ``weekend: Saturday``.
        """
        if self.holidays is not None:
            name = _holiday_names(self.holidays, day.year).get(day)
            if name is not None:
                return f"holiday: {name}"
        if day in self._dates:
            return f"excluded date {day.isoformat()}"
        if self.exclude_ranges:
            i = bisect.bisect_right(self._range_starts, day) - 1
            # Ranges may overlap: any range starting at or before day may hold it.
            while i >= 0:
                first, last = self.exclude_ranges[i]
                if day <= last:
                    return f"excluded range {first.isoformat()} to {last.isoformat()}"
                if day - first > self._longest_range:
                    break
                i -= 1
        if self.weekends == "exclude" and day.weekday() in self.weekend_days:
            return f"weekend: {_DAY_NAMES[day.weekday()]}"
        return None

    def is_business_day(self, day: date) -> bool:
        return self.exclusion(day) is None

    def nearest_business_day(self, day: date, step: int, within: int) -> date | None:
        """The first business day after (``step`` 1) or before (``step`` -1) ``day``, at
        most ``within`` days away; None if there is none. Excluded ranges are crossed in
        one step."""
        candidate = day
        try:
            while True:
                candidate += timedelta(days=step)
                if abs((candidate - day).days) > within:
                    return None
                covering = self._range_of(candidate)
                if covering is not None:
                    candidate = covering[1] if step > 0 else covering[0]
                    continue
                if self.exclusion(candidate) is None:
                    return candidate
        except OverflowError:
            return None

    def _range_of(self, day: date) -> tuple[date, date] | None:
        """The excluded range holding ``day`` that reaches furthest, if any."""
        found = None
        i = bisect.bisect_right(self._range_starts, day) - 1
        while i >= 0:
            first, last = self.exclude_ranges[i]
            if day <= last and (found is None or last > found[1] or first < found[0]):
                found = (
                    min(first, found[0]) if found else first,
                    max(last, found[1]) if found else last,
                )
            if day - first > self._longest_range:
                break
            i -= 1
        return found

    @property
    def weekend_days(self) -> frozenset[int]:
        """The weekdays (0 = Monday) that count as the weekend."""
        if self.holidays is None:
            return _DEFAULT_WEEKEND
        return _weekend(self.holidays)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (what :func:`parse_calendar` accepts back)."""
        value: dict[str, Any] = {}
        if self.exclude_dates:
            value["exclude_dates"] = [d.isoformat() for d in self.exclude_dates]
        if self.exclude_ranges:
            value["exclude_ranges"] = [
                [a.isoformat(), b.isoformat()] for a, b in self.exclude_ranges
            ]
        if self.holidays is not None:
            value["holidays"] = self.holidays
        value["weekends"] = self.weekends
        value["shift"] = self.shift
        return value

    def describe(self) -> str:
        """Words for the calendar, e.g. "except weekends and holidays in DE-BY; ..."."""
        parts = []
        if self.weekends == "exclude":
            parts.append("weekends")
        if self.holidays is not None:
            parts.append(f"public holidays in {self.holidays}")
        if self.exclude_dates:
            parts.append(f"{len(self.exclude_dates)} excluded date(s)")
        if self.exclude_ranges:
            parts.append(f"{len(self.exclude_ranges)} excluded range(s)")
        if not parts:
            return "no excluded dates"
        action = {
            "skip": "skipped",
            "next_business_day": "moved to the next business day",
            "previous_business_day": "moved to the previous business day",
        }[self.shift]
        return f"except {', '.join(parts)}: such slots are {action}"

    # -- lookups -------------------------------------------------------------------------

    @functools.cached_property
    def _dates(self) -> frozenset[date]:
        return frozenset(self.exclude_dates)

    @functools.cached_property
    def _range_starts(self) -> list[date]:
        return [first for first, _ in self.exclude_ranges]

    @functools.cached_property
    def _longest_range(self) -> timedelta:
        return max((b - a for a, b in self.exclude_ranges), default=timedelta(0))


def known_countries() -> tuple[str, ...]:
    """The ISO 3166 alpha-2 codes of the ``holidays`` package's country calendars."""
    return _countries()


@functools.cache
def _countries() -> tuple[str, ...]:
    return tuple(sorted(codes[1] for codes in registry.COUNTRIES.values()))


@functools.lru_cache(maxsize=512)
def _entity(country: str, subdivision: str | None) -> holiday_data.HolidayBase:
    return holiday_data.country_holidays(country, subdiv=subdivision, years=())


@functools.lru_cache(maxsize=4096)
def _holiday_names(code: str, year: int) -> dict[date, str]:
    """The holidays of ``code`` (``DE`` or ``DE-BY``) in ``year``: date → name(s)."""
    country, _, subdivision = code.partition("-")
    entity = _entity(country, subdivision or None)
    languages = getattr(entity, "supported_languages", ()) or ()
    language = "en_US" if "en_US" in languages else None
    calendar = holiday_data.country_holidays(
        country, subdiv=subdivision or None, years=year, language=language
    )
    return {day: "; ".join(sorted(set(name.split("; ")))) for day, name in calendar.items()}


@functools.lru_cache(maxsize=512)
def _weekend(code: str) -> frozenset[int]:
    country, _, subdivision = code.partition("-")
    weekend = getattr(_entity(country, subdivision or None), "weekend", None)
    return frozenset(weekend) if weekend else _DEFAULT_WEEKEND


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def parse_calendar(value: object) -> Calendar:
    """Validate a calendar object; raise :class:`ValidationErrors` with one error per
    fault, each on a field ``calendar.<key>`` (``calendar.exclude_dates[3]``)."""
    if isinstance(value, Calendar):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(
            FIELD,
            'must be an object such as {"holidays": "DE-BY", "weekends": "exclude"}',
        )
    errors: list[ValidationError] = []
    unknown = [k for k in value if k not in KEYS]
    for key in unknown:
        errors.append(ValidationError(FIELD, f"unknown key {key!r} (known: {', '.join(KEYS)})"))
    dates = _dates(value.get("exclude_dates"), errors)
    ranges = _ranges(value.get("exclude_ranges"), errors)
    code = _holidays(value.get("holidays"), errors)
    weekends = _choice(value, "weekends", WEEKEND_POLICIES, "include", errors)
    shift = _choice(value, "shift", SHIFTS, "skip", errors)
    if errors:
        raise ValidationErrors(errors)
    return Calendar(
        exclude_dates=dates,
        exclude_ranges=ranges,
        holidays=code,
        weekends=weekends,  # type: ignore[arg-type]
        shift=shift,  # type: ignore[arg-type]
    )


def _date(text: object, field: str, errors: list[ValidationError]) -> date | None:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        errors.append(ValidationError(field, f"{text!r} is not a date such as 2026-12-24"))
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(ValidationError(field, f"{text!r} is not a date that exists"))
        return None


def _dates(value: object, errors: list[ValidationError]) -> tuple[date, ...]:
    field = f"{FIELD}.exclude_dates"
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append(ValidationError(field, 'must be a list of dates such as ["2026-12-24"]'))
        return ()
    if len(value) > MAX_EXCLUDE_DATES:
        errors.append(
            ValidationError(
                field,
                f"has {len(value)} dates; at most {MAX_EXCLUDE_DATES} (use exclude_ranges for "
                f"runs of days)",
            )
        )
        return ()
    found = {_date(item, f"{field}[{i}]", errors) for i, item in enumerate(value)}
    return tuple(sorted(d for d in found if d is not None))


def _ranges(value: object, errors: list[ValidationError]) -> tuple[tuple[date, date], ...]:
    field = f"{FIELD}.exclude_ranges"
    if value is None:
        return ()
    example = '[["2026-08-01", "2026-08-15"]]'
    if not isinstance(value, list):
        errors.append(
            ValidationError(field, f"must be a list of [from, to] pairs such as {example}")
        )
        return ()
    if len(value) > MAX_EXCLUDE_RANGES:
        errors.append(
            ValidationError(field, f"has {len(value)} ranges; at most {MAX_EXCLUDE_RANGES}")
        )
        return ()
    found: set[tuple[date, date]] = set()
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            errors.append(
                ValidationError(where, f"must be a [from, to] pair of dates, e.g. {example[1:-1]}")
            )
            continue
        first = _date(item[0], f"{where}[0]", errors)
        last = _date(item[1], f"{where}[1]", errors)
        if first is None or last is None:
            continue
        if last < first:
            errors.append(
                ValidationError(
                    where,
                    f"runs backwards ({first.isoformat()} is after {last.isoformat()}); give "
                    f"the earlier date first",
                )
            )
            continue
        found.add((first, last))
    return tuple(sorted(found))


def _holidays(value: object, errors: list[ValidationError]) -> str | None:
    field = f"{FIELD}.holidays"
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(ValidationError(field, "must be a country code such as US or DE-BY"))
        return None
    code = value.strip()
    country, dash, subdivision = code.partition("-")
    country = country.upper()
    known = _countries()
    if country not in known:
        errors.append(
            ValidationError(field, f"unknown country {country!r} (known: {', '.join(known)})")
        )
        return None
    # Loading a country's calendar imports its module (once per process, up to a few
    # hundred ms): do it here, when the calendar is validated, not when a slot is due.
    entity = _entity(country, None)
    if dash:
        subdivisions = tuple(getattr(entity, "subdivisions", ()))
        match = [s for s in subdivisions if s.upper() == subdivision.upper()]
        if not match:
            listed = ", ".join(subdivisions) if subdivisions else "none"
            errors.append(
                ValidationError(
                    field,
                    f"unknown subdivision {subdivision!r} of {country} (known: {listed})",
                )
            )
            return None
        return f"{country}-{match[0]}"
    return country


def _choice(
    value: Mapping[str, object],
    key: str,
    choices: tuple[str, ...],
    default: str,
    errors: list[ValidationError],
) -> str:
    got = value.get(key, default)
    if got is None:
        return default
    if got not in choices:
        errors.append(
            ValidationError(f"{FIELD}.{key}", f"{got!r} is not one of {', '.join(choices)}")
        )
        return default
    assert isinstance(got, str)
    return got
