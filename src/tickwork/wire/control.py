"""An operator's control of scheduling (SPEC §10): pause, resume and skip, backfills,
bulk cancel and rerun."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
)

from tickwork.domain.names import SLUG_PATTERN
from tickwork.wire.base import Strict
from tickwork.wire.triggers import AgentOf, Origin, Status

BackfillMode = Literal["missing", "failed", "all"]
BackfillStatus = Literal["running", "completed", "cancelled"]
Reason = Annotated[str, Field(max_length=1000)]
# The most slots one skip may name (tickwork.domain.control.MAX_SKIP; the API checks
# that they agree).
MAX_SKIP = 10_000


class PauseIn(Strict):
    """Pause a trigger or a whole project."""

    reason: Reason | None = Field(default=None, description="shown as paused_reason")
    until: AwareDatetime | None = Field(
        default=None, description="the pause ends by itself at this instant; null: until resumed"
    )
    cancel_pending: StrictBool = Field(
        default=False, description="also cancel the pending invocations (running ones go on)"
    )


class SkipIn(Strict):
    count: Annotated[StrictInt, Field(ge=0, le=MAX_SKIP)] = Field(
        description="the next this many slots are recorded skipped by request; it "
        "replaces an earlier count (0 cancels the skips)"
    )


class BackfillIn(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: AwareDatetime = Field(alias="from", description="the first instant of the range")
    to: AwareDatetime = Field(description="the end of the range (not included), in the past")
    mode: BackfillMode = Field(
        default="missing",
        description="missing: slots that never ran (canonical keys: never twice); "
        "failed: slots whose latest invocation failed; all: every slot",
    )
    max_concurrency: Annotated[StrictInt, Field(ge=1, le=1000)] = Field(
        default=10, description="the most of its invocations pending or running at once"
    )
    dry_run: StrictBool = Field(default=False, description="count the slots, write nothing")


class BackfillOut(BaseModel):
    # Read from the store's backfill (from attributes), which names its range
    # range_from and range_to.
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    trigger_id: str
    agent: AgentOf
    ref: str
    from_: datetime = Field(
        alias="from", validation_alias=AliasChoices("from", "from_", "range_from")
    )
    to: datetime = Field(validation_alias=AliasChoices("to", "range_to"))
    mode: BackfillMode
    max_concurrency: int
    status: BackfillStatus = Field(
        description="running until every slot is dispatched and every invocation final"
    )
    slots: int = Field(description="the trigger's slots in the range")
    created: int = Field(description="slots it runs (an invocation each)")
    skipped: int = Field(description="slots it leaves alone (already run, or the schedule's)")
    dispatched: int = Field(description="invocations created so far")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class BackfillDryRunOut(BaseModel):
    id: None = Field(default=None, description="null: a dry run creates nothing")
    dry_run: Literal[True] = True
    slots: int
    created: int
    skipped: int


class BulkIn(Strict):
    """Which of the project's invocations to act on (every filter given must match)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: list[Status] | None = Field(
        default=None,
        description="cancel: pending and/or running (default both); rerun: final statuses "
        "(default failed)",
    )
    agent: Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)] | None = None
    trigger_id: Annotated[str, Field(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$")] | None = None
    origin: list[Origin] | None = None
    from_: AwareDatetime | None = Field(
        default=None, alias="from", description="scheduled_for from"
    )
    to: AwareDatetime | None = Field(default=None, description="scheduled_for before")
    limit: Annotated[StrictInt, Field(ge=1, le=10_000)] = Field(
        default=1000, description="the most invocations matched, oldest first"
    )
    dry_run: StrictBool = Field(default=False, description="count, change nothing")


class BulkOut(BaseModel):
    matched: int = Field(description="invocations the filter found (at most limit)")
    changed: int = Field(description="those cancelled or rerun (in a dry run: that would be)")
    dry_run: bool
