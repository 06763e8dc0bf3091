"""The workers' units of work: claim attempts, record how they ended (SPEC §5)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tickwork import metrics
from tickwork.domain.retry import can_retry, retry_delay
from tickwork.domain.template import render_message
from tickwork.logging import get_logger
from tickwork.services.context import Context
from tickwork.services.dispatch import BUFFERED
from tickwork.storage import tables
from tickwork.storage.records import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    Agent,
    Invocation,
    Trigger,
)
from tickwork.storage.sql import Tx

log = get_logger("tickwork.worker")

# A worker that dies mid-attempt is not the target's fault: such lost attempts get this
# many tries beyond the trigger's own retries before the invocation fails, so one crash
# costs no run while a poison invocation that kills every worker cannot loop forever.
LOST_ATTEMPT_ALLOWANCE = 2
# How long a buffered invocation waits before checking again whether it may start.
BUFFER_RECHECK = timedelta(seconds=1)


@dataclass(frozen=True)
class Job:
    """An attempt a worker now holds, with everything needed to make the call."""

    invocation: Invocation
    trigger: Trigger
    agent: Agent
    ref_revision: int
    message: str
    lease_expires_at: datetime


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended. ``kind``: completed, failed, retry or cancelled."""

    invocation_id: str
    attempt: int
    worker_id: str
    kind: str
    ended_at: datetime
    error: str | None = None
    result: Any = None
    conversation_id: str | None = None
    not_before: datetime | None = None
    # What the attempt row records, when it differs from ``kind`` (timeout, lost).
    attempt_outcome: str | None = None


def fields_of(inv: Invocation) -> dict[str, Any]:
    """Log context for a line about one invocation."""
    return {
        "tenant": inv.tenant_id,
        "project": inv.project_id,
        "agent": inv.agent_id,
        "trigger": inv.trigger_id,
        "invocation": inv.id,
        "scheduled_for": inv.scheduled_for,
        "attempt": inv.attempt,
    }


def claim_jobs(ctx: Context, worker_id: str, limit: int) -> list[Job]:
    """Claim up to ``limit`` due invocations and resolve each one's agent at the head of
    its ref, in one transaction. Invocations whose trigger is gone or disabled are
    cancelled instead; those whose agent is gone fail permanently."""
    if limit <= 0:
        return []
    now = ctx.clock.now()
    lease_until = now + timedelta(seconds=ctx.settings.worker_lease_seconds)
    jobs: list[Job] = []
    cancelled: list[str] = []
    with ctx.db.write() as tx:
        # Only the current deployment's workers start new attempts (SPEC §5); a
        # superseded one finishes what it holds and claims nothing more.
        current = tx.current_deployment_at(now)
        if current not in (None, ctx.settings.deployment_id):
            return []
        claimed = tx.claim_invocations(
            now, limit, worker_id, lease_until, ctx.settings.deployment_id
        )
        failures: list[Outcome] = []
        cancel: dict[str, list[str]] = {}
        resolutions: list[dict[str, Any]] = []
        # One lookup per trigger and per agent, however many invocations share them.
        triggers = tx.get_triggers(inv.trigger_id for inv in claimed)
        agent_cache: dict[tuple[str, str, str, str], tuple[Agent | None, int | None]] = {}
        for inv in claimed:
            trigger = triggers.get(inv.trigger_id)
            if trigger is None or not trigger.enabled:
                reason = "trigger deleted" if trigger is None else "trigger disabled"
                cancel.setdefault(reason, []).append(inv.id)
                continue
            if inv.status_reason == BUFFERED and _others_running(tx, inv):
                _release(tx, inv, now + BUFFER_RECHECK)
                continue
            scope = (trigger.tenant_id, trigger.project_id, trigger.ref, trigger.agent_id)
            if scope not in agent_cache:
                ref = tx.get_ref(*scope[:3])
                agent_cache[scope] = (tx.get_agent(*scope), ref.revision if ref else None)
            agent, revision = agent_cache[scope]
            if agent is None or revision is None:
                failures.append(
                    Outcome(
                        inv.id,
                        inv.attempt,
                        worker_id,
                        FAILED,
                        now,
                        error=f"agent {trigger.agent_id!r} not found on ref {trigger.ref!r}",
                    )
                )
                continue
            message = render_message(trigger.message_template, inv.payload)
            resolutions.append(
                {
                    "id": inv.id,
                    "agent_name": agent.name,
                    "ref_revision": revision,
                    "message": message,
                }
            )
            jobs.append(Job(inv, trigger, agent, revision, message, lease_until))
        tx.record_resolutions(resolutions)
        for reason, ids in cancel.items():
            cancelled += tx.cancel_invocations(ids, now, reason)
        _apply(tx, failures)
    for inv in claimed:
        if inv.id in cancelled:
            log.info("invocation cancelled before its attempt", **fields_of(inv))
    for failure in failures:
        log.warning("invocation failed", invocation=failure.invocation_id, error=failure.error)
    return jobs


