"""The store's face: what each consumer may ask of it, and the values that cross.

Each Protocol is what one part of tickwork needs (tenancy and quotas, the catalog of
what tenants define, the scheduler, the invocation history, the workers' queue, the
scheduler lease and the process registry); :class:`tickwork.storage.sql.Tx` implements
them all on one connection. Services type against these ports, never the SQL classes.

Longer than other modules on purpose: it is the store's whole contract, read in one place.

The rules every method keeps:

- It runs inside the transaction the caller opened (``Database.write()`` or
  ``Database.read()``) and never commits; "(write)" marks a method that needs a write
  transaction, every other one may run in either.
- The current instant is always a parameter: the store never asks the database for the
  time.
- ``for_update`` / ``lock`` lock the rows read until commit on PostgreSQL, so writers of
  the same rows go one at a time (on SQLite the write transaction holds the database
  lock already); ``skip_locked`` readers pass over rows another transaction holds.
- Lists come back in a stated order, and an id that matches nothing is left out rather
  than raising.

One module, longer than most: every port's contract is in its docstrings, and the ports
share the records that cross them; one module is the one page a store implementation is
written against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from tickwork.storage.records import (
    ACTIVE_STATUSES,
    Agent,
    ApiKey,
    Attempt,
    Backfill,
    Candidate,
    Deployment,
    Invocation,
    Process,
    Project,
    Ref,
    SchedulerState,
    Trigger,
)

# -- what crosses the ports -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NextRun:
    """A trigger's schedule after a dispatch pass: when it fires next (None: never
    again), whether it stays enabled, its last error and its new ``updated_at``."""

    id: str
    next_run_at: datetime | None
    enabled: bool
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewInvocation:
    """An invocation to insert: pending (to run at ``not_before``) or already final
    (missed, skipped or cancelled when it was planned, with ``completed_at``)."""

    id: str
    trigger_id: str
    trigger_name: str
    tenant_id: str
    project_id: str
    ref: str
    agent_id: str
    origin: str
    scheduled_for: datetime
    idempotency_key: str
    status: str
    status_reason: str | None
    attempt: int
    not_before: datetime
    payload: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None
    # The invocation a rerun repeats, and the backfill that created it.
    rerun_of: str | None = None
    backfill_id: str | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a claimed attempt resolved its agent to: the agent's name and the ref's
    revision the attempt runs against."""

    id: str
    agent_name: str
    ref_revision: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """A running invocation's next state once its attempt ended, as held by
    ``worker_id``: ``pending`` again (a retry from ``not_before``) or final. A None
    ``not_before`` or ``message`` keeps the stored one."""

    id: str
    worker_id: str
    status: str
    not_before: datetime | None = None
    last_error: str | None = None
    result: Any = None
    conversation_id: str | None = None
    completed_at: datetime | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """How one attempt ended: its outcome (completed, failed, cancelled, timeout, lost)
    and error."""

    invocation_id: str
    attempt: int
    ended_at: datetime
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True)
class InvocationFilter:
    """Which of a project's invocations a listing shows: those matching every field
    given (of one trigger, in these statuses, scheduled in ``[scheduled_from,
    scheduled_to)``)."""

    trigger_id: str | None = None
    statuses: tuple[str, ...] | None = None
    scheduled_from: datetime | None = None
    scheduled_to: datetime | None = None
    agent_id: str | None = None
    ref: str | None = None
    origins: tuple[str, ...] | None = None


EVERY_INVOCATION = InvocationFilter()


@dataclass(frozen=True, slots=True)
class SlotRow:
    """An invocation of a trigger as a backfill looks at its slot."""

    id: str
    scheduled_for: datetime
    idempotency_key: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BulkFilter:
    """Which of a project's invocations a bulk action is about: those in ``statuses``
    that match every other field given."""

    statuses: Sequence[str]
    agent_id: str | None = None
    trigger_id: str | None = None
    origins: Sequence[str] | None = None
    scheduled_from: datetime | None = None
    scheduled_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class TriggerFilter:
    """Which of a project's triggers a listing shows: those matching every field given
    (of one agent, on one ref, enabled or not, paused by an operator or not, with
    ``name_contains`` in the name, ignoring the case of ASCII letters)."""

    agent_id: str | None = None
    ref: str | None = None
    enabled: bool | None = None
    name_contains: str | None = None
    paused: bool | None = None
    health: HealthFilter | None = None


@dataclass(frozen=True, slots=True)
class HealthFilter:
    """Triggers of one health (:mod:`tickwork.domain.health`): ``late`` is judged
    against ``late_before`` (now minus the grace)."""

    health: str
    late_before: datetime


