"""Projects, refs and agents."""

from __future__ import annotations

from typing import Any

from tickwork.domain.names import MAX_DESCRIPTION, MAX_NAME, check_ref, check_slug, check_text
from tickwork.domain.target_spec import normalise_target
from tickwork.errors import Conflict, NotFound, ValidationError
from tickwork.services import audit, etags, processes, quotas, secrets
from tickwork.services.context import Context
from tickwork.storage.ports import Catalog, Queue
from tickwork.storage.records import Agent, Project, Ref


def require_project(tx: Catalog, tenant_id: str, project_id: str) -> Project:
    project = tx.get_project(tenant_id, project_id)
    if project is None:
        raise NotFound(f"project {project_id!r} not found")
    return project


def put_project(
    ctx: Context, tenant_id: str, project_id: str, name: str | None, description: str | None
) -> tuple[Project, bool]:
    check_slug(project_id, "project")
    name = check_text(name, "name", MAX_NAME) or project_id
    description = check_text(description, "description", MAX_DESCRIPTION)
    with ctx.db.write() as tx:
        if not tx.tenant_exists(tenant_id):
            raise NotFound(f"tenant {tenant_id!r} not found")
        before = tx.get_project(tenant_id, project_id)
        if before is None:
            quotas.check(ctx, tx, tenant_id, quotas.Change(projects=1))
        now = ctx.clock.now()
        project, created = tx.upsert_project(tenant_id, project_id, name, description, now)
        if before is None or (before.name, before.description) != (
            project.name,
            project.description,
        ):
            change = audit.Change(
                tenant_id,
                project_id,
                "project.create" if created else "project.update",
                "project",
                project_id,
                audit.snapshot(before),
                audit.snapshot(project),
            )
            audit.record(tx, now, change)
        return project, created


def get_project(ctx: Context, tenant_id: str, project_id: str) -> Project:
    with ctx.db.read() as tx:
        return require_project(tx, tenant_id, project_id)


def list_projects(ctx: Context, tenant_id: str, after: str | None, limit: int) -> list[Project]:
    with ctx.db.read() as tx:
        return tx.list_projects(tenant_id, after, limit)


def cancel_for_triggers(ctx: Context, tx: Queue, trigger_ids: list[str], reason: str) -> list[str]:
    """Cancel every pending or running invocation of these triggers (history stays)."""
    ids = tx.active_invocation_ids(trigger_ids)
    return tx.cancel_invocations(ids, ctx.clock.now(), reason)


def delete_project(ctx: Context, tenant_id: str, project_id: str) -> None:
    with ctx.db.write() as tx:
        before = require_project(tx, tenant_id, project_id)
        triggers = tx.trigger_ids_in_scope(tenant_id, project_id)
        # Running attempts are told to stop; then everything under the project goes,
        # its invocation history included, so a project re-created later starts empty.
        cancelled = cancel_for_triggers(ctx, tx, triggers, "project deleted")
        tx.delete_project_invocations(tenant_id, project_id)
        tx.delete_project(tenant_id, project_id)
        change = audit.Change(
            tenant_id, project_id, "project.delete", "project", project_id, audit.snapshot(before)
        )
        audit.record(tx, ctx.clock.now(), change)
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()


def list_refs(ctx: Context, tenant_id: str, project_id: str) -> list[Ref]:
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        return tx.list_refs(tenant_id, project_id)


def delete_ref(ctx: Context, tenant_id: str, project_id: str, ref: str) -> None:
    check_ref(ref)
    if ref == "main":
        raise Conflict("the main ref cannot be deleted")
    with ctx.db.write() as tx:
        require_project(tx, tenant_id, project_id)
        if tx.get_ref(tenant_id, project_id, ref) is None:
            raise NotFound(f"ref {ref!r} not found")
        triggers = tx.trigger_ids_in_scope(tenant_id, project_id, ref=ref)
        cancelled = cancel_for_triggers(ctx, tx, triggers, f"ref {ref} deleted")
        before = tx.get_ref(tenant_id, project_id, ref)
        tx.delete_ref(tenant_id, project_id, ref)
        change = audit.Change(
            tenant_id, project_id, "ref.delete", "ref", ref, audit.snapshot(before)
        )
        audit.record(tx, ctx.clock.now(), change)
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()


