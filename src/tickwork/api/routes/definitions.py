"""A ref's whole definition, pushed from code (``PUT .../definition?ref=``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from tickwork.api.answers import Overlay
from tickwork.api.conventions import ETAG_HEADER, PRECONDITION, IfMatchHeader, KnownQuery
from tickwork.api.deps import Caller, Ctx, ReadProject, WriteProject
from tickwork.api.routes.projects import target_out
from tickwork.api.routes.triggers import trigger_out
from tickwork.domain.names import REF_PATTERN
from tickwork.domain.target_spec import KEEP_SECRET, env_secret_name
from tickwork.domain.trigger_spec import EDITABLE
from tickwork.services import definitions, etags, triggers
from tickwork.services.context import Context
from tickwork.services.definitions import Definition, PushedAgent, PushResult
from tickwork.storage.records import Agent, Invocation, Trigger
from tickwork.wire import (
    CountsOut,
    DefinitionAgentIn,
    DefinitionAgentOut,
    DefinitionChange,
    DefinitionIn,
    DefinitionOut,
    DefinitionSummary,
    TriggerCreate,
)

router = APIRouter(
    prefix="/api/v1/tenants/{tenant}/projects/{project}",
    tags=["definitions"],
    dependencies=[KnownQuery],
)

RefQuery = Annotated[str, Query(pattern=REF_PATTERN, max_length=128)]


def definition_agent_out(
    pushed: PushedAgent, runs: dict[str, Invocation] | None = None
) -> DefinitionAgentOut:
    a, runs = pushed.agent, runs or {}
    shown = [trigger_out(t, runs.get(t.id)) for t in pushed.triggers]
    return DefinitionAgentOut.model_validate(
        Overlay(a, target=target_out(a.target), triggers=shown)
    )


def definition_out(ctx: Context, result: PushResult) -> DefinitionOut:
    runs = triggers.last_runs(ctx, [t for a in result.agents for t in a.triggers])
    return DefinitionOut(
        ref=result.ref.name,
        revision=result.ref.revision,
        changed=result.changed,
        dry_run=result.dry_run,
        summary=DefinitionSummary(
            agents=CountsOut.model_validate(result.agent_counts),
            triggers=CountsOut.model_validate(result.trigger_counts),
        ),
        changes=[
            # A trigger a dry run would create is shown without an id.
            DefinitionChange.model_validate(
                Overlay(
                    c, trigger_id=None if c.action == "create" and result.dry_run else c.trigger_id
                )
            )
            for c in result.changes
        ],
        agents=[definition_agent_out(a, runs) for a in result.agents],
    )


def exported_target(agent: Agent) -> dict[str, Any]:
    """The agent's target as a push writes it. A stored secret (of any target type) is
    never shown: it is exported as ``{"keep": true}``, which pushed back keeps it."""
    target = dict(agent.target)
    if "secret" not in target:
        return target
    secret = target.pop("secret")
    name = env_secret_name(secret)
    if name is not None:
        target["secret"] = {"env": name}
    elif secret:
        target["secret"] = dict(KEEP_SECRET)
    return target


def exported_trigger(trigger: Trigger) -> TriggerCreate:
    """Every setting of the trigger, as a push writes it (a one-time trigger's
    ``cron_expression`` and a recurring one's ``run_at`` left out)."""
    values = {key: getattr(trigger, key) for key in EDITABLE}
    return TriggerCreate.model_validate({k: v for k, v in values.items() if v is not None})


def exported(definition: Definition) -> DefinitionIn:
    return DefinitionIn(
        agents=[
            DefinitionAgentIn.model_validate(
                {
                    "id": pushed.agent.id,
                    "name": pushed.agent.name,
                    "target": exported_target(pushed.agent),
                    "max_concurrency": pushed.agent.max_concurrency,
                    "triggers": [exported_trigger(t) for t in pushed.triggers],
                }
            )
            for pushed in definition.agents
        ]
    )


@router.get(
    "/definition",
    response_model=DefinitionIn,
    response_model_exclude_none=True,
    responses={200: {"headers": ETAG_HEADER}},
)
def get_definition(
    scope: ReadProject, ctx: Ctx, response: Response, ref: RefQuery = "main"
) -> DefinitionIn:
    """The ref's definition in exactly the form ``PUT /definition`` takes: pushed back
    unchanged, it changes nothing (``"changed": false``). Every trigger setting is
    written out, defaults included; a webhook secret, which is never shown, is written
    ``{"keep": true}`` (keep the stored one), an env reference as itself. Its ``ETag``
    (the ref's revision) can be sent as ``If-Match`` with the next push."""
    definition = definitions.get_definition(ctx, scope.tenant, scope.project, ref)
    response.headers["ETag"] = etags.definition_etag(definition.ref) or ""
    return exported(definition)


@router.put(
    "/definition",
    response_model=DefinitionOut,
    responses={
        200: {"headers": ETAG_HEADER},
        409: {
            "description": "The definition names an agent twice, or a trigger twice for "
            "one agent (`errors` lists each); or it names no agent while the ref has some "
            "and `allow_empty` is not set."
        },
        413: {"description": "A trigger's payload or message template is too large."},
        **PRECONDITION,
    },
)
def put_definition(
    scope: WriteProject,
    body: DefinitionIn,
    ctx: Ctx,
    caller: Caller,
    response: Response,
    ref: RefQuery = "main",
    dry_run: Annotated[
        bool, Query(description="answer what the push would do, and write nothing")
    ] = False,
    allow_empty: Annotated[
        bool, Query(description="allow a push of no agents to delete every agent of the ref")
    ] = False,
    if_match: IfMatchHeader = None,
) -> DefinitionOut:
    """Replace the ref's whole definition (its agents and their scheduled triggers) in one
    transaction; the ref is created if needed. Triggers are matched by agent id and
    trigger name: new ones are created, changed ones updated (``next_run_at`` recomputed
    only when the schedule changes or the trigger is enabled), missing ones deleted with
    their pending and running invocations cancelled. Pushing the same definition again
    changes nothing: same ids, same schedule, same revision. ``changes`` lists what the
    push did to each agent and trigger.

    ``dry_run=true``: everything is checked and computed as for the push, and nothing is
    written; the answer says what would change. A definition of no agents onto a ref
    that has some is refused (409) unless ``allow_empty=true``; one that names an agent,
    or one agent's trigger, twice is 409 too. With ``If-Match``, the push is made only
    onto the version of the definition that ETag (from ``GET /definition``) names."""
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
    result = definitions.put_definition(
        ctx,
        scope.tenant,
        scope.project,
        ref,
        agents,
        caller.actor,
        dry_run=dry_run,
        allow_empty=allow_empty,
        if_match=if_match,
    )
    if not dry_run:
        response.headers["ETag"] = etags.definition_etag(result.ref) or ""
    return definition_out(ctx, result)