@dataclass(frozen=True, slots=True)
class RunEnd:
    """An invocation that ended (completed: ``succeeded``; failed: not) at ``at``; with
    ``trigger_id``, its trigger as the caller knows it (the invocation is then not read
    back unless it failed)."""

    invocation_id: str
    succeeded: bool
    at: datetime
    trigger_id: str | None = None


@dataclass(frozen=True, slots=True)
class HealthChange:
    """What one ended invocation did to its trigger's health: the trigger's failure
    count before and after. ``trigger`` (as it is now, locked until commit) and
    ``invocation`` are given when the change causes an event: ``trigger`` for a failure
    or a success after failures, ``invocation`` for a failure; None otherwise, so that
    the common case reads neither."""

    trigger_id: str
    invocation_id: str
    succeeded: bool
    failures_before: int
    consecutive_failures: int
    trigger: Trigger | None = None
    invocation: Invocation | None = None


@dataclass(frozen=True, slots=True)
class NotificationConfig:
    """A project's notification targets, as stored (secrets sealed); ``revision``
    goes up by one with every change."""

    tenant_id: str
    project_id: str
    targets: list[dict[str, Any]]
    revision: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event to deliver to one target (``target``: its url, sealed secret and
    format), ``pending`` until ``delivered`` or ``failed`` (out of tries)."""

    id: str
    event_id: str
    tenant_id: str
    project_id: str
    event_type: str
    target: dict[str, Any]
    body: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request seen with an ``Idempotency-Key``; ``status`` is None while the first
    one is still being handled."""

    tenant_id: str
    key: str
    fingerprint: str
    method: str
    path: str
    status: int | None
    headers: dict[str, str] | None
    body: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RetentionScope:
    """Where retention applies: a project with its overrides (None: the default), or a
    tenant itself (``project_id`` "", no overrides) for its tenant-wide audit events."""

    tenant_id: str
    project_id: str
    history_retention_days: int | None
    history_max_per_trigger: int | None


@dataclass(frozen=True, slots=True)
class TriggerRetention:
    """A trigger with history, whether it still exists (history outlives a deleted
    trigger, and is then kept by age alone), and its project's count override (None:
    the default)."""

    trigger_id: str
    exists: bool
    history_max_per_trigger: int | None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A finished invocation as retention looks at it."""

    id: str
    trigger_id: str
    completed_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One change, as recorded (SPEC §11): ``project_id`` is "" for a change to the
    tenant itself; ``before`` and ``after`` have their secrets redacted already."""

    id: str
    tenant_id: str
    project_id: str
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    before: Any
    after: Any


# -- the ports --------------------------------------------------------------------------