def put_agent(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    ref: str,
    agent_id: str,
    name: str | None,
    target: Any,
    *,
    max_concurrency: int | None = None,
    if_match: str | None = None,
) -> tuple[Agent, bool]:
    """Create or change an agent; with ``if_match``, only the version of it that ETag
    names (412 otherwise, and for an agent that does not exist)."""
    check_slug(agent_id, "agent")
    check_max_concurrency(max_concurrency)
    check_ref(ref)
    name = check_text(name, "name", MAX_NAME) or agent_id
    spec = normalise_target(target)
    with ctx.db.write() as tx:
        require_project(tx, tenant_id, project_id)
        processes.require_handlers(tx, ctx.clock.now(), [("target", spec)])
        before = tx.get_agent(tenant_id, project_id, ref, agent_id, for_update=True)
        if if_match is not None:
            current = None if before is None else etags.agent_etag(before)
            etags.require_match(if_match, current, f"agent {agent_id} on ref {ref}")
        if before is None:
            quotas.check(ctx, tx, tenant_id, quotas.Change(agents=1))
        spec = secrets.seal(ctx, spec, before)
        saved, created = tx.upsert_agent(
            tenant_id,
            project_id,
            ref,
            agent_id,
            name,
            spec,
            ctx.clock.now(),
            max_concurrency=max_concurrency,
        )
        if created or before != saved:
            change = audit.Change(
                tenant_id,
                project_id,
                "agent.create" if created else "agent.update",
                "agent",
                f"{ref}/{agent_id}",
                audit.snapshot(before),
                audit.snapshot(saved),
            )
            audit.record(tx, ctx.clock.now(), change)
        return saved, created


MAX_AGENT_CONCURRENCY = 10_000


def check_max_concurrency(value: object, field: str = "max_concurrency") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer from 1 to {MAX_AGENT_CONCURRENCY}")
    if not 1 <= value <= MAX_AGENT_CONCURRENCY:
        raise ValidationError(field, f"must be an integer from 1 to {MAX_AGENT_CONCURRENCY}")
    return value


def get_agent(ctx: Context, tenant_id: str, project_id: str, ref: str, agent_id: str) -> Agent:
    check_ref(ref)
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        return require_agent(tx, tenant_id, project_id, ref, agent_id)


def require_agent(tx: Catalog, tenant_id: str, project_id: str, ref: str, agent_id: str) -> Agent:
    agent = tx.get_agent(tenant_id, project_id, ref, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id!r} not found on ref {ref!r}")
    return agent


def list_agents(ctx: Context, tenant_id: str, project_id: str, ref: str) -> list[Agent]:
    check_ref(ref)
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        if tx.get_ref(tenant_id, project_id, ref) is None:
            raise NotFound(f"ref {ref!r} not found")
        return tx.list_agents(tenant_id, project_id, ref)


def delete_agent(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    ref: str,
    agent_id: str,
    *,
    if_match: str | None = None,
) -> None:
    check_ref(ref)
    with ctx.db.write() as tx:
        require_project(tx, tenant_id, project_id)
        agent = require_agent(tx, tenant_id, project_id, ref, agent_id)
        etags.require_match(if_match, etags.agent_etag(agent), f"agent {agent_id} on ref {ref}")
        triggers = tx.trigger_ids_in_scope(tenant_id, project_id, ref=ref, agent_id=agent_id)
        cancelled = cancel_for_triggers(ctx, tx, triggers, f"agent {agent_id} deleted")
        tx.delete_agent(tenant_id, project_id, ref, agent_id)
        tx.bump_ref(tenant_id, project_id, ref, ctx.clock.now())
        change = audit.Change(
            tenant_id,
            project_id,
            "agent.delete",
            "agent",
            f"{ref}/{agent_id}",
            audit.snapshot(agent),
        )
        audit.record(tx, ctx.clock.now(), change)
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()
