"""A ref's whole definition, as pushed from code (``PUT .../definition``) and answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tickwork.domain.limits import MAX_AGENTS, MAX_TRIGGERS_PER_AGENT
from tickwork.domain.names import SLUG_PATTERN
from tickwork.wire.base import FROM_RECORD, Name, Strict
from tickwork.wire.resources import MaxConcurrency, TargetIn, TargetOut
from tickwork.wire.triggers import TriggerCreate, TriggerOut


class DefinitionAgentIn(Strict):
    id: Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]
    name: Name | None = Field(default=None, description="default: the id")
    target: TargetIn
    max_concurrency: MaxConcurrency | None = None
    triggers: list[TriggerCreate] = Field(
        default_factory=list,
        max_length=MAX_TRIGGERS_PER_AGENT,
        description="the agent's scheduled triggers; names are unique per agent and ref",
    )


class DefinitionIn(Strict):
    """Everything the ref holds: agents missing here are deleted, and so are triggers.
    A trigger field left out takes its default, as on create."""

    agents: list[DefinitionAgentIn] = Field(max_length=MAX_AGENTS)


class CountsOut(BaseModel):
    model_config = FROM_RECORD

    created: int
    updated: int
    deleted: int
    unchanged: int


class DefinitionSummary(BaseModel):
    agents: CountsOut
    triggers: CountsOut


class DefinitionAgentOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    name: str
    target: TargetOut
    max_concurrency: int | None
    created_at: datetime
    updated_at: datetime
    triggers: list[TriggerOut]


ChangeAction = Literal["create", "update", "delete", "unchanged"]


class DefinitionChange(BaseModel):
    """What the push did (or, in a dry run, would do) to one agent or trigger."""

    model_config = FROM_RECORD

    action: ChangeAction
    agent: str = Field(description="the agent's id")
    trigger: str | None = Field(description="the trigger's name; null for the agent itself")
    trigger_id: str | None = Field(
        description="the trigger's id; null for an agent, and for a trigger a dry run would create"
    )
    fields: list[str] = Field(
        description="for an update, the fields that change (a changed secret is `target`)"
    )


class DefinitionOut(BaseModel):
    ref: str
    revision: int = Field(
        description="the ref's revision (in a dry run: the one the push would give it); "
        "a push that changes nothing keeps it"
    )
    changed: bool
    dry_run: bool = Field(default=False, description="true: nothing was written")
    summary: DefinitionSummary
    changes: list[DefinitionChange] = Field(
        default_factory=list,
        description="each agent and trigger of the ref before or after the push, with "
        "what the push does to it: agents and their triggers in the order pushed, then "
        "what it deletes",
    )
    agents: list[DefinitionAgentOut] = Field(
        description="in the order they were pushed; empty in a dry run"
    )
