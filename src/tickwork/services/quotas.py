"""Per-tenant quotas (SPEC §9): projects, agents, triggers, live API keys, and the firing
rate the tenant's enabled triggers add up to.

Limits come from the settings (``TICKWORK_QUOTA_*``) unless the tenant's row overrides
them (admin API). Every write that can raise a tenant's use checks inside its own write
transaction, and takes the tenant's row lock *first*, before any other row it touches:
writers that count the same tenant go one at a time (on PostgreSQL; SQLite's write lock
serialises every writer already), so two concurrent creates can never both take the last
unit, and since the lock always comes first they cannot deadlock on it. Use is counted
with one indexed aggregate per quota, never by reading rows into Python.

Only growth is refused: a write that lowers a use, or leaves it as it is, passes even
while the tenant is above a limit an operator has lowered since.

The firing rate is kept per trigger in slots per day (:mod:`tickwork.domain.rate`), an
exact integer; the quota is in slots per minute, so the comparison is
``sum(slots_per_day) <= limit × 1440``, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from tickwork.domain.rate import MINUTES_PER_DAY
from tickwork.errors import NotFound, QuotaExceeded
from tickwork.services import audit
from tickwork.services.context import Context
from tickwork.settings import QUOTA_DEFAULTS, Settings
from tickwork.storage.ports import Tenancy
from tickwork.storage.records import Trigger

QUOTAS = tuple(QUOTA_DEFAULTS)
# A PATCH that touches none of these cannot raise a trigger's rate.
RATE_FIELDS = ("enabled", "cron_expression", "run_at", "rrule")


@dataclass(frozen=True)
class Change:
    """What a write adds to a tenant's use (the rate in slots per day)."""

    projects: int = 0
    agents: int = 0
    triggers: int = 0
    api_keys: int = 0
    slots_per_day: int = 0


def rate_of(trigger: Trigger) -> int:
    """What the trigger adds to its tenant's firing rate, in slots per day."""
    return trigger.slots_per_day if trigger.enabled else 0


def limits(settings: Settings, overrides: Mapping[str, int | None]) -> dict[str, int]:
    """The limits in force: each override, or the setting's default where it is None."""
    found = {name: overrides.get(name) for name in QUOTAS}
    return {
        name: getattr(settings, f"quota_{name}") if value is None else value
        for name, value in found.items()
    }


def lock(ctx: Context, tx: Tenancy, tenant_id: str) -> dict[str, int]:
    """Lock the tenant's row for this transaction and return its limits."""
    overrides = tx.lock_tenant(tenant_id)
    if overrides is None:
        raise NotFound(f"tenant {tenant_id!r} not found")
    return limits(ctx.settings, overrides)


def check(
    ctx: Context, tx: Tenancy, tenant_id: str, change: Change, *, written: bool = False
) -> None:
    """Refuse ``change`` (QuotaExceeded) if it takes the tenant past one of its quotas.

    Locks the tenant's row: call it before the transaction locks any other row. With
    ``written`` the change is already in the transaction, so what is counted includes
    it. Raising rolls the transaction back, the change with it.
    """
    in_force = lock(ctx, tx, tenant_id)
    for field, adding in asdict(change).items():
        if adding > 0:
            used = tx.tenant_usage(tenant_id, field) - (adding if written else 0)
            _refuse_growth(field, in_force, used, used + adding)


def measure(ctx: Context, tx: Tenancy, tenant_id: str) -> Change:
    """Lock the tenant's row and count what :func:`check_growth` compares against later
    in the same transaction: its agents, triggers and firing rate."""
    lock(ctx, tx, tenant_id)
    return _count(tx, tenant_id, ("agents", "triggers", "slots_per_day"))


def check_growth(ctx: Context, tx: Tenancy, tenant_id: str, before: Change) -> None:
    """After a transaction's writes (a definition push): refuse their *net* effect if it
    takes the tenant past a quota. ``before`` is what :func:`measure` counted."""
    in_force = lock(ctx, tx, tenant_id)
    after = _count(tx, tenant_id, ("agents", "triggers", "slots_per_day"))
    for field, was in asdict(before).items():
        now = getattr(after, field)
        if now > was:
            _refuse_growth(field, in_force, was, now)


def usage(ctx: Context, tenant_id: str) -> tuple[dict[str, int], dict[str, int | None], Change]:
    """The tenant's limits in force, its overrides, and its use of every quota."""
    with ctx.db.read() as tx:
        overrides = tx.tenant_quotas(tenant_id)
        if overrides is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        used = _count(tx, tenant_id, tuple(asdict(Change())))
    return limits(ctx.settings, overrides), overrides, used


def set_overrides(ctx: Context, tenant_id: str, values: Mapping[str, int | None]) -> None:
    """Set some of the tenant's overrides (None: back to the default). A lower limit
    never removes anything: it refuses further growth."""
    unknown = set(values) - set(QUOTAS)
    if unknown:
        raise ValueError(f"unknown quotas: {sorted(unknown)}")
    with ctx.db.write() as tx:
        before = tx.lock_tenant(tenant_id)
        if before is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        if values:
            tx.set_tenant_quotas(tenant_id, values)
            change = audit.Change(
                tenant_id,
                audit.TENANT_WIDE,
                "quotas.update",
                "tenant",
                tenant_id,
                before,
                {**before, **values},
            )
            audit.record(tx, ctx.clock.now(), change)


def _count(tx: Tenancy, tenant_id: str, fields: tuple[str, ...]) -> Change:
    return Change(**{field: tx.tenant_usage(tenant_id, field) for field in fields})


def _refuse_growth(field: str, in_force: Mapping[str, int], was: int, now: int) -> None:
    if field == "slots_per_day":
        limit = in_force["slots_per_minute"]
        if now > limit * MINUTES_PER_DAY:
            raise QuotaExceeded(
                "slots_per_minute",
                limit,
                was / MINUTES_PER_DAY,
                (now - was) / MINUTES_PER_DAY,
            )
        return
    if now > in_force[field]:
        raise QuotaExceeded(field, in_force[field], was, now - was)
