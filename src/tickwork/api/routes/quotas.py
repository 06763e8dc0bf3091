"""Tenant quotas (SPEC §9): the admin reads and overrides them; a tenant reads its own."""

from __future__ import annotations

from fastapi import APIRouter

from tickwork.api.deps import Admin, Ctx, ReadTenant, TenantId
from tickwork.domain.rate import MINUTES_PER_DAY
from tickwork.services import quotas
from tickwork.services.context import Context
from tickwork.wire import QuotaOut, QuotasIn, QuotasOut

router = APIRouter()


def _out(ctx: Context, tenant: str) -> QuotasOut:
    in_force, overrides, used = quotas.usage(ctx, tenant)
    use: dict[str, float] = {
        "projects": used.projects,
        "agents": used.agents,
        "triggers": used.triggers,
        "api_keys": used.api_keys,
        "slots_per_minute": used.slots_per_day / MINUTES_PER_DAY,
    }
    defaults = quotas.limits(ctx.settings, {})
    return QuotasOut(
        tenant=tenant,
        **{
            name: QuotaOut(
                limit=in_force[name],
                default=defaults[name],
                override=overrides.get(name),
                used=use[name],
            )
            for name in quotas.QUOTAS
        },
    )


@router.get(
    "/api/v1/admin/tenants/{tenant}/quotas",
    tags=["admin"],
    dependencies=[Admin],
    response_model=QuotasOut,
)
def admin_get_quotas(tenant: TenantId, ctx: Ctx) -> QuotasOut:
    """The tenant's quotas: limit in force, default, override and current use."""
    return _out(ctx, tenant)


@router.put(
    "/api/v1/admin/tenants/{tenant}/quotas",
    tags=["admin"],
    dependencies=[Admin],
    response_model=QuotasOut,
)
def admin_put_quotas(tenant: TenantId, body: QuotasIn, ctx: Ctx) -> QuotasOut:
    """Override some of the tenant's quotas (partial: only the fields given change; null
    restores the default). A limit below the current use removes nothing; it refuses
    growth until the use is back under it."""
    quotas.set_overrides(ctx, tenant, {name: getattr(body, name) for name in body.model_fields_set})
    return _out(ctx, tenant)


@router.get("/api/v1/tenants/{tenant}/quotas", tags=["api keys"], response_model=QuotasOut)
def get_quotas(tenant: ReadTenant, ctx: Ctx) -> QuotasOut:
    """This tenant's quotas and how much of each it uses."""
    return _out(ctx, tenant)
