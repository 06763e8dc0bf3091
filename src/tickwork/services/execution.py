"""The workers' units of work: claim attempts, record how they ended (SPEC §5).

One module, longer than most: claiming an attempt and settling its outcome are the two
halves of one lease protocol (the claim's lease is what the settlement checks), kept
side by side so the two are read together.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork import metrics
from tickwork.domain import fairshare
from tickwork.domain.invocations import BUFFERED
from tickwork.domain.retry import can_retry, retry_delay
from tickwork.domain.sanitize import MAX_ERROR_CHARS, clean_id, clean_json, clean_text
from tickwork.domain.template import MessageTooLarge, render_message
from tickwork.logging import get_logger
from tickwork.services import health
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage.ports import (
    AttemptEnd,
    Resolution,
    Settlement,
    Store,
    UsageRow,
)
from tickwork.storage.records import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    Agent,
    Candidate,
    Invocation,
    Trigger,
)
from tickwork.storage.sql import is_outage

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
    # The trigger's previous completed run, as targets see it (previous_doc), or None.
    previous: dict[str, Any] | None = None
    # With conversation=continue: the previous completed run's conversation id.
    conversation_id: str | None = None


def previous_doc(inv: Invocation | None) -> dict[str, Any] | None:
    """A completed invocation as the next run of its trigger sees it (SPEC §13):
    ``{"id", "scheduled_for", "status", "conversation_id", "result"}``, JSON values."""
    if inv is None:
        return None
    return {
        "id": inv.id,
        "scheduled_for": inv.scheduled_for.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "status": str(inv.status),
        "conversation_id": inv.conversation_id,
        "result": inv.result,
    }


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
    # The message the attempt sent, stored with its outcome (rendering happens outside
    # the claim transaction, and a message may be large).
    message: str | None = None
    # The invocation's trigger: its health is counted without reading the invocation
    # back, and the tokens a completed attempt reported are counted for its day.
    trigger_id: str | None = None
    usage: dict[str, int] | None = None
    # The exception the target's code raised, for the log line's traceback (not stored).
    exc: BaseException | None = field(default=None, compare=False, repr=False)


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


def claim_jobs(
    ctx: Context, worker_id: str, limit: int, running: Mapping[str, int] | None = None
) -> list[Job]:
    """Claim up to ``limit`` due invocations and resolve each one's agent at the head of
    its ref, in one transaction. Invocations whose trigger is gone or disabled are
    cancelled instead; those whose agent is gone fail permanently.

    Fair share (SPEC §9): ``running`` counts the attempts this worker runs per tenant;
    no tenant gets more than its cap (``TICKWORK_TENANT_CONCURRENCY``), free slots go
    to the tenants with the fewest running, and an agent with ``max_concurrency`` never
    runs more attempts at once, across all workers.
    """
    if limit <= 0:
        return []
    try:
        return _claim(ctx, worker_id, limit, running or {})
    except Exception as exc:
        if is_outage(exc):
            raise
        log.warning("claiming invocations failed; claiming them one by one", error=_brief(exc))
    return _claim_one_by_one(ctx, worker_id, limit)


def _claim_one_by_one(ctx: Context, worker_id: str, limit: int) -> list[Job]:
    """Claim the due invocations one transaction each; one that cannot be claimed (a
    row the database cannot hand over) fails alone, with the error, instead of stopping
    every claim after it (SPEC §9)."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        ids = [c.id for c in tx.claim_candidates(now, limit, lock=False)]
    jobs: list[Job] = []
    for invocation_id in ids:
        try:
            jobs += _claim(ctx, worker_id, 1, {}, only=invocation_id)
        except Exception as exc:
            if is_outage(exc):
                raise
            error = f"the invocation could not be started ({_brief(exc)})"
            log.error("invocation failed", invocation=invocation_id, error=error)
            with ctx.db.write() as tx:
                now = ctx.clock.now()
                failed = tx.fail_invocations([invocation_id], now, error)
                health.record_ends(
                    tx, ctx.settings, [health.Ended(i, False, now, error) for i in failed]
                )
    return jobs


AgentKey = tuple[str, str, str, str]
Resolved = tuple[Invocation, Trigger, Agent, int]


