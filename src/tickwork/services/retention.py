"""Retention of invocation history and audit events (SPEC §11).

A finished invocation (completed, failed, cancelled, missed or skipped: one with a
``completed_at``) is deleted with its attempts once it finished more than
``history_retention_days`` ago, or once its trigger has ``history_max_per_trigger``
newer finished invocations. Both come from the settings and may be overridden per
project. Audit events are kept for the same number of days (a tenant's own events and
those of deleted projects: the longest retention in force, at most).

Never deleted, whatever their age: a pending or running invocation (it has no
``completed_at``); each existing trigger's last run (``last_run``) and its latest
completed invocation (handed to its next run as context, SPEC §13). Idempotency of
scheduled slots needs no old row: a slot the scheduler has passed is never planned
again, whether its invocation is kept or not (a ``missing`` backfill over a pruned
range does run those slots again: they are missing).

The active scheduler prunes (:class:`tickwork.runtime.pruner.Pruner`): one
:func:`prune_step` deletes at most ``retention_batch_size`` invocations in one short
write transaction, chosen by a range scan of an index, so dispatch never waits for
more than one batch. On SQLite a file in ``auto_vacuum=INCREMENTAL`` mode then gives
the freed pages back to the file system, a bounded number per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from tickwork import metrics
from tickwork.domain.ids import new_id
from tickwork.errors import NotFound, ValidationError
from tickwork.services import audit, etags
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage.ports import HistoryRow, RetentionScope, TriggerRetention
from tickwork.storage.records import Project

FIELDS = ("history_retention_days", "history_max_per_trigger")
MAX_DAYS = 36_500
MAX_PER_TRIGGER = 100_000_000
# Free pages one step gives back to the file system (4 MiB at SQLite's default page size).
VACUUM_PAGES = 1024
_SCOPES_PAGE = 100
_TRIGGERS_PAGE = 100


@dataclass(frozen=True)
class Policy:
    """The retention in force for a project: its overrides, else the settings."""

    history_retention_days: int
    history_max_per_trigger: int
    overrides: dict[str, int | None]


def policy_of(settings: Settings, project: Project | RetentionScope) -> Policy:
    days = project.history_retention_days
    count = project.history_max_per_trigger
    return Policy(
        days if days is not None else settings.history_retention_days,
        count if count is not None else settings.history_max_per_trigger,
        {"history_retention_days": days, "history_max_per_trigger": count},
    )


def get_retention(ctx: Context, tenant_id: str, project_id: str) -> Project:
    with ctx.db.read() as tx:
        project = tx.get_project(tenant_id, project_id)
    if project is None:
        raise NotFound(f"project {project_id!r} not found")
    return project


def check_values(values: Mapping[str, object]) -> dict[str, int | None]:
    checked: dict[str, int | None] = {}
    bounds = {"history_retention_days": MAX_DAYS, "history_max_per_trigger": MAX_PER_TRIGGER}
    for name, value in values.items():
        if name not in bounds:
            raise ValidationError(name, "is not a retention setting")
        if value is None:
            checked[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bounds[name]:
            raise ValidationError(name, f"must be an integer from 1 to {bounds[name]}, or null")
        checked[name] = value
    return checked


def put_retention(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    values: Mapping[str, object],
    *,
    if_match: str | None = None,
) -> Project:
    """Set some of the project's retention overrides (a field left out stays as it is,
    None restores the default). Lowering one deletes nothing at once: the pruner
    catches up in its next passes."""
    checked = check_values(values)
    with ctx.db.write() as tx:
        before = tx.lock_project(tenant_id, project_id)
        if before is None:
            raise NotFound(f"project {project_id!r} not found")
        etags.require_match(
            if_match, etags.retention_etag(before), f"the retention of project {project_id}"
        )
        after = replace(
            before,
            history_retention_days=checked.get(
                "history_retention_days", before.history_retention_days
            ),
            history_max_per_trigger=checked.get(
                "history_max_per_trigger", before.history_max_per_trigger
            ),
        )
        if after == before:
            return before
        tx.set_project_retention(tenant_id, project_id, checked)
        shown = {n: getattr(before, n) for n in FIELDS}, {n: getattr(after, n) for n in FIELDS}
        change = audit.Change(
            tenant_id, project_id, "retention.update", "project", project_id, *shown
        )
        audit.record(tx, ctx.clock.now(), change)
        return after


# -- pruning --------------------------------------------------------------------------------


@dataclass
class PruneState:
    """Where a pass over the database stands between steps (kept by the pruner in
    memory: a new scheduler starts a new pass, which costs a little repeated reading)."""

    phase: str = "age"
    scopes: list[RetentionScope] = field(default_factory=list)
    scope_after: tuple[str, str] | None = None
    history_after: datetime | None = None
    triggers: list[TriggerRetention] = field(default_factory=list)
    trigger_after: str | None = None
    oldest: datetime | None = None
    passes: int = 0


@dataclass(frozen=True)
class StepResult:
    """What one step deleted, and whether the pass has more to do (False: the pass is
    over, and the pruner may rest)."""

    invocations: int = 0
    attempts: int = 0
    audit_events: int = 0
    more: bool = True


def prune_step(ctx: Context, state: PruneState, now: datetime) -> StepResult:
    """One bounded step of a pass: at most one batch of deletions."""
    if state.phase == "age":
        return _age_step(ctx, state, now)
    if state.phase == "count":
        return _count_step(ctx, state)
    return _finish_pass(ctx, state, now)


def prune(ctx: Context, now: datetime, state: PruneState | None = None) -> StepResult:
    """A whole pass at ``now``, step by step (tests, benchmarks, and the CLI); returns
    the totals."""
    state = state or PruneState()
    invocations = attempts = events = 0
    while True:
        step = prune_step(ctx, state, now)
        invocations += step.invocations
        attempts += step.attempts
        events += step.audit_events
        if not step.more:
            return StepResult(invocations, attempts, events, more=False)


def _count_deleted(invocations: int, attempts: int, audit_events: int = 0) -> None:
    if invocations:
        metrics.pruned.labels(table="invocations").inc(invocations)
    if attempts:
        metrics.pruned.labels(table="invocation_attempts").inc(attempts)
    if audit_events:
        metrics.pruned.labels(table="audit_events").inc(audit_events)


def _age_step(ctx: Context, state: PruneState, now: datetime) -> StepResult:
    batch = ctx.settings.retention_batch_size
    if not state.scopes:
        with ctx.db.read() as tx:
            state.scopes = tx.retention_scopes(state.scope_after, _SCOPES_PAGE)
        if not state.scopes:
            state.phase, state.scope_after = "count", None
            return StepResult()
    scope = state.scopes[0]
    days = policy_of(ctx.settings, scope).history_retention_days
    cutoff = now - timedelta(days=days)
    deleted = attempts = events = 0
    rows: list[HistoryRow] = []
    if scope.project_id:
        with ctx.db.read() as tx:
            rows = tx.expired_history(
                scope.tenant_id, scope.project_id, cutoff, state.history_after, batch
            )
            kept = tx.protected_history({r.trigger_id for r in rows})
        doomed = [r.id for r in rows if r.id not in kept]
        if doomed:
            with ctx.db.write() as tx:
                deleted, attempts = tx.delete_history(doomed)
    with ctx.db.write() as tx:
        events = tx.delete_audit_before(
            scope.tenant_id, scope.project_id, _first_id_at(cutoff), batch
        )
    if len(rows) == batch:
        # More of this project may be due: the next step goes on after the last row
        # read (rows kept are passed over, never read again in this pass).
        state.history_after = rows[-1].completed_at
    elif events < batch:
        if scope.project_id:
            with ctx.db.read() as tx:
                oldest = tx.oldest_finished(scope.tenant_id, scope.project_id)
            if oldest is not None and (state.oldest is None or oldest < state.oldest):
                state.oldest = oldest
        state.scopes.pop(0)
        state.scope_after = (scope.tenant_id, scope.project_id)
        state.history_after = None
    _count_deleted(deleted, attempts, events)
    return StepResult(deleted, attempts, events)


def _count_step(ctx: Context, state: PruneState) -> StepResult:
    batch = ctx.settings.retention_batch_size
    if not state.triggers:
        with ctx.db.read() as tx:
            state.triggers = tx.triggers_for_retention(state.trigger_after, _TRIGGERS_PAGE)
        if not state.triggers:
            state.phase, state.trigger_after = "finish", None
            return StepResult()
    # Triggers under their limit cost one index probe each, all in one read transaction;
    # go through them until one has something to delete, so that a step does at most
    # one batch of deletions.
    while state.triggers:
        rows: list[HistoryRow] = []
        kept: set[str] = set()
        with ctx.db.read() as tx:
            while state.triggers:
                trigger = state.triggers[0]
                if not trigger.exists:  # a deleted trigger's history goes by age alone
                    state.triggers.pop(0)
                    state.trigger_after = trigger.trigger_id
                    continue
                keep = (
                    trigger.history_max_per_trigger
                    if trigger.history_max_per_trigger is not None
                    else ctx.settings.history_max_per_trigger
                )
                boundary = tx.history_boundary(trigger.trigger_id, keep)
                if boundary is not None:
                    rows = tx.history_before(trigger.trigger_id, boundary, batch)
                if rows:
                    kept = tx.protected_history([trigger.trigger_id])
                    break
                state.triggers.pop(0)
                state.trigger_after = trigger.trigger_id
        if not rows:
            break
        doomed = [r.id for r in rows if r.id not in kept]
        if len(rows) < batch or not doomed:
            # The trigger's last batch, or a full batch all of it kept: move on rather
            # than read it again.
            state.triggers.pop(0)
            state.trigger_after = trigger.trigger_id
        if doomed:
            with ctx.db.write() as tx:
                deleted, attempts = tx.delete_history(doomed)
            _count_deleted(deleted, attempts)
            return StepResult(deleted, attempts)
    return StepResult()


def _finish_pass(ctx: Context, state: PruneState, now: datetime) -> StepResult:
    batch = ctx.settings.retention_batch_size
    with ctx.db.read() as tx:
        longest = tx.longest_retention_days(ctx.settings.history_retention_days)
    # Events no scope keeps any longer: of deleted projects, mostly.
    with ctx.db.write() as tx:
        events = tx.delete_audit_before(
            None, None, _first_id_at(now - timedelta(days=longest)), batch
        )
    _count_deleted(0, 0, events)
    if events == batch:
        return StepResult(audit_events=events)
    with ctx.db.write() as tx:
        free = tx.reclaim_space(VACUUM_PAGES)
    if free > 0:
        return StepResult(audit_events=events)
    with ctx.db.read() as tx:
        oldest_event = tx.oldest_audit()
    metrics.oldest_retained.labels(table="invocations").set(_age(now, state.oldest))
    metrics.oldest_retained.labels(table="audit_events").set(_age(now, oldest_event))
    state.passes += 1
    state.phase, state.oldest = "age", None
    return StepResult(audit_events=events, more=False)


def _age(now: datetime, oldest: datetime | None) -> float:
    return 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)


def _first_id_at(instant: datetime) -> str:
    """The smallest id made at ``instant``: every id below it was made before."""
    return new_id("aud", instant, entropy=bytes(10))


def vacuum_file(ctx: Context) -> tuple[str, int]:
    """``tickwork db vacuum``: rewrite a SQLite file in ``auto_vacuum=INCREMENTAL`` mode
    (see :func:`tickwork.storage.engine.vacuum_sqlite`); ValueError on PostgreSQL."""
    from tickwork.storage.engine import vacuum_sqlite

    return vacuum_sqlite(ctx.db.engine)
