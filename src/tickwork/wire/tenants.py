"""Health, tenants, API keys and quotas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt

from tickwork.wire.base import Strict


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]


class TenantIn(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class TenantOut(BaseModel):
    id: str


ScopeName = Literal["read", "operate", "write"]


class KeyIn(Strict):
    name: Annotated[str, Field(max_length=200)] | None = None
    scope: ScopeName = Field(
        default="write",
        description="read: GET only; operate: read, run now, cancel, rerun; write: "
        "everything in the tenant. A key cannot create a key wider than its own.",
    )


class KeyCreated(BaseModel):
    id: str
    scope: str
    key: str = Field(description="shown once; only its hash is stored")


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None


Override = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)] | None


class QuotaOut(BaseModel):
    limit: int = Field(description="in force: the override, else the default")
    default: int = Field(description="from the settings (TICKWORK_QUOTA_*)")
    override: int | None = Field(description="set for this tenant; null: the default")
    used: int | float = Field(description="current use; for slots_per_minute, slots per minute")


class QuotasOut(BaseModel):
    tenant: str
    projects: QuotaOut
    agents: QuotaOut = Field(description="agents on every ref of every project")
    triggers: QuotaOut = Field(description="scheduled triggers, enabled or not")
    api_keys: QuotaOut = Field(description="keys not revoked")
    slots_per_minute: QuotaOut = Field(
        description="the firing rate of the enabled triggers, each counted on a day it "
        "fires: a 6-field `* * * * * *` is 60, `0 9 * * *` is 1/1440; one-time triggers 0"
    )


class QuotasIn(Strict):
    """Overrides to set: a field left out stays as it is, null restores the default."""

    projects: Override = None
    agents: Override = None
    triggers: Override = None
    api_keys: Override = None
    slots_per_minute: Override = None
