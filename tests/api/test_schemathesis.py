"""The app against its own OpenAPI document (schemathesis): every route, with generated
valid and invalid input, must never answer 5xx, and every answer must be one the
document declares, with its content type and body schema.

The requests go through the ASGI app in-process. Most of them are aimed at real
resources (tenant ``acme``, project ``p``, agent ``a``, a trigger and a finished
invocation), rebuilt before each request when a previous one deleted them, so the
generated bodies and queries reach the services; one in three keeps the generated path
values, to probe the routing and the id patterns too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.helpers import TenantKey, new_tenant
from tickwork.api.app import create_app
from tickwork.services import execution, resources, tenants, triggers
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage.engine import create_engine
from tickwork.storage.records import FINAL_STATUSES
from tickwork.storage.sql import Database
from tickwork.testing import FakeClock

# A generated case. Its operation type takes four of schemathesis's own parameters that
# nothing here reads: the case's method, path and body are what these tests use.
Case = schemathesis.Case[Any]
ADMIN_TOKEN = "admin-token-for-schemathesis"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Bounded so the whole run stays well under a minute on either backend.
EXAMPLES_PER_OPERATION = 10
ADMIN_PREFIXES = ("/api/v1/admin/", "/api/v1/system/")


class World:
    """The resources generated requests are aimed at, recreated whenever a request
    (a DELETE, a definition push, a key revocation) removed them."""

    def __init__(self, ctx: Context, owner: TenantKey) -> None:
        self.ctx = ctx
        self.owner = owner
        self.requests = 0
        self.trigger_id = ""
        self.invocation_id = ""
        self.spare_key_id = ""
        self.dirty = True

    def rebuild(self) -> None:
        ctx, tenant = self.ctx, self.owner.tenant
        with ctx.db.read() as tx:  # one look; writes only for what is missing
            project = tx.get_project(tenant, "p")
            agent = tx.get_agent(tenant, "p", "main", "a")
            trigger = tx.get_trigger(self.trigger_id) if self.trigger_id else None
            invocation = tx.get_invocation(self.invocation_id) if self.invocation_id else None
            spare = {k["id"]: k for k in tx.list_api_keys(tenant)}.get(self.spare_key_id)
        if project is None:
            resources.put_project(ctx, tenant, "p", None, None)
        if agent is None or agent.target != PYTHON_TARGET:
            resources.put_agent(ctx, tenant, "p", "main", "a", None, PYTHON_TARGET)
        if trigger is None or (trigger.project_id, trigger.ref, trigger.agent_id) != SCOPE:
            fields = {"name": "st", "cron_expression": "*/5 * * * *"}
            trigger = triggers.create_trigger(ctx, tenant, "p", "a", fields)
            self.trigger_id, invocation = trigger.id, None
        if not trigger.enabled:
            triggers.update_trigger(ctx, tenant, "p", "a", self.trigger_id, {"enabled": True})
        if invocation is None or invocation.status not in FINAL_STATUSES:
            self.invocation_id = finished_invocation(ctx, tenant, self.trigger_id)
        if spare is None or spare["revoked_at"] is not None:
            self.spare_key_id, _ = tenants.create_key(ctx, tenant, "spare")

    def aim(self, case: Case) -> dict[str, str]:
        """Point the case at the world (mostly) and return the headers to send."""
        self.requests += 1
        if self.dirty:
            self.rebuild()
        # Only a write can take the world apart; a GET leaves it as it is.
        self.dirty = case.method.upper() != "GET"
        values = {
            "tenant": self.owner.tenant,
            "project": "p",
            "agent": "a",
            "trigger_id": self.trigger_id,
            "invocation_id": self.invocation_id,
            # Never the key the requests are made with.
            "key_id": self.spare_key_id,
        }
        if self.requests % 3:
            for name in case.path_parameters:
                if name in values:
                    case.path_parameters[name] = values[name]
        if case.path.startswith(ADMIN_PREFIXES):
            return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return dict(self.owner.headers)


PYTHON_TARGET = {"type": "python", "handler": "agents.run"}
SCOPE = ("p", "main", "a")


def finished_invocation(ctx: Context, tenant: str, trigger_id: str) -> str:
    """Run the trigger now and let a worker complete it: an invocation that can be
    rerun."""
    triggers.run_now(ctx, tenant, "p", "a", trigger_id)
    [job] = execution.claim_jobs(ctx, "schemathesis-worker", 1)
    outcome = execution.Outcome(
        job.invocation.id,
        job.invocation.attempt,
        "schemathesis-worker",
        "completed",
        ctx.clock.now(),
    )
    execution.settle(ctx, [outcome])
    return job.invocation.id


def _loading_ctx() -> Context:
    """Serves /openapi.json while this module loads (schemathesis reads the document at
    collection); each test then points the app at its own ctx."""
    return Context(Database(create_engine("sqlite://")), FakeClock(), Settings())


APP = create_app(_loading_ctx())
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION},
        # Requests with undeclared methods (405) are covered by the error tests.
        "phases": {"coverage": {"unexpected-methods": []}, "stateful": {"enabled": False}},
    }
)
# The deploy endpoint answers 503 (not configured, or no scheduler in this process) and
# 500 (restart failed) by design (SPEC §7); its own tests cover it.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG).exclude(
    path="/api/deploy/restart-scheduler"
)


@pytest.fixture
def world(ctx: Context) -> World:
    admin_ctx = dataclasses.replace(ctx, settings=ctx.settings.with_(admin_token=ADMIN_TOKEN))
    APP.state.ctx = admin_ctx
    world = World(admin_ctx, new_tenant(admin_ctx, "acme"))
    world.rebuild()
    return world


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_route_stays_within_its_documented_answers(case: Case, world: World) -> None:
    headers = world.aim(case)
    case.call_and_validate(headers=headers, checks=CHECKS)
