"""A ref's whole definition, pushed from code (``PUT .../definition?ref=``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tickwork.api.deps import Caller, Ctx, ProjectId, WriteTenant
from tickwork.api.schemas import (
    MaxConcurrency,
    Name,
    Strict,
    TargetIn,
    TargetOut,
    TriggerCreate,
    TriggerOut,
    target_out,
)
from tickwork.domain.names import REF_PATTERN, SLUG_PATTERN
from tickwork.services import definitions
from tickwork.services.definitions import Counts, PushedAgent, PushResult

router = APIRouter(prefix="/api/v1/tenants/{tenant}/projects/{project}", tags=["definitions"])

RefQuery = Annotated[str, Query(pattern=REF_PATTERN, max_length=128)]


class DefinitionAgentIn(Strict):
    id: Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]
    name: Name | None = Field(None, description="default: the id")
    target: TargetIn
    max_concurrency: MaxConcurrency | None = None
    triggers: list[TriggerCreate] = Field(
        default_factory=list,
        max_length=definitions.MAX_TRIGGERS_PER_AGENT,
        description="the agent's scheduled triggers; names are unique per agent",
    )


class DefinitionIn(Strict):
    """Everything the ref holds: agents missing here are deleted, and so are triggers.
    A trigger field left out takes its default, as on create."""

    agents: list[DefinitionAgentIn] = Field(max_length=definitions.MAX_AGENTS)


class CountsOut(BaseModel):
    created: int
    updated: int
    deleted: int
    unchanged: int

    @classmethod
    def of(cls, c: Counts) -> CountsOut:
        return cls(created=c.created, updated=c.updated, deleted=c.deleted, unchanged=c.unchanged)


class DefinitionSummary(BaseModel):
    agents: CountsOut
    triggers: CountsOut


class DefinitionAgentOut(BaseModel):
    id: str
    name: str
    target: TargetOut
    max_concurrency: int | None
    created_at: datetime
    updated_at: datetime
    triggers: list[TriggerOut]

    @classmethod
    def of(cls, pushed: PushedAgent) -> DefinitionAgentOut:
        a = pushed.agent
        return cls(
            id=a.id,
            name=a.name,
            target=target_out(a.target),
            max_concurrency=a.max_concurrency,
            created_at=a.created_at,
            updated_at=a.updated_at,
            triggers=[TriggerOut.of(t) for t in pushed.triggers],
        )


class DefinitionOut(BaseModel):
    ref: str
    revision: int = Field(description="the ref's revision; a push that changes nothing keeps it")
    changed: bool
    summary: DefinitionSummary
    agents: list[DefinitionAgentOut] = Field(description="in the order they were pushed")

    @classmethod
    def of(cls, result: PushResult) -> DefinitionOut:
        return cls(
            ref=result.ref.name,
            revision=result.ref.revision,
            changed=result.changed,
            summary=DefinitionSummary(
                agents=CountsOut.of(result.agent_counts),
                triggers=CountsOut.of(result.trigger_counts),
            ),
            agents=[DefinitionAgentOut.of(a) for a in result.agents],
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
    return DefinitionOut.of(result)
