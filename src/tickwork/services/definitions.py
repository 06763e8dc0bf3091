"""Push a ref's whole definition from code: its agents and their scheduled triggers.

A push replaces what the ref holds, in ONE transaction. Agents and triggers missing from
the definition are deleted (their pending and running invocations are cancelled; the
history stays); new ones are created; changed ones are updated by the very rules of the
single-trigger routes, so ``next_run_at`` is recomputed only when a trigger's schedule
changes or it is enabled. A trigger is matched by (agent id, trigger name): names are
unique per agent and ref, and a definition naming one twice is refused (409). Pushing
the same definition again writes nothing: the ids, the schedules and the ref's revision
stay as they were. A push that changes anything bumps the revision once.

One module, longer than most: a push is one transaction that compares, plans and applies
a whole ref, and the dry run shares the comparison; the three steps are separate
functions, the module is their one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from tickwork.domain.limits import MAX_AGENTS, MAX_TRIGGERS_PER_AGENT
from tickwork.domain.names import MAX_NAME, check_ref, check_slug, check_text
from tickwork.domain.target_spec import normalise_target
from tickwork.domain.trigger_spec import EDITABLE, MAX_MESSAGE_BYTES, NextRuns, validate_fields
from tickwork.errors import Conflict, NameConflict, NotFound, ValidationError, ValidationErrors
from tickwork.services import audit, etags, processes, quotas, secrets
from tickwork.services.context import Context
from tickwork.services.resources import (
    cancel_for_triggers,
    check_max_concurrency,
    require_project,
)
from tickwork.services.triggers import apply_update, new_trigger, remove_trigger
from tickwork.storage.ports import Store
from tickwork.storage.records import Agent, Ref, Trigger

MAX_TRIGGERS = 10_000
AGENT_FIELDS = ("id", "name", "target", "max_concurrency", "triggers")
# Existing triggers are read in pages of this size.
_PAGE = 1000

_T = TypeVar("_T")
# Where a rule without rrule_start would start when only its form is checked (the rule
# starts at the trigger's creation once it is created).
_ANY_INSTANT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass(frozen=True)
class PushedAgent:
    agent: Agent
    triggers: list[Trigger]


@dataclass(frozen=True)
class Change:
    """One thing a push creates, updates, deletes or leaves unchanged: an agent
    (``trigger`` None) or a trigger of it. ``fields`` names what an update changes
    (never a secret's value: a changed secret is ``target``)."""

    action: str
    agent: str
    trigger: str | None = None
    trigger_id: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushResult:
    """The ref's definition after the push, in the order it was given (empty for a dry
    run), and what the push did (or, dry, would do) to each agent and trigger."""

    ref: Ref
    agents: list[PushedAgent]
    agent_counts: Counts
    trigger_counts: Counts
    changed: bool
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False


@dataclass(frozen=True)
class Definition:
    """A ref's definition as stored: its agents (by id) with their triggers (by
    creation)."""

    ref: Ref
    agents: list[PushedAgent]


@dataclass(frozen=True)
class AgentSpec:
    """An agent of a checked definition; ``index`` is its place in the list."""

    index: int
    id: str
    name: str
    target: dict[str, Any]
    triggers: list[Mapping[str, Any]] = field(default_factory=list)
    max_concurrency: int | None = None


def _at(prefix: str, exc: ValidationError) -> ValidationError:
    """The same error, its field named from the root of the definition."""
    where = f"{prefix}.{exc.field}" if exc.field else prefix
    return type(exc)(where, exc.message)


def _collect(errors: list[ValidationError], check: Callable[..., _T], *args: object) -> _T | None:
    """``check(*args)``, or None with its error added to ``errors``."""
    try:
        return check(*args)
    except ValidationError as exc:
        errors.append(exc)
        return None


def check_definition(
    agents: object,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    next_runs: NextRuns | None = None,
) -> list[AgentSpec]:
    """Check everything that does not depend on the database, reporting every invalid
    element at once (``agents[2].triggers[0].cron_expression``). With ``next_runs``,
    each trigger's first run is computed into it too (and a schedule that never fires
    is reported), so that the push's transaction does none of that work."""
    if not isinstance(agents, Sequence) or isinstance(agents, str | bytes):
        raise ValidationError("agents", "must be a list of agents")
    if len(agents) > MAX_AGENTS:
        raise ValidationError("agents", f"has {len(agents)} agents; the limit is {MAX_AGENTS}")
    errors: list[ValidationError] = []
    # Names given twice: 409 when they are all that is wrong, else listed with the rest.
    twice: list[ValidationError] = []
    specs: list[AgentSpec] = []
    first_index: dict[str, int] = {}
    total = 0
    for i, raw in enumerate(agents):
        path = f"agents[{i}]"
        if not isinstance(raw, Mapping):
            errors.append(ValidationError(path, "must be an object"))
            continue
        unknown = sorted(set(raw) - set(AGENT_FIELDS))
        if unknown:
            errors.append(ValidationError(f"{path}.{unknown[0]}", "is not an agent field"))
        agent_id = _collect(errors, check_slug, raw.get("id"), f"{path}.id")
        if agent_id is not None and agent_id in first_index:
            twice.append(
                ValidationError(
                    f"{path}.id",
                    f"{agent_id!r} is already agents[{first_index[agent_id]}]; "
                    "agent ids are unique in a definition",
                )
            )
        elif agent_id is not None:
            first_index[agent_id] = i
        name = _collect(errors, check_text, raw.get("name"), f"{path}.name", MAX_NAME)
        target = _collect(errors, normalise_target, raw.get("target"), f"{path}.target")
        cap = _collect(
            errors, check_max_concurrency, raw.get("max_concurrency"), f"{path}.max_concurrency"
        )
        triggers = raw.get("triggers") or []
        if not isinstance(triggers, Sequence) or isinstance(triggers, str | bytes):
            errors.append(ValidationError(f"{path}.triggers", "must be a list of triggers"))
            continue
        if len(triggers) > MAX_TRIGGERS_PER_AGENT:
            errors.append(
                ValidationError(
                    f"{path}.triggers",
                    f"has {len(triggers)} triggers; the limit is {MAX_TRIGGERS_PER_AGENT}",
                )
            )
            continue
        total += len(triggers)
        checked = _check_triggers(path, triggers, errors, twice, max_message_bytes, next_runs)
        if agent_id is not None and target is not None:
            specs.append(AgentSpec(i, agent_id, name or agent_id, target, checked, cap))
    if total > MAX_TRIGGERS:
        errors.append(
            ValidationError("agents", f"has {total} triggers in all; the limit is {MAX_TRIGGERS}")
        )
    if errors:
        raise ValidationErrors(sorted(errors + twice, key=_place))
    if twice:
        raise NameConflict(twice)
    return specs


def _place(error: ValidationError) -> list[Any]:
    """Sort key: the order of the elements in the definition (``agents[10]`` after
    ``agents[9]``)."""
    return [int(p) if p.isdigit() else p for p in re.split(r"\[(\d+)\]", error.field)]


def _check_triggers(
    path: str,
    triggers: Sequence[object],
    errors: list[ValidationError],
    twice: list[ValidationError],
    max_message_bytes: int,
    next_runs: NextRuns | None,
) -> list[Mapping[str, Any]]:
    checked: list[Mapping[str, Any]] = []
    first_index: dict[str, int] = {}
    for j, fields in enumerate(triggers):
        where = f"{path}.triggers[{j}]"
        if not isinstance(fields, Mapping):
            errors.append(ValidationError(where, "must be an object"))
            continue
        name = fields.get("name")
        duplicate = isinstance(name, str) and name in first_index
        if isinstance(name, str) and duplicate:
            twice.append(
                ValidationError(
                    f"{where}.name",
                    f"{name!r} is already {path}.triggers[{first_index[name]}]; "
                    "trigger names are unique per agent and ref",
                )
            )
        elif isinstance(name, str):
            first_index[name] = j
        try:
            if next_runs is not None:
                _, schedule = validate_fields(fields, max_message_bytes, created_at=next_runs.now)
                next_runs.of(schedule)
            else:
                validate_fields(fields, max_message_bytes, created_at=_ANY_INSTANT)
        except ValidationError as exc:
            errors.append(_at(where, exc))
            continue
        if not duplicate:
            checked.append(fields)
    return checked


class _DryRun(Exception):
    """Raised at the end of a dry run's transaction, so that it rolls back."""

    def __init__(self, result: PushResult) -> None:
        super().__init__("dry run")
        self.result = result


def put_definition(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    ref: str,
    agents: object,
    created_by: str | None = None,
    *,
    dry_run: bool = False,
    allow_empty: bool = False,
    if_match: str | None = None,
) -> PushResult:
    """Replace the definition of ``ref`` (created if missing) with ``agents``: a list of
    ``{"id", "name", "target", "triggers": [trigger fields, "name" required]}``.

    ``dry_run``: everything is checked and computed exactly as for the push, and the
    transaction is rolled back: the result says what the push would do, and nothing is
    written. A push of no agents onto a ref that has some is refused (409) unless
    ``allow_empty``. ``if_match``: only onto the version of the definition that ETag
    names (412 otherwise)."""
    check_ref(ref)
    next_runs = NextRuns(ctx.clock.now())
    specs = check_definition(agents, ctx.settings.max_message_bytes, next_runs)
    try:
        with ctx.db.write() as tx:
            result, push = _push(
                ctx,
                tx,
                tenant_id,
                project_id,
                ref,
                specs,
                created_by,
                next_runs,
                allow_empty=allow_empty,
                if_match=if_match,
                dry_run=dry_run,
            )
            if dry_run:
                raise _DryRun(result)
            if result.changed:
                audit.record(tx, ctx.clock.now(), _push_change(tenant_id, project_id, ref, result))
    except _DryRun as rolled_back:
        return rolled_back.result
    if push.cancelled:
        ctx.notifier.invocations_cancelled(push.cancelled)
    if result.changed:
        ctx.notifier.triggers_changed()
    return result


def _push_change(tenant_id: str, project_id: str, ref: str, result: PushResult) -> audit.Change:
    """A push's event: what it created, updated and deleted (names and changed fields,
    never a value: the agents' and triggers' own events are not repeated)."""
    done = [asdict(c) for c in result.changes if c.action != "unchanged"]
    summary = {
        "revision": result.ref.revision,
        "agents": asdict(result.agent_counts),
        "triggers": asdict(result.trigger_counts),
        "changes": done,
    }
    return audit.Change(tenant_id, project_id, "definition.push", "ref", ref, None, summary)


def _push(
    ctx: Context,
    tx: Store,
    tenant_id: str,
    project_id: str,
    ref: str,
    specs: list[AgentSpec],
    created_by: str | None,
    next_runs: NextRuns,
    *,
    allow_empty: bool,
    if_match: str | None,
    dry_run: bool,
) -> tuple[PushResult, _Push]:
    require_project(tx, tenant_id, project_id)
    before = quotas.measure(ctx, tx, tenant_id)  # locks the tenant before the ref
    processes.require_handlers(
        tx,
        ctx.clock.now(),
        ((f"agents[{spec.index}].target", spec.target) for spec in specs),
    )
    # Two pushes to one ref go one after the other, never interleaved.
    existing = tx.get_ref(tenant_id, project_id, ref, for_update=True)
    etags.require_match(if_match, etags.definition_etag(existing), f"the definition of ref {ref}")
    if not specs and existing is not None and not allow_empty:
        held = tx.list_agents(tenant_id, project_id, ref)
        if held:
            raise Conflict(
                f"this push names no agent, so it would delete all {len(held)} agents of ref "
                f"{ref} and their triggers; to do that, send it with ?allow_empty=true"
            )
    tx.ensure_ref(tenant_id, project_id, ref, ctx.clock.now())
    tx.get_ref(tenant_id, project_id, ref, for_update=True)
    push = _Push(ctx, tx, tenant_id, project_id, ref, created_by, next_runs)
    pushed = push.apply(specs)
    quotas.check_growth(ctx, tx, tenant_id, before)
    changed = existing is None or push.agents.changed or push.triggers.changed
    if changed and not dry_run:
        tx.bump_ref(tenant_id, project_id, ref, push.now)
    final_ref = tx.get_ref(tenant_id, project_id, ref)
    assert final_ref is not None
    if dry_run:
        # Nothing is kept: the agents and triggers as they would be have no ids yet.
        pushed = []
        if changed:  # the revision the push would give the ref
            final_ref = replace(final_ref, revision=final_ref.revision + 1)
    result = PushResult(
        final_ref, pushed, push.agents, push.triggers, changed, push.changes, dry_run
    )
    return result, push


class _Push:
    """The writes of one push, inside its transaction."""

    def __init__(
        self,
        ctx: Context,
        tx: Store,
        tenant_id: str,
        project_id: str,
        ref: str,
        created_by: str | None,
        next_runs: NextRuns,
    ) -> None:
        self.ctx, self.tx = ctx, tx
        self.scope = (tenant_id, project_id, ref)
        self.created_by = created_by
        self.next_runs = next_runs
        self.now: datetime = next_runs.now
        self.agents = Counts()
        self.triggers = Counts()
        self.cancelled: list[str] = []
        self.changes: list[Change] = []

    def apply(self, specs: list[AgentSpec]) -> list[PushedAgent]:
        tenant_id, project_id, ref = self.scope
        existing_agents = {a.id: a for a in self.tx.list_agents(tenant_id, project_id, ref)}
        # Names are unique per agent and ref (an index holds it), so each key has one
        # trigger; were there several, the oldest would be the one kept.
        by_key: dict[tuple[str, str], list[Trigger]] = {}
        for trigger in self._existing_triggers():
            by_key.setdefault((trigger.agent_id, trigger.name), []).append(trigger)
        wanted = {spec.id for spec in specs}
        for agent_id in sorted(set(existing_agents) - wanted):
            self._delete_agent(agent_id, by_key)
        errors: list[ValidationError] = []
        pushed = []
        for spec in specs:
            agent = self._put_agent(spec, existing_agents.get(spec.id))
            triggers = []
            for j, fields in enumerate(spec.triggers):
                matches = by_key.pop((spec.id, fields["name"]), [])
                try:
                    triggers.append(self._put_trigger(spec.id, fields, matches))
                except ValidationError as exc:
                    errors.append(_at(f"agents[{spec.index}].triggers[{j}]", exc))
            pushed.append(PushedAgent(agent, triggers))
        for leftovers in by_key.values():  # triggers of kept agents the push no longer names
            for trigger in leftovers:
                self._delete_trigger(trigger)
        if errors:  # raised inside the transaction: nothing of the push is kept
            raise ValidationErrors(errors)
        return pushed

    def _existing_triggers(self) -> list[Trigger]:
        tenant_id, project_id, ref = self.scope
        found: list[Trigger] = []
        while True:
            page = self.tx.list_triggers(
                tenant_id,
                project_id,
                ref=ref,
                after=found[-1].id if found else None,
                limit=_PAGE,
            )
            found.extend(page)
            if len(page) < _PAGE:
                return found

    def _delete_agent(self, agent_id: str, by_key: dict[tuple[str, str], list[Trigger]]) -> None:
        tenant_id, project_id, ref = self.scope
        gone = [
            (t.name, t.id) for key in list(by_key) if key[0] == agent_id for t in by_key.pop(key)
        ]
        ids = [tid for _, tid in gone]
        reason = f"agent {agent_id} removed from ref {ref} by a definition push"
        self.cancelled += cancel_for_triggers(self.ctx, self.tx, ids, reason)
        self.tx.delete_agent(tenant_id, project_id, ref, agent_id)  # its triggers go too
        self.agents.deleted += 1
        self.triggers.deleted += len(ids)
        self.changes.append(Change("delete", agent_id))
        self.changes += [Change("delete", agent_id, name, tid) for name, tid in gone]

    def _put_agent(self, spec: AgentSpec, before: Agent | None) -> Agent:
        # An unchanged secret, or {"keep": true}, keeps what is stored.
        target = secrets.seal(self.ctx, spec.target, before, f"agents[{spec.index}].target")
        agent, _ = self.tx.upsert_agent(
            *self.scope,
            spec.id,
            spec.name,
            target,
            self.now,
            bump=False,
            max_concurrency=spec.max_concurrency,
        )
        if before is None:
            self.agents.created += 1
            self.changes.append(Change("create", spec.id))
            return agent
        changed = tuple(
            name
            for name in ("name", "target", "max_concurrency")
            if getattr(before, name) != getattr(agent, name)
        )
        if changed:
            self.agents.updated += 1
            self.changes.append(Change("update", spec.id, fields=changed))
        else:
            self.agents.unchanged += 1
            self.changes.append(Change("unchanged", spec.id))
        return agent

    def _put_trigger(
        self, agent_id: str, fields: Mapping[str, Any], matches: list[Trigger]
    ) -> Trigger:
        if not matches:
            tenant_id, project_id, ref = self.scope
            created = new_trigger(
                self.now,
                tenant_id,
                project_id,
                ref,
                agent_id,
                fields,
                self.created_by,
                next_runs=self.next_runs,
                max_message_bytes=self.ctx.settings.max_message_bytes,
            )
            self.tx.insert_trigger(created)
            self.triggers.created += 1
            self.changes.append(Change("create", agent_id, created.name, created.id))
            return created
        current, duplicates = matches[0], matches[1:]
        for duplicate in duplicates:
            self._delete_trigger(duplicate)
        # The definition is the whole trigger: a field it leaves out takes its default,
        # exactly as an explicit null does in a PATCH.
        patch = {key: fields.get(key) for key in EDITABLE}
        updated, cancelled = apply_update(
            self.ctx, self.tx, current, patch, now=self.now, next_runs=self.next_runs
        )
        self.cancelled += cancelled
        if updated is current:
            self.triggers.unchanged += 1
            self.changes.append(Change("unchanged", agent_id, current.name, current.id))
        else:
            self.triggers.updated += 1
            changed = tuple(k for k in EDITABLE if getattr(current, k) != getattr(updated, k))
            self.changes.append(Change("update", agent_id, current.name, current.id, changed))
        return updated

    def _delete_trigger(self, trigger: Trigger) -> None:
        reason = f"trigger removed from ref {self.scope[2]} by a definition push"
        self.cancelled += remove_trigger(self.ctx, self.tx, trigger.id, reason)
        self.triggers.deleted += 1
        self.changes.append(Change("delete", trigger.agent_id, trigger.name, trigger.id))


def get_definition(ctx: Context, tenant_id: str, project_id: str, ref: str) -> Definition:
    """The ref's definition as it is stored (404 for a ref the project does not have)."""
    check_ref(ref)
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        found = tx.get_ref(tenant_id, project_id, ref)
        if found is None:
            raise NotFound(f"ref {ref!r} not found")
        agents = tx.list_agents(tenant_id, project_id, ref)
        by_agent: dict[str, list[Trigger]] = {a.id: [] for a in agents}
        after: str | None = None
        while True:
            page = tx.list_triggers(tenant_id, project_id, ref=ref, after=after, limit=_PAGE)
            for trigger in page:
                by_agent.setdefault(trigger.agent_id, []).append(trigger)
            if len(page) < _PAGE:
                break
            after = page[-1].id
    return Definition(found, [PushedAgent(a, by_agent[a.id]) for a in agents])