class Tenancy(Protocol):
    """Tenants, their quota overrides and their API keys (tenant admin, quotas, auth)."""

    def create_tenant(self, tenant_id: str, now: datetime) -> bool:
        """(write) Create the tenant; False if it exists already (nothing changes)."""
        ...

    def tenant_exists(self, tenant_id: str) -> bool:
        """Whether the tenant exists."""
        ...

    def count_tenants(self) -> int:
        """How many tenants exist."""
        ...

    def lock_tenant(self, tenant_id: str) -> dict[str, int | None] | None:
        """(write) The tenant's quota overrides, by quota name (None: the default), or
        None without such a tenant; the tenant row stays locked until commit, so quota
        checks of one tenant go one at a time. Inserts under the tenant are not
        blocked by it."""
        ...

    def tenant_quotas(self, tenant_id: str) -> dict[str, int | None] | None:
        """As :meth:`lock_tenant`, without the lock."""
        ...

    def set_tenant_quotas(self, tenant_id: str, values: Mapping[str, int | None]) -> bool:
        """(write) Set overrides by quota name (None: back to the default); False
        without such a tenant."""
        ...

    def tenant_usage(self, tenant_id: str, quota: str) -> int:
        """What the tenant uses of one quota (projects, agents, triggers, api_keys,
        slots_per_day), as one indexed aggregate."""
        ...

    def insert_api_key(
        self,
        key_id: str,
        tenant_id: str,
        name: str,
        key_hash: str,
        prefix: str,
        now: datetime,
        scope: str = "write",
    ) -> None:
        """(write) Store a new key by its hash (the secret itself is never stored)."""
        ...

    def api_key_for_hash(self, key_hash: str) -> ApiKey | None:
        """The live (unrevoked) key with this hash, or None."""
        ...

    def list_api_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's keys, revoked ones included, by id: id, name, prefix, scope,
        created_at, revoked_at (never the hash)."""
        ...

    def revoke_api_key(self, tenant_id: str, key_id: str, now: datetime) -> bool:
        """(write) Revoke a live key of this tenant; False if there is none."""
        ...


class Catalog(Protocol):
    """What tenants define: projects, refs, agents and triggers (the resource, trigger
    and definition services)."""

    def get_project(self, tenant_id: str, project_id: str) -> Project | None:
        """The project, or None."""
        ...

    def upsert_project(
        self, tenant_id: str, project_id: str, name: str, description: str, now: datetime
    ) -> tuple[Project, bool]:
        """(write) Create the project (with its ``main`` ref) or change its name and
        description; returns it and whether this call created it. Concurrent creators
        all succeed, exactly one of them creating it."""
        ...

    def list_projects(self, tenant_id: str, after: str | None, limit: int) -> list[Project]:
        """Up to ``limit`` of the tenant's projects by id, after the id ``after``."""
        ...

    def delete_project_invocations(self, tenant_id: str, project_id: str) -> int:
        """(write) Delete the project's invocation history (attempts go with it);
        returns how many invocations went."""
        ...

    def delete_project(self, tenant_id: str, project_id: str) -> bool:
        """(write) Delete the project and all it holds (its notification targets and
        outbox too); False if there was none."""
        ...

    def get_ref(
        self, tenant_id: str, project_id: str, name: str, *, for_update: bool = False
    ) -> Ref | None:
        """The ref, or None; ``for_update`` makes writers of one ref go one at a time."""
        ...

    def ensure_ref(self, tenant_id: str, project_id: str, name: str, now: datetime) -> Ref:
        """(write) The ref, created at revision 0 if it did not exist."""
        ...

    def bump_ref(self, tenant_id: str, project_id: str, name: str, now: datetime) -> int:
        """(write) Record a write to the ref (created if need be): returns its new
        revision, one above the last."""
        ...

    def list_refs(self, tenant_id: str, project_id: str) -> list[Ref]:
        """The project's refs by name."""
        ...

    def delete_ref(self, tenant_id: str, project_id: str, name: str) -> bool:
        """(write) Delete the ref and all it holds; False if there was none."""
        ...

    def get_agent(
        self,
        tenant_id: str,
        project_id: str,
        ref: str,
        agent_id: str,
        *,
        for_update: bool = False,
    ) -> Agent | None:
        """The agent on this ref, or None."""
        ...

    def upsert_agent(
        self,
        tenant_id: str,
        project_id: str,
        ref: str,
        agent_id: str,
        name: str,
        target: dict[str, Any],
        now: datetime,
        *,
        bump: bool = True,
        max_concurrency: int | None = None,
    ) -> tuple[Agent, bool]:
        """(write) Create or change the agent; returns it and whether this call created
        it. Only a real change is written, and it bumps the ref's revision unless
        ``bump`` is false. Raises ``Conflict`` if it was deleted meanwhile."""
        ...

    def list_agents(self, tenant_id: str, project_id: str, ref: str) -> list[Agent]:
        """The ref's agents by id."""
        ...

    def agents_after(self, after: tuple[str, str, str, str] | None, limit: int) -> list[Agent]:
        """Up to ``limit`` agents of every tenant in key order (tenant, project, ref,
        id) after the key ``after``: for maintenance passes over all of them."""
        ...

    def replace_agent_target(
        self,
        tenant_id: str,
        project_id: str,
        ref: str,
        agent_id: str,
        expected: dict[str, Any],
        target: dict[str, Any],
    ) -> bool:
        """(write) Store ``target`` if the stored target is still ``expected``, with no
        revision bump and ``updated_at`` unchanged; False if it changed meanwhile."""
        ...

    def delete_agent(self, tenant_id: str, project_id: str, ref: str, agent_id: str) -> bool:
        """(write) Delete the agent and its triggers; False if there was none."""
        ...

    def insert_trigger(self, trigger: Trigger) -> None:
        """(write) Store a new trigger as given."""
        ...

    def get_trigger(self, trigger_id: str, *, for_update: bool = False) -> Trigger | None:
        """The trigger by id, whatever its tenant, or None."""
        ...

    def find_trigger(
        self, tenant_id: str, project_id: str, trigger_id: str, agent_id: str | None = None
    ) -> Trigger | None:
        """The trigger if it belongs to this tenant and project (and agent, if given),
        or None: another tenant's id costs exactly what a missing one does."""
        ...

    def get_triggers(self, trigger_ids: Iterable[str]) -> dict[str, Trigger]:
        """The triggers that exist among these ids, by id."""
        ...

    def list_triggers(
        self,
        tenant_id: str,
        project_id: str,
        *,
        ref: str | None = None,
        agent_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Trigger]:
        """Up to ``limit`` of the project's triggers by id (of one ref and agent, if
        given), after the id ``after``."""
        ...

    def trigger_ids_in_scope(
        self,
        tenant_id: str,
        project_id: str,
        ref: str | None = None,
        agent_id: str | None = None,
    ) -> list[str]:
        """The ids of every trigger of the project (of one ref and agent, if given)."""
        ...

    def update_trigger(self, trigger_id: str, values: Mapping[str, Any]) -> None:
        """(write) Set these columns of the trigger."""
        ...

    def delete_trigger(self, trigger_id: str) -> bool:
        """(write) Delete the trigger (its invocations stay as history); False if there
        was none."""
        ...


