"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from tickwork.api import (
    problems,
    routes_definitions,
    routes_deploy,
    routes_projects,
    routes_quotas,
    routes_system,
    routes_triggers,
)
from tickwork.api.deps import check_scope_decisions
from tickwork.api.limits import BodyLimit
from tickwork.services.context import Context
from tickwork.settings import package_version


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(
        title="tickwork",
        version=package_version(),
        description=(
            "Durable scheduled triggers for AI agents: cron with time zones and one-time "
            "triggers, each occurrence executed as an idempotent invocation."
        ),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    problems.install(app)
    app.include_router(routes_system.router)
    app.include_router(routes_deploy.router)
    app.include_router(routes_projects.router)
    app.include_router(routes_triggers.router)
    app.include_router(routes_definitions.router)
    app.include_router(routes_quotas.router)
    if not check_scope_decisions(app):  # pragma: no cover - a FastAPI that hides routes
        raise RuntimeError("the tenant routes cannot be listed to check their scopes")
    app.add_middleware(BodyLimit)
    return app
