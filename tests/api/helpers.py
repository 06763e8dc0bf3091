"""Shared helpers for the HTTP API tests: tenants with keys, URLs, problem checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import httpx2

from tickwork.services import dispatch, execution, tenants
from tickwork.services.context import Context
from tickwork.testing import FakeClock

# Where the ``clock`` fixture starts (tests/conftest.py).
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"

# Starlette's TestClient is built on httpx2, tickwork's own client on httpx: the checks
# below read an answer from either.
Response = httpx.Response | httpx2.Response
HTTPClient = httpx.Client | httpx2.Client


def iso(instant: datetime) -> str:
    """How the API writes an instant: ISO-8601 UTC with a Z."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def at(minutes: float = 0, **kwargs: float) -> str:
    """The API text of START + a duration."""
    return iso(START + timedelta(minutes=minutes, **kwargs))


@dataclass(frozen=True)
class TenantKey:
    """A tenant and one API key of it."""

    tenant: str
    key_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def new_tenant(ctx: Context, tenant: str, key_name: str = "tests") -> TenantKey:
    """Create a tenant (through the service, as the CLI does) and mint a key for it."""
    tenants.create_tenant(ctx, tenant)
    key_id, key = tenants.create_key(ctx, tenant, key_name)
    return TenantKey(tenant, key_id, key)


@dataclass(frozen=True)
class Scope:
    """The URLs under one tenant, project and agent."""

    tenant: str
    project: str
    agent: str

    @property
    def tenant_url(self) -> str:
        return f"/api/v1/tenants/{self.tenant}"

    @property
    def project_url(self) -> str:
        return f"{self.tenant_url}/projects/{self.project}"

    @property
    def agent_url(self) -> str:
        return f"{self.project_url}/agents/{self.agent}"

    @property
    def triggers(self) -> str:
        return f"{self.agent_url}/scheduled-triggers"

    def trigger(self, trigger_id: str) -> str:
        return f"{self.triggers}/{trigger_id}"

    def invocations(self, trigger_id: str) -> str:
        return f"{self.trigger(trigger_id)}/invocations"

    def invocation(self, trigger_id: str, invocation_id: str) -> str:
        return f"{self.invocations(trigger_id)}/{invocation_id}"

    @property
    def project_invocations(self) -> str:
        return f"{self.project_url}/invocations"


def make_scope(client: HTTPClient, tenant: str, project: str = "p", agent: str = "a") -> Scope:
    """Create (or keep) a project and an agent with a python target through the API."""
    scope = Scope(tenant, project, agent)
    assert client.put(scope.project_url).status_code in (200, 201)
    target = {"type": "python", "handler": "agents.run"}
    assert client.put(scope.agent_url, json={"target": target}).status_code in (200, 201)
    return scope


def problem(response: Response, status: int) -> dict[str, Any]:
    """Check an RFC 9457 problem response with this status; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:tickwork:problem:")
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


def field_error(response: Response, status: int = 422) -> dict[str, str]:
    """The first field-level error of a validation problem."""
    body = problem(response, status)
    assert body["errors"], body
    first: dict[str, str] = body["errors"][0]
    return first


def dispatch_at(ctx: Context, clock: FakeClock, minutes_after_start: float) -> int:
    """Move the fake clock to START + minutes and run one dispatch batch, as the
    scheduler would; returns how many invocations it created."""
    clock.set(START + timedelta(minutes=minutes_after_start))
    return dispatch.dispatch_batch(ctx, clock.now(), 100).created


def work_one(ctx: Context, outcome: str, error: str | None = None) -> str:
    """A worker claims the oldest due invocation and ends its attempt with ``outcome``
    (completed or failed); returns its id."""
    jobs = execution.claim_jobs(ctx, "worker-1", 1)
    assert len(jobs) == 1
    job = jobs[0]
    execution.settle(
        ctx,
        [
            execution.Outcome(
                job.invocation.id,
                job.invocation.attempt,
                "worker-1",
                outcome,
                ctx.clock.now(),
                error=error,
                result={"conversation_id": "c-1"} if outcome == "completed" else None,
                conversation_id="c-1" if outcome == "completed" else None,
            )
        ],
    )
    return job.invocation.id


def as_httpx(http: httpx2.Client) -> httpx.Client:
    """Starlette's TestClient (an httpx2.Client) as the httpx.Client the SDK takes: the
    SDK calls only ``request`` (and ``close`` on what it opened itself), which the two
    share, so the in-process app answers the SDK with no server."""
    return cast(httpx.Client, http)