class Scheduling(Protocol):
    """What the scheduler reads and writes: due triggers and their next runs."""

    def due_triggers(self, now: datetime, limit: int, *, lock: bool = True) -> list[Trigger]:
        """Up to ``limit`` triggers whose next run is at or before ``now``, oldest first;
        with ``lock`` (write), locked for this transaction and skipped by other
        schedulers' transactions."""
        ...

    def set_next_runs(self, updates: Sequence[NextRun]) -> None:
        """(write) Apply each trigger's new schedule state, unconditionally."""
        ...

    def advance_triggers(self, updates: Sequence[NextRun], seen: Sequence[Trigger]) -> set[str]:
        """(write) Apply ``updates`` to the triggers still exactly as ``seen`` (same
        ``next_run_at`` and ``updated_at``); returns the ids changed. A trigger edited
        since it was read keeps the edit and is left out."""
        ...

    def earliest_next_run_at(self) -> datetime | None:
        """When the next trigger is due, or None if none will ever be."""
        ...

    def scheduled_triggers(self, tenant_id: str, project_id: str, limit: int) -> list[Trigger]:
        """The project's triggers that have a next run, soonest first (ties by id)."""
        ...

    def active_counts(self, trigger_ids: Iterable[str]) -> dict[str, int]:
        """How many pending or running invocations each of these triggers has (a
        trigger with none is left out)."""
        ...


class History(Protocol):
    """Invocations and attempts read back (API, CLI, the scheduler view)."""

    def get_invocation(self, invocation_id: str) -> Invocation | None:
        """The invocation by id, whatever its tenant, or None."""
        ...

    def find_invocation(
        self, tenant_id: str, project_id: str, invocation_id: str, trigger_id: str | None = None
    ) -> Invocation | None:
        """The invocation if it belongs to this tenant and project (and trigger, if
        given), scoped like :meth:`Catalog.find_trigger`."""
        ...

    def list_invocations(
        self,
        tenant_id: str,
        project_id: str,
        where: InvocationFilter = EVERY_INVOCATION,
        *,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Invocation]:
        """Up to ``limit`` of the project's invocations that match ``where``, newest
        first; ``before`` is the cursor, an id from the previous page."""
        ...

    def pending_invocations(self, tenant_id: str, project_id: str, limit: int) -> list[Invocation]:
        """The project's pending invocations, in the order workers may start them."""
        ...

    def list_attempts(self, invocation_id: str) -> list[Attempt]:
        """The invocation's attempts, first first."""
        ...


