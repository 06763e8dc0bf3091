"""A scheduled trigger's specification (SPEC §3), checked: the fields a client may set,
their defaults and ranges, the schedule they describe and its first run. Pure: neither
the clock nor the database is read (whether a one-time instant is past is checked where
the current instant is known)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tickwork.domain import schedule as sched
from tickwork.domain.limits import MAX_TEMPLATE_CHARS, RUN_AS_PATTERN
from tickwork.domain.names import MAX_DESCRIPTION, MAX_NAME, check_text
from tickwork.domain.policies import (
    CATCHUP_POLICIES,
    CONVERSATIONS,
    OVERLAP_POLICIES,
    CatchupPolicy,
    Conversation,
    OverlapPolicy,
)
from tickwork.domain.template import rendered_size
from tickwork.errors import InvalidSchedule, ValidationError

MAX_PAYLOAD_BYTES = 256 * 1024
# The default cap on a rendered message (TICKWORK_MAX_MESSAGE_BYTES): a template may
# repeat a placeholder, so its size and the payload's say little about the message's.
MAX_MESSAGE_BYTES = 1024 * 1024

# Fields a client may set, with the default used on create and restored by an explicit
# null on update.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "enabled": True,
    "timezone": "UTC",
    "payload": {},
    "message_template": None,
    "max_retries": 1,
    "retry_delay_seconds": 60,
    "timeout_seconds": 780,
    "catchup": CatchupPolicy.LATEST,
    "catchup_window_seconds": 3600,
    "overlap": OverlapPolicy.ALLOW,
    "jitter_seconds": 0,
    # Run context (SPEC §13).
    "conversation": Conversation.NEW,
    "daily_token_budget": None,
    "run_as": None,
    "starts_at": None,
    "ends_at": None,
    "max_runs": None,
    # Health (SPEC §11): None takes TICKWORK_PAUSE_AFTER_FAILURES; 0 never pauses.
    "pause_after_failures": None,
}
MAX_PAUSE_AFTER_FAILURES = 10_000
MAX_TOKEN_BUDGET = 10**12
MAX_RUN_AS = 256
_RUN_AS = re.compile(RUN_AS_PATTERN)
RANGES: dict[str, tuple[int, int]] = {
    "max_retries": (0, 10),
    "retry_delay_seconds": (1, 3600),
    "timeout_seconds": (1, 86400),
    "catchup_window_seconds": (0, 31 * 86400),
    "jitter_seconds": (0, 3600),
}
SCHEDULE_FIELDS = ("cron_expression", "run_at", "timezone")
# Fields that move where the trigger's slots may lie: changing one re-plans next_run_at.
BOUND_FIELDS = ("starts_at", "ends_at", "max_runs")
MAX_RUNS = 2**31 - 1
EDITABLE = ("name", "cron_expression", "run_at", *DEFAULTS)


class PayloadTooLarge(ValidationError):
    """A payload or template above the documented size limit (HTTP 413)."""


def check_fields(values: dict[str, Any], max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """Check every field of a complete trigger definition (names as in the API)."""
    values["name"] = check_text(values.get("name"), "name", MAX_NAME, required=True)
    values["description"] = check_text(values.get("description"), "description", MAX_DESCRIPTION)
    if not isinstance(values["enabled"], bool):
        raise ValidationError("enabled", "must be true or false")
    for key, (low, high) in RANGES.items():
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(key, f"must be an integer from {low} to {high}")
    if values["catchup"] not in CATCHUP_POLICIES:
        raise ValidationError("catchup", f"must be one of {', '.join(CATCHUP_POLICIES)}")
    if values["overlap"] not in OVERLAP_POLICIES:
        raise ValidationError("overlap", f"must be one of {', '.join(OVERLAP_POLICIES)}")
    _check_run_context(values)
    check_bounds(values)
    limit = values["pause_after_failures"]
    if limit is not None and (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 0 <= limit <= MAX_PAUSE_AFTER_FAILURES
    ):
        raise ValidationError(
            "pause_after_failures",
            f"must be null (the server's default) or an integer from 0 (never) to "
            f"{MAX_PAUSE_AFTER_FAILURES}",
        )
    template = values["message_template"]
    if template is not None:
        if not isinstance(template, str):
            raise ValidationError("message_template", "must be a string")
        if len(template) > MAX_TEMPLATE_CHARS:
            raise PayloadTooLarge(
                "message_template",
                f"is {len(template)} characters; the limit is {MAX_TEMPLATE_CHARS}",
            )
    check_payload(values["payload"], template, max_message_bytes)


def check_payload(
    payload: Any,
    template: str | None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    *,
    field: str = "payload",
) -> None:
    """Check a payload on its own and with the message template it fills: a JSON object
    of at most ``MAX_PAYLOAD_BYTES``, rendering a message of at most
    ``max_message_bytes``. The same rule holds for a trigger's payload and for the
    payload of one run (``field`` names it in the error)."""
    if not isinstance(payload, dict):
        raise ValidationError(field, "must be a JSON object")
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(field, f"is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    rendered = rendered_size(template, payload)
    if rendered > max_message_bytes:
        against = "this trigger's payload" if field == "payload" else "this payload"
        raise PayloadTooLarge(
            "message_template" if field == "payload" else field,
            f"renders to {rendered} bytes against {against}; the limit on a "
            f"rendered message is {max_message_bytes} bytes",
        )


def _check_run_context(values: dict[str, Any]) -> None:
    if values["conversation"] not in CONVERSATIONS:
        raise ValidationError("conversation", f"must be one of {', '.join(CONVERSATIONS)}")
    budget = values["daily_token_budget"]
    if budget is not None and (
        isinstance(budget, bool)
        or not isinstance(budget, int)
        or not 1 <= budget <= MAX_TOKEN_BUDGET
    ):
        raise ValidationError(
            "daily_token_budget", f"must be null or an integer from 1 to {MAX_TOKEN_BUDGET}"
        )
    run_as = values["run_as"]
    if run_as is not None and (not isinstance(run_as, str) or not _RUN_AS.fullmatch(run_as)):
        raise ValidationError(
            "run_as",
            f"must be 1-{MAX_RUN_AS} printable ASCII characters, without spaces at either end "
            "(it is sent as an HTTP header too)",
        )


def check_bounds(values: dict[str, Any]) -> None:
    """Check ``starts_at``, ``ends_at`` (aware instants, normalised to UTC; ``ends_at``
    after ``starts_at``) and ``max_runs``."""
    for key in ("starts_at", "ends_at"):
        value = values[key]
        if isinstance(value, str):
            value = values[key] = sched.parse_instant(value, key)
        if value is not None and (
            not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None
        ):
            raise ValidationError(key, "must be an ISO-8601 instant with a UTC offset")
        if value is not None:
            values[key] = value.astimezone(UTC)
    starts_at, ends_at = values["starts_at"], values["ends_at"]
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationError(
            "ends_at",
            f"{sched.format_instant(ends_at)} is not after starts_at "
            f"{sched.format_instant(starts_at)}",
        )
    max_runs = values["max_runs"]
    if max_runs is not None and (
        isinstance(max_runs, bool) or not isinstance(max_runs, int) or not 1 <= max_runs <= MAX_RUNS
    ):
        raise ValidationError("max_runs", f"must be an integer from 1 to {MAX_RUNS}, or null")


def build_schedule(values: Mapping[str, Any]) -> sched.Schedule:
    cron, run_at = values.get("cron_expression"), values.get("run_at")
    if (cron is None) == (run_at is None):
        raise ValidationError("cron_expression", "give exactly one of cron_expression or run_at")
    timezone = values.get("timezone") or "UTC"
    if not isinstance(timezone, str):
        raise ValidationError("timezone", "must be an IANA time zone name")
    if cron is not None:
        if not isinstance(cron, str):
            raise ValidationError("cron_expression", "must be a string")
        return sched.cron_schedule(cron, timezone)
    if isinstance(run_at, str):
        run_at = sched.parse_instant(run_at)
    if not isinstance(run_at, datetime):
        raise ValidationError("run_at", "must be an ISO-8601 instant with a UTC offset")
    return sched.once_schedule(run_at, timezone)


def validate_fields(
    fields: Mapping[str, Any], max_message_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[dict[str, Any], sched.Schedule]:
    """Check a complete trigger definition; absent or null fields take their defaults.

    Returns every editable field's value and the schedule. Pure: reads neither the
    clock nor the database (whether a one-time instant is past is checked later).
    """
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "is not a scheduled trigger field")
    values = dict(DEFAULTS) | {k: v for k, v in fields.items() if v is not None}
    values.setdefault("cron_expression", None)
    values.setdefault("run_at", None)
    check_fields(values, max_message_bytes)
    schedule = build_schedule(values)
    if isinstance(schedule, sched.OnceSchedule):
        values["run_at"] = schedule.run_at
    return values, schedule


class NextRuns:
    """First runs of schedules from one ``now``, each distinct schedule computed once.

    Finding a schedule's next instant can take milliseconds (a rare expression in a zone
    with daylight saving), so callers compute what they need before they open a write
    transaction, which on SQLite holds up every tenant's writes (SPEC §9).
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._memo: dict[sched.Schedule, datetime | InvalidSchedule | None] = {}

    def of(self, schedule: sched.Schedule) -> datetime | None:
        """``next_run_at`` for a trigger (re-)scheduled now; a cron expression that never
        fires in its zone is refused."""
        found = self._memo.get(schedule, _UNSET)
        if found is _UNSET:
            found = self._memo[schedule] = _first_run(schedule, self.now)
        if isinstance(found, InvalidSchedule):
            raise found
        assert found is None or isinstance(found, datetime)
        return found


_UNSET: Any = object()


def _first_run(schedule: sched.Schedule, now: datetime) -> datetime | InvalidSchedule | None:
    first = sched.initial_next_run(schedule, now)
    if first is None and isinstance(schedule, sched.CronSchedule):
        why = (
            ": every time it names falls inside a daylight-saving gap, and an expression "
            "with a wildcard minute or hour skips wall times that do not occur"
            if schedule.expression.wildcard
            else ""
        )
        return InvalidSchedule(
            "cron_expression", f"never fires in time zone {schedule.timezone}{why}"
        )
    return first