@dataclass
class _Sorted:
    """What a claim found its claimed invocations to be."""

    resolved: list[Resolved] = field(default_factory=list)
    cancel: dict[str, list[str]] = field(default_factory=dict)  # reason: ids
    failures: list[Outcome] = field(default_factory=list)


def _claim(
    ctx: Context,
    worker_id: str,
    limit: int,
    running: Mapping[str, int],
    only: str | None = None,
) -> list[Job]:
    now = ctx.clock.now()
    lease_until = now + timedelta(seconds=ctx.settings.worker_lease_seconds)
    with ctx.db.write() as tx:
        # Only the current deployment's workers start new attempts (SPEC §5); a
        # superseded one finishes what it holds and claims nothing more.
        current = tx.current_deployment_at(now)
        if current not in (None, ctx.settings.deployment_id):
            return []
        candidates = _candidates(tx, now, limit, running, ctx.settings.tenant_cap, only)
        # One query for every agent, however many invocations share it.
        agents = tx.agents_at_head(c.agent_key for c in candidates)
        room = _room(tx, agents)
        chosen = fairshare.choose(candidates, running, ctx.settings.tenant_cap, limit, room)
        claimed = tx.claim_ids(chosen, now, worker_id, lease_until, ctx.settings.deployment_id)
        found = _sort_claimed(tx, claimed, agents, worker_id, now)
        tx.record_resolutions([Resolution(i.id, a.name, r) for i, _, a, r in found.resolved])
        cancelled = [
            cancelled_id
            for reason, ids in found.cancel.items()
            for cancelled_id in tx.cancel_invocations(ids, now, reason)
        ]
        _apply(tx, found.failures, ctx.settings)
        # What the messages need is read in the same transaction (no second round of
        # begin and commit); rendering is per-item work, so it happens after the commit.
        # A trigger that never succeeded has no completed run to read: the health kept
        # with every outcome, in the outcome's transaction, says so (a one-time
        # trigger's first run, every trigger's first runs, costs no query).
        previous = tx.previous_runs(
            trigger.id for _, trigger, _, _ in found.resolved if trigger.last_success_at
        )
    for inv in claimed:
        if inv.id in cancelled:
            log.info("invocation cancelled before its attempt", **fields_of(inv))
    jobs, too_large = _jobs(ctx, found.resolved, previous, worker_id, now, lease_until)
    if too_large:
        settle(ctx, too_large)
    for failure in [*found.failures, *too_large]:
        log.warning("invocation failed", invocation=failure.invocation_id, error=failure.error)
    return jobs


def _candidates(
    tx: Store,
    now: datetime,
    limit: int,
    running: Mapping[str, int],
    cap: int,
    only: str | None,
) -> list[Candidate]:
    """The due invocations a claim chooses from: twice ``limit`` of the tenants not at
    their share, and, behind a backlog, up to ``limit`` more of tenants not seen yet."""
    saturated = {tenant for tenant, n in running.items() if n >= cap}
    window = limit * 2
    candidates = tx.claim_candidates(now, window, saturated, only=only)
    if len(candidates) == window:
        # A backlog: other tenants' due work may wait behind it. Look past it once.
        seen = saturated | {c.tenant_id for c in candidates}
        candidates += tx.claim_candidates(now, limit, seen)
    return candidates


def _room(tx: Store, agents: Mapping[AgentKey, tuple[Agent, int]]) -> dict[AgentKey, int]:
    """How many more attempts each agent with ``max_concurrency`` may start, across all
    workers (those agents are locked until commit, so that deciding workers take turns)."""
    capped = {
        key: agent.max_concurrency
        for key, (agent, _) in agents.items()
        if agent.max_concurrency is not None
    }
    if not capped:
        return {}
    busy = tx.running_per_agent(capped, lock=True)
    return {key: most - busy.get(key, 0) for key, most in capped.items()}