class Queue(Protocol):
    """The workers' queue (and whoever adds to it or cancels): inserting invocations,
    claiming them, settling their attempts, leases and cancellation."""

    def insert_invocations(self, rows: Sequence[NewInvocation]) -> list[str]:
        """(write) Insert; a row whose idempotency key exists already is skipped.
        Returns the ids actually inserted."""
        ...

    def claim_invocations(
        self,
        now: datetime,
        limit: int,
        worker_id: str,
        lease_until: datetime,
        deployment_id: str,
    ) -> list[Invocation]:
        """(write) :meth:`claim_ids` of :meth:`claim_candidates`: take up to ``limit``
        due pending invocations, oldest first."""
        ...

    def claim_candidates(
        self,
        now: datetime,
        limit: int,
        exclude_tenants: Iterable[str] = (),
        *,
        only: str | None = None,
        lock: bool = True,
    ) -> list[Candidate]:
        """Up to ``limit`` pending invocations due at ``now``, oldest first, of tenants
        other than ``exclude_tenants`` (or only the one with id ``only``); with ``lock``
        (write), locked for this transaction and skipped by other workers', so that
        :meth:`claim_ids` can take any of them."""
        ...

    def claim_ids(
        self,
        ids: Sequence[str],
        now: datetime,
        worker_id: str,
        lease_until: datetime,
        deployment_id: str,
    ) -> list[Invocation]:
        """(write) Claim these pending invocations: each becomes ``running`` under this
        worker's lease with its attempt number raised, and its attempt is recorded.
        Returns them oldest first; an id no longer pending is left out."""
        ...

    def agents_at_head(
        self, keys: Iterable[tuple[str, str, str, str]]
    ) -> dict[tuple[str, str, str, str], tuple[Agent, int]]:
        """Each of these agents (tenant, project, ref, agent) as its ref has it now, with
        the ref's revision, in one query; an agent or ref that is gone is left out."""
        ...

    def running_per_agent(
        self, agents: Iterable[tuple[str, str, str, str]], *, lock: bool = False
    ) -> dict[tuple[str, str, str, str], int]:
        """How many invocations of each agent (tenant, project, ref, agent) run now, in
        every process; ``lock`` (write) locks those agents, so that workers deciding on
        the same agent's cap go one after the other."""
        ...

    def others_running(self, trigger_id: str, invocation_id: str) -> bool:
        """Whether another invocation of the trigger than this one is running."""
        ...

    def release(self, invocation: Invocation, not_before: datetime) -> None:
        """(write) Hand a claimed invocation back pending from ``not_before``, as if
        never claimed: its attempt is neither counted nor recorded."""
        ...

    def record_resolutions(self, rows: Sequence[Resolution]) -> None:
        """(write) Store what each claimed attempt resolved."""
        ...

    def finish_attempts(self, rows: Sequence[AttemptEnd]) -> None:
        """(write) Close these attempts; one closed already is left as it is."""
        ...

    def settle_invocations(self, rows: Sequence[Settlement]) -> list[str]:
        """(write) Move running invocations to their next state. One no longer running
        under the settlement's worker (cancelled meanwhile, lease lost) is left as it
        is; returns the ids updated. The rows stay locked until commit, so a concurrent
        cancel waits and then finds them final."""
        ...

    def renew_leases(self, ids: Sequence[str], worker_id: str, until: datetime) -> list[str]:
        """(write) Extend this worker's leases to ``until``; returns the ids it still
        holds while running."""
        ...

    def expired_leases(self, now: datetime, limit: int) -> list[Invocation]:
        """Up to ``limit`` running invocations whose lease ran out before ``now``, oldest
        expiry first (write: locked, and skipped by other recoverers)."""
        ...

    def fail_invocations(self, ids: Sequence[str], now: datetime, error: str) -> list[str]:
        """(write) End these pending or running invocations ``failed`` with ``error``
        (their open attempt too), touching nothing else; returns the ids failed."""
        ...

    def cancel_invocations(self, ids: Sequence[str], now: datetime, reason: str) -> list[str]:
        """(write) Cancel those still pending or running (their open attempt too);
        returns the ids cancelled."""
        ...

    def active_invocation_ids(
        self, trigger_ids: Sequence[str], statuses: Iterable[str] = ACTIVE_STATUSES
    ) -> list[str]:
        """The ids, in order, of these triggers' invocations in ``statuses``."""
        ...

    def not_running(self, ids: Sequence[str]) -> list[str]:
        """Of these ids, those no longer running (cancelled meanwhile, for example)."""
        ...

    def earliest_claimable(self, exclude_tenants: Iterable[str] = ()) -> datetime | None:
        """When the earliest pending invocation (of tenants other than these) may
        start, or None."""
        ...

    def count_active(self, status: str) -> int:
        """How many invocations are in ``status``, ``pending`` or ``running`` only (a
        count of an index, never a scan); raises ValueError for another status."""
        ...

    def earliest_lease_expiry(self) -> datetime | None:
        """When the first running invocation's lease runs out, or None."""
        ...


class Leadership(Protocol):
    """The scheduler lease, deployments and processes (leadership, the process
    registry, the deploy endpoints)."""

    def scheduler_state(self, *, for_update: bool = False) -> SchedulerState:
        """The lease's holder, generation and expiry (created empty if missing)."""
        ...

    def write_scheduler_state(self, state: SchedulerState) -> None:
        """(write) Replace the lease's state."""
        ...

    def hold_fence(
        self, run_id: str, generation: int, now: datetime, lease_until: datetime
    ) -> bool:
        """(write) Renew the lease to ``lease_until`` if ``run_id`` still holds
        ``generation``. Called first in a dispatch transaction: it locks the state row,
        so a takeover either happened before (and this returns False) or waits until
        the dispatch commits."""
        ...

    def upsert_deployment(self, deployment_id: str, version: str, now: datetime) -> None:
        """(write) Record the deployment at its first start, or its heartbeat."""
        ...

    def current_deployment_at(self, now: datetime, role: str = "worker") -> str | None:
        """The newest deployment (by first start) with a live process of ``role`` at
        ``now``, or None."""
        ...

    def list_deployments(self) -> list[Deployment]:
        """Every recorded deployment, oldest first."""
        ...

    def upsert_process(self, process: Process) -> None:
        """(write) Record the process, or renew its heartbeat and expiry."""
        ...

    def delete_process(self, process_id: str) -> bool:
        """(write) Remove the process; False if it was not recorded."""
        ...

    def delete_processes_expired_before(self, before: datetime) -> int:
        """(write) Remove the processes that expired before ``before``; returns how
        many."""
        ...

    def list_processes(self, *, live_at: datetime | None = None) -> list[Process]:
        """Every recorded process (only those live at ``live_at``, if given), newest
        first."""
        ...


