"""API key scopes (SPEC §9): what a key may do inside its tenant.

* ``read``: GET only.
* ``operate``: read, and act on runs: run now, cancel, rerun (and pause, resume, skip,
  backfill where those exist).
* ``write``: everything in the tenant (the default).

Each scope includes the ones before it, so "wider" is a plain order.
"""

from __future__ import annotations

from tickwork.errors import ValidationError

READ = "read"
OPERATE = "operate"
WRITE = "write"
SCOPES = (READ, OPERATE, WRITE)  # narrowest first
DEFAULT_SCOPE = WRITE


def check_scope(value: object, field: str = "scope") -> str:
    if value not in SCOPES:
        raise ValidationError(field, f"must be one of {', '.join(SCOPES)}")
    assert isinstance(value, str)
    return value


def covers(have: str, need: str) -> bool:
    """Whether a key of scope ``have`` may do what needs scope ``need``."""
    return SCOPES.index(have) >= SCOPES.index(need)
