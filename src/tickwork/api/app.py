"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from tickwork.api import docs, problems
from tickwork.api.access_log import AccessLog
from tickwork.api.deps import SchedulerControl, check_scope_decisions
from tickwork.api.limits import BodyLimit
from tickwork.api.routes import (
    control,
    definitions,
    deploy,
    history,
    notifications,
    projects,
    quotas,
    system,
    triggers,
)
from tickwork.services.context import Context
from tickwork.settings import package_version


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operation id is its handler's name (``create_trigger``,
    ``run_now``): short, and stable while the handler keeps its name (the list is pinned
    by tests/api/test_openapi.py, so a change is deliberate)."""
    return route.name


def create_app(ctx: Context, *, scheduler: SchedulerControl | None = None) -> FastAPI:
    """The HTTP app over ``ctx``. ``scheduler`` is this process's scheduler, which the
    restart call restarts (None: the process runs no scheduler, and the call says so)."""
    app = FastAPI(
        title="tickwork",
        version=package_version(),
        description=(
            "Durable scheduled triggers for AI agents: cron with time zones and one-time "
            "triggers, each occurrence executed as an idempotent invocation."
        ),
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        servers=[{"url": "/", "description": "the server that serves this document"}],
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    app.state.scheduler = scheduler
    docs.install(app)
    problems.install(app)
    app.include_router(system.router)
    app.include_router(deploy.router)
    app.include_router(projects.router)
    app.include_router(triggers.router)
    app.include_router(control.router)
    app.include_router(definitions.router)
    app.include_router(notifications.router)
    app.include_router(quotas.router)
    app.include_router(history.router)
    if not check_scope_decisions(app):  # pragma: no cover - a FastAPI that hides routes
        raise RuntimeError("the tenant routes cannot be listed to check their scopes")
    app.add_middleware(BodyLimit)
    app.add_middleware(AccessLog, clock=ctx.clock)
    return app
