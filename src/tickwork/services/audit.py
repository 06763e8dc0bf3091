"""The audit log (SPEC §11): every change made through the API, with who made it and
the target before and after, secrets redacted.

Who acts is the request's credential, set once per request by the API's scope check
(:func:`acting_as`): ``api-key:<key id>`` for a tenant's key, ``admin`` for the admin
token. Code that changes things outside a request (the CLI's own commands, tests) acts
as :data:`SYSTEM` unless it says otherwise. Each service records its event with
:func:`record` in the same transaction as the change, so a change is never without its
event, nor an event without its change.

Redaction happens before anything is stored: a value under a key that names a secret
(``secret``, ``token``, ``password``, ``api_key``, ``authorization``, ``cookie``…) is
replaced by ``"[redacted]"``, except a reference ``{"env": "NAME"}``, which names the
secret without holding it (as ``GET`` of an agent shows it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timedelta
from typing import Any

from tickwork.domain.ids import new_id
from tickwork.services.context import Context
from tickwork.storage.ports import Audit, AuditEvent

SYSTEM = "tickwork"
ADMIN = "admin"
REDACTED = "[redacted]"
TENANT_WIDE = ""

_actor: ContextVar[str] = ContextVar("tickwork_actor", default=SYSTEM)
_SECRET_KEY = re.compile(
    r"secret|token|password|passwd|api[_-]?key|authorization|cookie|credential|"
    r"signature|private[_-]?key|^key$|key_hash",
    re.IGNORECASE,
)


def set_actor(actor: str) -> None:
    """Who acts for the rest of the current request (the API's scope check calls it)."""
    _actor.set(actor)


def current_actor() -> str:
    return _actor.get()


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def redact(value: Any) -> Any:
    """``value`` with every secret replaced by :data:`REDACTED` (see the module)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if _SECRET_KEY.search(name) and item is not None and not _env_reference(item):
                out[name] = REDACTED
            elif name.lower() == "headers" and isinstance(item, Mapping):
                out[name] = {
                    str(h): (REDACTED if _credential_header(str(h)) else redact(v))
                    for h, v in item.items()
                }
            else:
                out[name] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _env_reference(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"env"} and isinstance(value["env"], str)


def _credential_header(name: str) -> bool:
    return bool(_SECRET_KEY.search(name)) or name.lower() in ("x-api-key", "proxy-authorization")


@dataclass(frozen=True)
class Change:
    """One change to record: ``action`` (``trigger.update``…) on a target, with the
    target before and after (None where it did not exist)."""

    tenant_id: str
    project_id: str
    action: str
    target_type: str
    target_id: str
    before: Any = None
    after: Any = None


def record(tx: Audit, now: datetime, *changes: Change, actor: str | None = None) -> None:
    """(write) Store these changes as events of the current actor, in the caller's
    transaction."""
    who = actor or current_actor()
    tx.insert_audit(
        [
            AuditEvent(
                id=new_id("aud", now),
                tenant_id=c.tenant_id,
                project_id=c.project_id,
                at=now,
                actor=who,
                action=c.action,
                target_type=c.target_type,
                target_id=c.target_id,
                before=_jsonable(redact(c.before)),
                after=_jsonable(redact(c.after)),
            )
            for c in changes
        ]
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def list_events(
    ctx: Context, tenant_id: str, project_id: str | None, before: str | None, limit: int
) -> list[AuditEvent]:
    """The tenant's events (of one project when ``project_id`` is given), newest first."""
    with ctx.db.read() as tx:
        return tx.list_audit(tenant_id, project_id, before, limit)


def snapshot(value: Any) -> Any:
    """A record (dataclass) as the plain document an event keeps of it."""
    if value is None:
        return None
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value
