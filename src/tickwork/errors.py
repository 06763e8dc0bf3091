"""The error hierarchy: what went wrong, and whether trying again can help."""

from __future__ import annotations


class TickworkError(Exception):
    """Base of every error tickwork raises on purpose."""


class ValidationError(TickworkError):
    """Input that can never be accepted. ``field`` names where the problem is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class ValidationErrors(ValidationError):
    """Several invalid fields reported at once (a definition with many elements).
    ``field`` and ``message`` are those of the first."""

    def __init__(self, errors: list[ValidationError]) -> None:
        if not errors:
            raise ValueError("ValidationErrors needs at least one error")
        super().__init__(errors[0].field, errors[0].message)
        self.errors = errors


class InvalidSchedule(ValidationError):
    """A cron expression, time zone or one-time instant that cannot be scheduled."""


class NotFound(TickworkError):
    """The resource does not exist (or belongs to another tenant)."""


class Conflict(TickworkError):
    """The request conflicts with the current state of the resource."""


class PreconditionFailed(TickworkError):
    """An ``If-Match`` precondition does not hold: the resource changed since the
    caller read it (HTTP 412). ``etag`` is the current one (None: there is none)."""

    def __init__(self, message: str, *, etag: str | None = None) -> None:
        super().__init__(message)
        self.etag = etag


class NameConflict(Conflict):
    """Names that must be unique are not (HTTP 409 with the fields named)."""

    def __init__(self, errors: list[ValidationError]) -> None:
        if not errors:
            raise ValueError("NameConflict needs at least one error")
        super().__init__("; ".join(str(e) for e in errors[:5]))
        self.errors = errors


class Forbidden(TickworkError):
    """The caller is known but its API key's scope does not allow this (HTTP 403)."""

    def __init__(self, message: str, *, required_scope: str, key_scope: str) -> None:
        super().__init__(message)
        self.required_scope = required_scope
        self.key_scope = key_scope


class QuotaExceeded(TickworkError):
    """The request would take the tenant past one of its quotas (HTTP 429). ``used`` is
    the use before the request, ``requested`` what the request adds."""

    def __init__(self, quota: str, limit: float, used: float, requested: float) -> None:
        super().__init__(
            f"quota {quota!r} exceeded: the limit is {_number(limit)}, {_number(used)} in "
            f"use, and this request adds {_number(requested)}; remove some or ask the "
            "operator for a higher quota"
        )
        self.quota = quota
        self.limit = limit
        self.used = used
        self.requested = requested


def _number(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0")


class TargetError(TickworkError):
    """A target call failed. Subclasses say whether a retry can help."""

    transient: bool = True


class TransientError(TargetError):
    """A failure that may succeed on retry (timeouts, 5xx, connection errors)."""

    transient = True


class PermanentError(TargetError):
    """A failure that will fail again the same way: the invocation fails at once."""

    transient = False
