"""Retention settings and the audit log (SPEC §11)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictInt

from tickwork.wire.base import FROM_RECORD, Strict

MAX_RETENTION_DAYS = 36_500
MAX_PER_TRIGGER = 100_000_000


class RetentionValue(BaseModel):
    value: int = Field(description="in force: the override, else the default")
    default: int = Field(description="from the settings (TICKWORK_HISTORY_*)")
    override: int | None = Field(description="set for this project; null: the default")


class RetentionOut(BaseModel):
    project: str
    history_retention_days: RetentionValue = Field(
        description="finished invocations (with their attempts) and audit events are "
        "deleted this many days after they finished or happened"
    )
    history_max_per_trigger: RetentionValue = Field(
        description="a trigger keeps at most this many finished invocations, the newest"
    )


class RetentionIn(Strict):
    """Overrides to set: a field left out stays as it is, null restores the default."""

    history_retention_days: Annotated[StrictInt, Field(ge=1, le=MAX_RETENTION_DAYS)] | None = None
    history_max_per_trigger: Annotated[StrictInt, Field(ge=1, le=MAX_PER_TRIGGER)] | None = None


class AuditEventOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    at: datetime
    actor: str = Field(
        description="who made the change: `api-key:<key id>`, `admin` (the admin token) or "
        "`tickwork` (tickwork itself, or its command line on the server)"
    )
    action: str = Field(description="what was done, e.g. `trigger.update`, `api_key.create`")
    project: str | None = Field(description="the project changed; null for the tenant itself")
    target_type: str
    target_id: str
    before: Any = Field(description="the target before the change (secrets redacted)")
    after: Any = Field(description="the target after the change (secrets redacted)")
