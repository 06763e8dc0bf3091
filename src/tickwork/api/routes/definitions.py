"""A ref's whole definition, pushed from code (``PUT .../definition?ref=``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tickwork.api.deps import Caller, Ctx, ProjectId, WriteTenant
from tickwork.api.routes.projects import target_out
from tickwork.api.routes.triggers import trigger_out
from tickwork.domain.names import REF_PATTERN
from tickwork.services import definitions
from tickwork.services.definitions import Counts, PushedAgent, PushResult
from tickwork.wire import (
    CountsOut,
    DefinitionAgentOut,
    DefinitionIn,
    DefinitionOut,
    DefinitionSummary,
)

router = APIRouter(prefix="/api/v1/tenants/{tenant}/projects/{project}", tags=["definitions"])

RefQuery = Annotated[str, Query(pattern=REF_PATTERN, max_length=128)]


def counts_out(c: Counts) -> CountsOut:
    return CountsOut(created=c.created, updated=c.updated, deleted=c.deleted, unchanged=c.unchanged)


def definition_agent_out(pushed: PushedAgent) -> DefinitionAgentOut:
    a = pushed.agent
    return DefinitionAgentOut(
        id=a.id,
        name=a.name,
        target=target_out(a.target),
        max_concurrency=a.max_concurrency,
        created_at=a.created_at,
        updated_at=a.updated_at,
        triggers=[trigger_out(t) for t in pushed.triggers],
    )


def definition_out(result: PushResult) -> DefinitionOut:
    return DefinitionOut(
        ref=result.ref.name,
        revision=result.ref.revision,
        changed=result.changed,
        summary=DefinitionSummary(
            agents=counts_out(result.agent_counts),
            triggers=counts_out(result.trigger_counts),
        ),
        agents=[definition_agent_out(a) for a in result.agents],
    )


@router.put(
    "/definition",
    response_model=DefinitionOut,
    responses={413: {"description": "A trigger's payload or message template is too large."}},
)
def put_definition(
    tenant: WriteTenant,
    project: ProjectId,
    body: DefinitionIn,
    ctx: Ctx,
    caller: Caller,
    ref: RefQuery = "main",
) -> DefinitionOut:
    """Replace the ref's whole definition (its agents and their scheduled triggers) in one
    transaction; the ref is created if needed. Triggers are matched by agent id and
    trigger name: new ones are created, changed ones updated (``next_run_at`` recomputed
    only when the schedule changes or the trigger is enabled), missing ones deleted with
    their pending and running invocations cancelled. Pushing the same definition again
    changes nothing: same ids, same schedule, same revision."""
    agents = [
        {
            "id": agent.id,
            "name": agent.name,
            "target": agent.target.model_dump(),
            "max_concurrency": agent.max_concurrency,
            "triggers": [t.model_dump(exclude_none=True) for t in agent.triggers],
        }
        for agent in body.agents
    ]
    result = definitions.put_definition(ctx, tenant, project, ref, agents, caller.actor)
    return definition_out(result)