@dataclass(frozen=True, slots=True)
class UsageRow:
    """The tokens one completed invocation reported (``input_tokens``,
    ``output_tokens``, ``total_tokens``), counted for its trigger on ``day`` (UTC)."""

    invocation_id: str
    trigger_id: str
    day: date
    usage: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class UsageDay:
    """What one trigger's runs used on one UTC day."""

    day: date
    tokens: int
    invocations: int


class RunContext(Protocol):
    """What a run is given of the runs before it, and what runs used (SPEC §13)."""

    def previous_runs(self, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
        """Each trigger's latest completed invocation (by completion), where it has one
        (one statement for many triggers)."""
        ...

    def record_usage(self, rows: Sequence[UsageRow]) -> None:
        """(write) Store each invocation's usage and add its ``total_tokens`` to its
        trigger's day."""
        ...

    def tokens_on(self, trigger_ids: Iterable[str], day: date) -> dict[str, int]:
        """Tokens each trigger's runs used on ``day``; triggers with none left out."""
        ...

    def usage_days(self, trigger_id: str, before: date | None, limit: int) -> list[UsageDay]:
        """The trigger's days with usage, newest first, those before ``before`` if given."""
        ...


class Control(Protocol):
    """An operator's control of scheduling (SPEC §10): project pauses, the scheduler's
    bookkeeping of a trigger's control state, backfills and bulk selections."""

    def set_project_pause(self, tenant_id: str, project_id: str, values: Mapping[str, Any]) -> bool:
        """(write) Write a project's pause columns; False when there is no such project."""
        ...

    def paused_projects(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of these (tenant, project) pairs, those paused now."""
        ...

    def projects_to_resume(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Paused projects whose pause ends by ``now``, soonest first."""
        ...

    def earliest_project_resume(self) -> datetime | None:
        """When the next project's pause ends by itself, or None."""
        ...

    def rearm_project_triggers(self, tenant_id: str, project_id: str, at: datetime) -> int:
        """(write) Wake the project's enabled triggers at ``at`` (a wake-up:
        ``next_run_at`` = ``at``, ``rearm``) when they have nothing scheduled or are due
        before it; triggers paused without an end and used up ones stay. Returns how
        many."""
        ...

    def park_triggers(self, seen: Sequence[tuple[str, datetime | None]]) -> set[str]:
        """(write) Take these triggers off the schedule (``next_run_at`` None) when
        their ``next_run_at`` is still as seen; returns the ids parked."""
        ...

    def set_trigger_controls(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """(write) Apply ``{"id", ...control columns}`` rows, each with the same
        columns."""
        ...

    def insert_backfill(self, backfill: Backfill, plan: Sequence[tuple[datetime, str]]) -> None:
        """(write) Store a backfill with its plan (``(slot, kind)``, oldest first)."""
        ...

    def planned_slots(
        self, backfill_id: str, position: int, limit: int
    ) -> list[tuple[datetime, str]]:
        """The backfill's planned slots from ``position`` on, at most ``limit``."""
        ...

    def get_backfill(self, backfill_id: str) -> Backfill | None: ...

    def find_backfill(
        self, tenant_id: str, project_id: str, trigger_id: str, backfill_id: str
    ) -> Backfill | None:
        """The backfill if it belongs to this tenant, project and trigger."""
        ...

    def list_backfills(self, trigger_id: str, before: str | None, limit: int) -> list[Backfill]:
        """A trigger's backfills, newest first; ``before`` is the cursor (an id)."""
        ...

    def running_backfills(self, limit: int) -> list[Backfill]:
        """Backfills still running, oldest first."""
        ...

    def any_running_backfill(self) -> bool: ...

    def update_backfill(
        self, backfill_id: str, values: Mapping[str, Any], *, position: int | None = None
    ) -> bool:
        """(write) Write a running backfill's columns if it is still running (and, with
        ``position``, still at it); False otherwise. Locks the row until commit."""
        ...

    def active_per_backfill(self, backfill_ids: Iterable[str]) -> dict[str, int]:
        """How many pending or running invocations each backfill has (none: left out)."""
        ...

    def pending_of_backfill(self, backfill_id: str) -> list[str]:
        """The ids of the backfill's pending invocations."""
        ...

    def slot_rows(self, trigger_id: str, start: datetime, end: datetime) -> list[SlotRow]:
        """The trigger's invocations with ``scheduled_for`` in [start, end)."""
        ...

    def match_invocations(
        self, tenant_id: str, project_id: str, where: BulkFilter, limit: int
    ) -> list[Invocation]:
        """The project's invocations that match, oldest first, at most ``limit``."""
        ...


class Lookups(Protocol):
    """Finding things across a project (SPEC §10): triggers by name and by filter, agents
    on any ref, each trigger's last run (the API's lists and checks)."""

    def trigger_named(
        self, tenant_id: str, project_id: str, ref: str, agent_id: str, name: str
    ) -> Trigger | None:
        """The agent's trigger with this name on this ref (names are unique there)."""
        ...

    def agent_exists(
        self, tenant_id: str, project_id: str, agent_id: str, ref: str | None = None
    ) -> bool:
        """Whether the project has this agent on ``ref`` (None: on any ref)."""
        ...

    def search_triggers(
        self,
        tenant_id: str,
        project_id: str,
        where: TriggerFilter,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Trigger]:
        """The project's triggers matching ``where``, in id order (the order they were
        created), ``limit`` after the id ``after``."""
        ...

    def last_runs(self, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
        """Each trigger's newest invocation that ran or ended (a pending invocation no
        worker has started is not a run); triggers without one are left out. One index
        probe per trigger."""
        ...


class Idempotency(Protocol):
    """Stored answers of requests sent with an ``Idempotency-Key``, per tenant."""

    def claim_idempotency_key(
        self,
        tenant_id: str,
        key: str,
        *,
        fingerprint: str,
        method: str,
        path: str,
        now: datetime,
        expires_at: datetime,
    ) -> StoredRequest | None:
        """(write) Record that a request with this key is being handled: None when this
        caller now holds the key, else the request already recorded under it (an expired
        one is replaced). Of concurrent callers exactly one gets None."""
        ...

    def idempotency_key(self, tenant_id: str, key: str) -> StoredRequest | None:
        """The request recorded under the key, expired or not."""
        ...

    def complete_idempotency_key(
        self, tenant_id: str, key: str, status: int, headers: dict[str, str], body: str
    ) -> None:
        """(write) Store the answer of the request that holds the key."""
        ...

    def release_idempotency_key(self, tenant_id: str, key: str) -> None:
        """(write) Forget a key whose request ended without an answer worth keeping."""
        ...

    def prune_idempotency_keys(self, now: datetime, limit: int) -> int:
        """(write) Delete up to ``limit`` expired keys, oldest first; returns how many."""
        ...

    def count_idempotency_keys(self) -> int:
        """How many keys are stored."""
        ...


class Retention(Protocol):
    """What the pruner reads and deletes (SPEC §11). Every read that chooses rows to
    delete is a range scan of an index; only finished invocations (those with a
    ``completed_at``) are ever chosen."""

    def lock_project(self, tenant_id: str, project_id: str) -> Project | None:
        """(write) The project, locked until commit (its settings' writers go one at a
        time), or None."""
        ...

    def set_project_retention(
        self, tenant_id: str, project_id: str, values: Mapping[str, int | None]
    ) -> None:
        """(write) Set the project's ``history_retention_days`` and/or
        ``history_max_per_trigger`` overrides (None: back to the default)."""
        ...

    def reclaim_space(self, pages: int) -> int:
        """(write) On a SQLite file in ``auto_vacuum=INCREMENTAL`` mode, give up to
        ``pages`` free pages back to the file system; returns how many free pages are
        left (0 on PostgreSQL, whose autovacuum does this, and on other SQLite files)."""
        ...

    def retention_scopes(self, after: tuple[str, str] | None, limit: int) -> list[RetentionScope]:
        """Up to ``limit`` scopes in (tenant, project) order after ``after``: every
        project, and every tenant as the scope ``(tenant, "")``."""
        ...

    def longest_retention_days(self, default: int) -> int:
        """The longest history retention in force in any project (``default`` at least)."""
        ...

    def expired_history(
        self,
        tenant_id: str,
        project_id: str,
        cutoff: datetime,
        after: datetime | None,
        limit: int,
    ) -> list[HistoryRow]:
        """Up to ``limit`` of the project's invocations finished before ``cutoff`` (and
        after ``after``, if given), oldest first."""
        ...

    def triggers_for_retention(self, after: str | None, limit: int) -> list[TriggerRetention]:
        """Up to ``limit`` trigger ids of every tenant after ``after``, in id order, that
        have finished invocations (triggers without any are passed over at no cost)."""
        ...

    def history_boundary(self, trigger_id: str, keep: int) -> datetime | None:
        """When the ``keep``-th newest finished invocation of the trigger finished, or
        None when it has fewer."""
        ...

    def history_before(self, trigger_id: str, boundary: datetime, limit: int) -> list[HistoryRow]:
        """Up to ``limit`` of the trigger's invocations finished before ``boundary``,
        oldest first."""
        ...

    def protected_history(self, trigger_ids: Iterable[str]) -> set[str]:
        """The ids retention must keep for these triggers, whatever their age: each
        existing trigger's last run (what ``last_run`` shows) and its latest completed
        invocation (what its next run is handed, SPEC §13)."""
        ...

    def delete_history(self, ids: Sequence[str]) -> tuple[int, int]:
        """(write) Delete these invocations, if finished, with their attempts; returns
        how many invocations and attempts went."""
        ...

    def oldest_finished(self, tenant_id: str, project_id: str) -> datetime | None:
        """When the project's oldest kept finished invocation finished, or None."""
        ...


class Audit(Protocol):
    """The audit log (SPEC §11)."""

    def insert_audit(self, events: Sequence[AuditEvent]) -> None:
        """(write) Record these events."""
        ...

    def list_audit(
        self, tenant_id: str, project_id: str | None, before: str | None, limit: int
    ) -> list[AuditEvent]:
        """Up to ``limit`` of the tenant's events (of one project, or "" for the tenant's
        own; None: every one), newest first; ``before`` is the cursor, an id."""
        ...

    def delete_audit_before(
        self, tenant_id: str | None, project_id: str | None, before_id: str, limit: int
    ) -> int:
        """(write) Delete up to ``limit`` events with an id below ``before_id`` (ids sort
        by time), oldest first, of one scope (None: of every one); returns how many."""
        ...

    def oldest_audit(self) -> datetime | None:
        """When the oldest kept event happened, or None."""


class Health(Protocol):
    """Triggers' health (SPEC §11): kept as invocations end, and what makes one late."""

    def record_run_ends(self, ends: Sequence[RunEnd]) -> list[HealthChange]:
        """(write) Count each ended invocation towards its trigger's health, in the
        order given: a success sets ``last_success_at`` and clears
        ``consecutive_failures``, a failure sets ``last_failure_at`` and adds one.
        Invocations whose trigger is gone are left out. The triggers stay locked until
        commit, so two workers settling one trigger's runs count one after the other."""
        ...

    def oldest_pending(self, trigger_ids: Iterable[str]) -> dict[str, datetime]:
        """Each trigger's earliest ``not_before`` among its pending invocations (none:
        left out); one index probe per trigger."""
        ...

    def late_triggers(self, before: datetime, limit: int) -> list[Trigger]:
        """Up to ``limit`` enabled, unpaused triggers not yet told late
        (``late_notified_at`` None) with ``next_run_at`` or a pending invocation's
        ``not_before`` before ``before``, by id: bounded range scans of the due and
        claimable indexes (of the pending invocations, the oldest few thousand)."""
        ...

    def told_late(self, limit: int) -> list[Trigger]:
        """Up to ``limit`` triggers with ``late_notified_at`` set, by id."""
        ...

    def set_late_notified(self, trigger_ids: Sequence[str], at: datetime | None) -> None:
        """(write) Set (or, with None, clear) these triggers' ``late_notified_at``."""
        ...


class Notifications(Protocol):
    """Notification targets per project and the outbox of deliveries (SPEC §11)."""

    def notification_config(self, tenant_id: str, project_id: str) -> NotificationConfig | None:
        """The project's notification targets, or None when it never set any."""
        ...

    def put_notification_config(
        self, tenant_id: str, project_id: str, targets: list[dict[str, Any]], now: datetime
    ) -> NotificationConfig:
        """(write) Replace the project's targets; the revision goes up by one (the
        first is 1). The row stays locked until commit."""
        ...

    def enqueue_notifications(self, rows: Sequence[OutboxRow]) -> None:
        """(write) Add deliveries to the outbox."""
        ...

    def claim_notifications(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> list[OutboxRow]:
        """(write) Take up to ``limit`` pending deliveries due at ``now``, oldest due
        first (skipping those another sender holds): each one's attempt count goes up
        by one and it is not due again before ``lease_until``, so a sender that dies
        mid-delivery leaves it to be tried again then. Returns them as claimed."""
        ...

    def finish_notification(
        self,
        row_id: str,
        attempts: int,
        *,
        status: str,
        next_attempt_at: datetime,
        last_error: str | None,
        delivered_at: datetime | None,
    ) -> bool:
        """(write) Record how the claimed attempt ``attempts`` ended; False when the
        row has moved on since (another sender claimed it again)."""
        ...

    def list_notifications(
        self, tenant_id: str, project_id: str, before: str | None, limit: int
    ) -> list[OutboxRow]:
        """The project's deliveries, newest first; ``before`` is the cursor (an id)."""
        ...

    def earliest_notification(self) -> datetime | None:
        """When the next pending delivery is due, or None."""
        ...


class Store(
    Tenancy,
    Catalog,
    Scheduling,
    History,
    Queue,
    Leadership,
    RunContext,
    Control,
    Lookups,
    Idempotency,
    Retention,
    Audit,
    Health,
    Notifications,
    Protocol,
):
    """Every port in one transaction, for a unit of work that spans several."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception inside undoes only what it did, and the
        enclosing transaction goes on (to isolate one failing item of a batch)."""
        ...
