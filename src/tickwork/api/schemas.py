"""The API's side of the wire models: every request and response body is defined once in
:mod:`tickwork.wire` (shared with the client library); this module turns the server's
records into those models."""

from __future__ import annotations

from typing import Any, cast, get_args

from tickwork.domain.target_spec import public_target
from tickwork.services.invocations import UpcomingRun
from tickwork.storage.records import (
    ORIGINS,
    STATUSES,
    Agent,
    Attempt,
    Invocation,
    Project,
    Ref,
    Trigger,
)
from tickwork.wire import (
    AgentOut,
    AttemptOut,
    InvocationOut,
    InvocationResult,
    LastRun,
    Origin,
    ProjectOut,
    PythonTargetOut,
    RefOut,
    RefRun,
    Status,
    TriggerOut,
    UpcomingRunOut,
    WebhookTargetOut,
)

# The wire spells these out for the OpenAPI document; they must equal what the store writes.
assert get_args(Status) == STATUSES
assert get_args(Origin) == ORIGINS


def project_out(p: Project) -> ProjectOut:
    return ProjectOut(
        id=p.id,
        name=p.name,
        description=p.description,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def target_out(target: dict[str, Any]) -> WebhookTargetOut | PythonTargetOut:
    shown = public_target(target)
    if shown.get("type") == "webhook":
        return WebhookTargetOut.model_validate(shown)
    return PythonTargetOut.model_validate(shown)


def agent_out(a: Agent) -> AgentOut:
    return AgentOut(
        id=a.id,
        ref=a.ref,
        name=a.name,
        target=target_out(a.target),
        max_concurrency=a.max_concurrency,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def ref_out(r: Ref) -> RefOut:
    return RefOut(
        name=r.name, revision=r.revision, created_at=r.created_at, updated_at=r.updated_at
    )


def last_run_out(i: Invocation | None) -> LastRun | None:
    if i is None:
        return None
    return LastRun(
        invocation_id=i.id,
        scheduled_for=i.scheduled_for,
        status=cast(Status, i.status),
        completed_at=i.completed_at,
        conversation_id=i.conversation_id,
    )


def trigger_out(t: Trigger, last_run: Invocation | None = None) -> TriggerOut:
    data = dict(t.__dict__)
    data["tenant"] = data.pop("tenant_id")
    data["project"] = data.pop("project_id")
    data["agent"] = data.pop("agent_id")
    data["last_run"] = last_run_out(last_run)
    return TriggerOut(**data)


def attempt_out(a: Attempt) -> AttemptOut:
    return AttemptOut(
        attempt=a.attempt,
        deployment_id=a.deployment_id,
        worker_id=a.worker_id,
        started_at=a.started_at,
        ended_at=a.ended_at,
        outcome=a.outcome,
        error=a.error,
    )


def _result(value: Any) -> InvocationResult | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return InvocationResult.model_validate(value)
    return InvocationResult.model_validate({"response": value})


def invocation_out(i: Invocation, attempts: list[Attempt] | None = None) -> InvocationOut:
    return InvocationOut(
        id=i.id,
        trigger_id=i.trigger_id,
        trigger_name=i.trigger_name,
        tenant=i.tenant_id,
        project=i.project_id,
        agent=i.agent_id,
        agent_name=i.agent_name,
        ref=RefRun(name=i.ref, revision=i.ref_revision),
        origin=cast(Origin, i.origin),
        scheduled_for=i.scheduled_for,
        idempotency_key=i.idempotency_key,
        status=cast(Status, i.status),
        status_reason=i.status_reason,
        attempt=i.attempt,
        not_before=i.not_before,
        deployment_id=i.deployment_id,
        payload=i.payload,
        message=i.message,
        result=_result(i.result),
        conversation_id=i.conversation_id,
        last_error=i.last_error,
        created_at=i.created_at,
        started_at=i.started_at,
        completed_at=i.completed_at,
        attempts=None if attempts is None else [attempt_out(a) for a in attempts],
    )


def upcoming_run_out(run: UpcomingRun) -> UpcomingRunOut:
    inv, trigger = run.invocation, run.trigger
    if inv is not None:
        return UpcomingRunOut(
            kind="pending",
            at=run.at,
            scheduled_for=run.scheduled_for,
            trigger_id=inv.trigger_id,
            trigger_name=inv.trigger_name,
            agent=inv.agent_id,
            ref=inv.ref,
            invocation_id=inv.id,
            origin=cast(Origin, inv.origin),
            attempt=inv.attempt,
        )
    assert trigger is not None
    return UpcomingRunOut(
        kind="scheduled",
        at=run.at,
        scheduled_for=run.scheduled_for,
        trigger_id=trigger.id,
        trigger_name=trigger.name,
        agent=trigger.agent_id,
        ref=trigger.ref,
        invocation_id=None,
        origin=None,
        attempt=None,
    )