def _others_running(tx: Tx, inv: Invocation) -> bool:
    c = tables.invocations.c
    q = (
        sa.select(c.id)
        .where(c.trigger_id == inv.trigger_id, c.status == RUNNING, c.id != inv.id)
        .limit(1)
    )
    return tx.conn.execute(q).first() is not None


def _release(tx: Tx, inv: Invocation, not_before: datetime) -> None:
    """Hand a claimed invocation back untouched: no attempt is counted."""
    c = tables.invocations.c
    tx.conn.execute(
        tables.invocations.update()
        .where(c.id == inv.id)
        .values(
            status=PENDING,
            attempt=inv.attempt - 1,
            not_before=not_before,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    a = tables.invocation_attempts.c
    tx.conn.execute(
        tables.invocation_attempts.delete().where(
            a.invocation_id == inv.id, a.attempt == inv.attempt
        )
    )


def decide_failure(
    job_attempt: int,
    max_retries: int,
    retry_delay_seconds: int,
    now: datetime,
    *,
    transient: bool,
    rand: float | None = None,
) -> tuple[str, datetime | None]:
    """``("retry", not_before)`` or ``("failed", None)`` for a failed attempt."""
    if transient and can_retry(job_attempt, max_retries):
        jitter = random.random() if rand is None else rand
        return "retry", now + retry_delay(job_attempt, retry_delay_seconds, jitter)
    return FAILED, None


def settle(ctx: Context, outcomes: list[Outcome]) -> list[str]:
    """Record how attempts ended, in one transaction. Returns the invocations updated
    (one that was cancelled meanwhile keeps its cancel)."""
    if not outcomes:
        return []
    with ctx.db.write() as tx:
        return _apply(tx, outcomes)


def _apply(tx: Tx, outcomes: list[Outcome]) -> list[str]:
    if not outcomes:
        return []
    rows = []
    for o in outcomes:
        status = PENDING if o.kind == "retry" else o.kind
        final = status in (COMPLETED, FAILED, CANCELLED)
        rows.append(
            {
                "id": o.invocation_id,
                "worker_id": o.worker_id,
                "status": status,
                "not_before": o.not_before,
                "last_error": o.error,
                "result": o.result,
                "conversation_id": o.conversation_id,
                "completed_at": o.ended_at if final else None,
            }
        )
    done = tx.settle_invocations(rows)
    tx.finish_attempts(
        [
            {
                "invocation_id": o.invocation_id,
                "attempt": o.attempt,
                "ended_at": o.ended_at,
                "outcome": o.attempt_outcome or (FAILED if o.kind == "retry" else o.kind),
                "error": o.error,
            }
            for o in outcomes
        ]
    )
    return done


def recover_expired_leases(ctx: Context, limit: int = 500) -> list[Invocation]:
    """Attempts whose worker stopped renewing its lease (it died): retry them, or fail
    them when they have had their tries. Returns the invocations recovered."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        expired = tx.expired_leases(now, limit)
        outcomes = []
        for inv in expired:
            trigger = tx.get_trigger(inv.trigger_id)
            retries = trigger.max_retries if trigger is not None else 0
            error = f"attempt {inv.attempt} lost: its worker stopped renewing the lease"
            if (
                trigger is not None
                and trigger.enabled
                and inv.attempt <= retries + LOST_ATTEMPT_ALLOWANCE
            ):
                kind, not_before = "retry", now
            else:
                kind, not_before = FAILED, None
            outcomes.append(
                Outcome(
                    inv.id,
                    inv.attempt,
                    inv.lease_owner or "",
                    kind,
                    now,
                    error=error,
                    not_before=not_before,
                    attempt_outcome="lost",
                )
            )
        _apply(tx, outcomes)
    metrics.lost.inc(len(expired))
    for inv in expired:
        log.warning("lease expired; attempt lost", **fields_of(inv))
    if any(o.kind == "retry" for o in outcomes):
        ctx.notifier.invocations_ready()
    return expired


def renew_leases(ctx: Context, worker_id: str, ids: list[str]) -> tuple[list[str], datetime]:
    """Extend the leases this worker holds; returns the ids still held and the expiry."""
    until = ctx.clock.now() + timedelta(seconds=ctx.settings.worker_lease_seconds)
    with ctx.db.write() as tx:
        return tx.renew_leases(ids, worker_id, until), until


def no_longer_running(ctx: Context, ids: list[str]) -> list[str]:
    with ctx.db.read() as tx:
        return tx.not_running(ids)


def next_wakeup(ctx: Context) -> datetime | None:
    """When the earliest pending invocation may start, or a lease runs out."""
    with ctx.db.read() as tx:
        candidates = [tx.earliest_claimable(), tx.earliest_lease_expiry()]
    present = [c for c in candidates if c is not None]
    return min(present) if present else None