def _sort_claimed(
    tx: Store,
    claimed: Sequence[Invocation],
    agents: Mapping[AgentKey, tuple[Agent, int]],
    worker_id: str,
    now: datetime,
) -> _Sorted:
    """Which claimed invocations run (with their trigger and agent), which are cancelled
    (their trigger is gone or disabled), which fail (their agent is gone), and which go
    back to wait (buffered behind a running one of their trigger)."""
    found = _Sorted()
    triggers = tx.get_triggers(inv.trigger_id for inv in claimed)
    for inv in claimed:
        trigger = triggers.get(inv.trigger_id)
        if trigger is None or not trigger.enabled:
            reason = "trigger deleted" if trigger is None else "trigger disabled"
            found.cancel.setdefault(reason, []).append(inv.id)
            continue
        buffered = (inv.status_reason or "").startswith(BUFFERED)
        if buffered and tx.others_running(inv.trigger_id, inv.id):
            tx.release(inv, now + BUFFER_RECHECK)
            continue
        head = agents.get((inv.tenant_id, inv.project_id, inv.ref, inv.agent_id))
        if head is None:
            error = f"agent {trigger.agent_id!r} not found on ref {trigger.ref!r}"
            found.failures.append(
                Outcome(
                    inv.id, inv.attempt, worker_id, FAILED, now, error, trigger_id=inv.trigger_id
                )
            )
            continue
        agent, revision = head
        found.resolved.append((inv, trigger, agent, revision))
    return found


