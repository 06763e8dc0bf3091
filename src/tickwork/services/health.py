"""Triggers' health as invocations end, auto-pause, and the late check (SPEC §11;
the rules are in :mod:`tickwork.domain.health`).

Everything here that follows an invocation's end runs in the transaction that settles
it, so a trigger's health, its auto-pause and the events they cause are stored with the
outcome or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwork.domain import health as rules
from tickwork.logging import get_logger
from tickwork.services import notifications
from tickwork.services.context import Context
from tickwork.services.control import pause_in
from tickwork.settings import Settings
from tickwork.storage.ports import RunEnd, Store
from tickwork.storage.records import Trigger

log = get_logger("tickwork.health")

LATE_BATCH = 500


@dataclass(frozen=True)
class Ended:
    """An invocation that ended completed (``succeeded``) or failed, with its error."""

    invocation_id: str
    succeeded: bool
    at: datetime
    error: str | None = None
    # The invocation's trigger, when known: then a success is counted without reading
    # the invocation back.
    trigger_id: str | None = None


def threshold_of(trigger: Trigger, settings: Settings) -> int:
    """The trigger's ``pause_after_failures``, or the setting's default."""
    if trigger.pause_after_failures is not None:
        return trigger.pause_after_failures
    return settings.pause_after_failures


def record_ends(tx: Store, settings: Settings, ended: Sequence[Ended]) -> list[Trigger]:
    """(write) Count these ends towards their triggers' health, write their events
    (``invocation.failed``, ``trigger.recovered``) and pause each trigger that reached
    its ``pause_after_failures``. Returns the triggers paused."""
    if not ended:
        return []
    errors = {e.invocation_id: e.error for e in ended}
    ended_at = {e.invocation_id: e.at for e in ended}
    changes = tx.record_run_ends(
        [RunEnd(e.invocation_id, e.succeeded, e.at, e.trigger_id) for e in ended]
    )
    paused: dict[str, Trigger] = {}
    for change in changes:
        trigger, at = change.trigger, ended_at[change.invocation_id]
        if trigger is None:  # a success with no failure before it: no event
            continue
        if change.succeeded:
            if change.failures_before > 0:
                notifications.trigger_event(
                    tx, "trigger.recovered", trigger, at, invocation_id=change.invocation_id
                )
            continue
        if change.invocation is None:
            continue
        notifications.invocation_failed(
            tx, trigger, change.invocation, errors.get(change.invocation_id), at
        )
        current = paused.get(trigger.id, trigger)
        threshold = threshold_of(trigger, settings)
        if trigger.enabled and rules.should_auto_pause(
            threshold, trigger.consecutive_failures, paused=current.paused
        ):
            paused[trigger.id] = pause_in(
                tx,
                current,
                at,
                reason=rules.auto_pause_reason(trigger.consecutive_failures),
                until=None,
                paused_by="tickwork",
            )
            log.warning(
                "trigger paused after consecutive failures",
                tenant=trigger.tenant_id,
                project=trigger.project_id,
                agent=trigger.agent_id,
                trigger=trigger.id,
                failures=trigger.consecutive_failures,
            )
    return list(paused.values())


def health_of(
    trigger: Trigger, now: datetime, grace: timedelta, oldest_pending: datetime | None
) -> str:
    late = rules.is_late(now, grace, trigger.next_run_at, oldest_pending)
    return rules.health_of(
        enabled=trigger.enabled,
        paused=trigger.paused,
        consecutive_failures=trigger.consecutive_failures,
        late=late,
    )


def healths(ctx: Context, triggers: Sequence[Trigger]) -> dict[str, str]:
    """Each trigger's health now (one index probe per trigger for its pending work)."""
    if not triggers:
        return {}
    now = ctx.clock.now()
    grace = timedelta(seconds=ctx.settings.late_grace)
    with ctx.db.read() as tx:
        oldest: Mapping[str, datetime] = tx.oldest_pending(t.id for t in triggers)
    return {t.id: health_of(t, now, grace, oldest.get(t.id)) for t in triggers}


def check_late(ctx: Context, now: datetime) -> int:
    """The active scheduler's late check: send ``trigger.late`` once for each trigger
    that became late, and forget it when it is back on time (so the next lateness is
    told again). Bounded batches of indexed range scans; returns the events written."""
    grace = timedelta(seconds=ctx.settings.late_grace)
    before = now - grace
    told = 0
    with ctx.db.write() as tx:
        late = tx.late_triggers(before, LATE_BATCH)
        for trigger in late:
            since = min(
                at
                for at in (trigger.next_run_at, tx.oldest_pending([trigger.id]).get(trigger.id))
                if at is not None
            )
            notifications.trigger_event(
                tx,
                "trigger.late",
                trigger,
                now,
                late_since=notifications._iso(since),
                grace_seconds=ctx.settings.late_grace,
            )
            told += 1
        tx.set_late_notified([t.id for t in late], now)
        flagged = tx.told_late(LATE_BATCH)
        oldest = tx.oldest_pending(t.id for t in flagged)
        back = [
            t.id
            for t in flagged
            if not t.enabled
            or t.paused
            or not rules.is_late(now, grace, t.next_run_at, oldest.get(t.id))
        ]
        tx.set_late_notified(back, None)
    if told:
        log.warning("triggers are late", count=told)
    return told