def _jobs(
    ctx: Context,
    resolved: Sequence[Resolved],
    previous: Mapping[str, Invocation],
    worker_id: str,
    now: datetime,
    lease_until: datetime,
) -> tuple[list[Job], list[Outcome]]:
    """The jobs of the resolved attempts, each with its message rendered, and the
    failures of those whose message is over TICKWORK_MAX_MESSAGE_BYTES."""
    jobs: list[Job] = []
    too_large: list[Outcome] = []
    limit_bytes = ctx.settings.max_message_bytes
    for inv, trigger, agent, revision in resolved:
        before = previous.get(trigger.id)
        last = previous_doc(before)
        continued = (
            before.conversation_id if before and trigger.conversation == "continue" else None
        )
        try:
            message = render_message(
                trigger.message_template, inv.payload, limit_bytes, names={"previous": last}
            )
        except MessageTooLarge as exc:
            error = (
                f"{exc} (TICKWORK_MAX_MESSAGE_BYTES): shorten the message template or the payload"
            )
            too_large.append(
                Outcome(
                    inv.id, inv.attempt, worker_id, FAILED, now, error=error, trigger_id=trigger.id
                )
            )
            continue
        jobs.append(Job(inv, trigger, agent, revision, message, lease_until, last, continued))
    return jobs, too_large


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
    (one that was cancelled meanwhile keeps its cancel).

    What targets returned is cleaned first (:mod:`tickwork.domain.sanitize`). Should the
    database still refuse the batch, each outcome is stored on its own, and one that
    cannot be stored ends its invocation ``failed`` with a ``last_error`` saying so:
    the others are stored as usual and nothing is retried forever (SPEC §9). Only a
    database outage raises (the caller keeps the outcomes and tries again).
    """
    if not outcomes:
        return []
    outcomes = [clean_outcome(o) for o in outcomes]
    try:
        with ctx.db.write() as tx:
            return _apply(tx, outcomes, ctx.settings)
    except Exception as exc:
        if is_outage(exc):
            raise
        log.warning("storing outcomes failed; storing them one by one", error=_brief(exc))
    return _apply_each(ctx, outcomes)


def clean_outcome(outcome: Outcome) -> Outcome:
    """The outcome with what the target returned made safe to store."""
    conversation_id = clean_id(outcome.conversation_id)
    return replace(
        outcome,
        error=None if outcome.error is None else clean_text(outcome.error, MAX_ERROR_CHARS),
        result=clean_json(outcome.result),
        conversation_id=conversation_id,
        usage=clean_usage(outcome.usage),
    )


_MAX_TOKENS = 10**15


def clean_usage(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    """Usage as stored: the three counts, whole numbers from 0 up (a total that is
    missing or smaller than its parts is their sum)."""
    if not usage:
        return None

    def count(key: str) -> int:
        value = usage.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            return 0
        return max(0, min(value, _MAX_TOKENS))

    given, taken = count("input_tokens"), count("output_tokens")
    total = max(count("total_tokens"), given + taken)
    return {"input_tokens": given, "output_tokens": taken, "total_tokens": total}


def _apply_each(ctx: Context, outcomes: list[Outcome]) -> list[str]:
    with ctx.db.write() as tx:
        return _apply_in_savepoints(tx, outcomes, ctx.settings)


def _apply_isolated(tx: Store, outcomes: list[Outcome], settings: Settings) -> list[str]:
    """:func:`_apply` inside ``tx``, falling back to one outcome at a time when the
    database refuses the batch (for paths that already hold a transaction)."""
    try:
        with tx.savepoint():
            return _apply(tx, outcomes, settings)
    except Exception as exc:
        if is_outage(exc):
            raise
    return _apply_in_savepoints(tx, outcomes, settings)


def _apply_in_savepoints(tx: Store, outcomes: list[Outcome], settings: Settings) -> list[str]:
    done: list[str] = []
    for outcome in outcomes:
        try:
            with tx.savepoint():
                done += _apply(tx, [outcome], settings)
            continue
        except Exception as exc:
            if is_outage(exc):
                raise
            error = f"the outcome of attempt {outcome.attempt} could not be stored ({_brief(exc)})"
        log.warning(
            "an outcome could not be stored; the invocation fails",
            invocation=outcome.invocation_id,
            error=error,
        )
        stored_as_failure = replace(
            outcome,
            kind=FAILED,
            error=error,
            result=None,
            conversation_id=None,
            not_before=None,
            attempt_outcome=FAILED,
            message=None,
            usage=None,
        )
        try:
            with tx.savepoint():
                done += _apply(tx, [stored_as_failure], settings)
        except Exception as exc:
            if is_outage(exc):
                raise
            log.exception(
                "an invocation could not be marked failed", invocation=outcome.invocation_id
            )
    return done


def _brief(exc: BaseException) -> str:
    """What went wrong, in one line and without the statement or its values."""
    original = getattr(exc, "orig", None) or exc
    first_line = (str(original).strip().splitlines() or [""])[0]
    return clean_text(f"{type(original).__name__}: {first_line}", 300)


def _apply(tx: Store, outcomes: list[Outcome], settings: Settings) -> list[str]:
    if not outcomes:
        return []
    rows = []
    for o in outcomes:
        status = PENDING if o.kind == "retry" else o.kind
        final = status in (COMPLETED, FAILED, CANCELLED)
        rows.append(
            Settlement(
                o.invocation_id,
                o.worker_id,
                status,
                not_before=o.not_before,
                last_error=o.error,
                result=o.result,
                conversation_id=o.conversation_id,
                completed_at=o.ended_at if final else None,
                message=o.message,
            )
        )
    done = tx.settle_invocations(rows)
    settled = set(done)
    # In the same transaction: a trigger's health, its auto-pause and the events they
    # cause are stored with the outcome or not at all.
    health.record_ends(
        tx,
        settings,
        [
            health.Ended(o.invocation_id, o.kind == COMPLETED, o.ended_at, o.error, o.trigger_id)
            for o in outcomes
            if o.invocation_id in settled and o.kind in (COMPLETED, FAILED)
        ],
    )
    tx.record_usage(
        [
            UsageRow(o.invocation_id, o.trigger_id, o.ended_at.astimezone(UTC).date(), o.usage)
            for o in outcomes
            if o.usage and o.trigger_id and o.kind == COMPLETED and o.invocation_id in settled
        ]
    )
    tx.finish_attempts(
        [
            AttemptEnd(
                o.invocation_id,
                o.attempt,
                o.ended_at,
                o.attempt_outcome or (FAILED if o.kind == "retry" else o.kind),
                o.error,
            )
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
                    trigger_id=inv.trigger_id,
                )
            )
        _apply_isolated(tx, outcomes, ctx.settings)
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


def next_wakeup(ctx: Context, exclude_tenants: Sequence[str] = ()) -> datetime | None:
    """When the earliest pending invocation (of tenants other than ``exclude_tenants``)
    may start, or a lease runs out."""
    with ctx.db.read() as tx:
        candidates = [tx.earliest_claimable(exclude_tenants), tx.earliest_lease_expiry()]
    present = [c for c in candidates if c is not None]
    return min(present) if present else None
