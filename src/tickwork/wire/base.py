"""What every wire model shares: strict input, storable JSON values, cursor pages and
problem answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tickwork.domain.names import MAX_DESCRIPTION, MAX_NAME

# Deeper JSON than this cannot be written back out (pydantic's serializer stops near 255
# levels), and no real payload needs it.
MAX_JSON_DEPTH = 64


def check_storable(value: Any) -> None:
    """Reject what JSON parsing lets through but tickwork cannot store or send back:
    NUL characters (PostgreSQL text and JSONB refuse them), unpaired surrogates (not
    encodable as UTF-8), NaN and infinities (not JSON; ``1e400`` parses as infinity),
    nesting deeper than MAX_JSON_DEPTH, and instants that overflow when converted to
    UTC. Raises ValueError, which pydantic reports as a 422 naming the field."""
    stack = [(value, 0)]
    while stack:  # iterative: nesting must not exhaust the Python stack
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("must not contain NUL (\\u0000) characters")
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValueError("must not contain unpaired surrogates") from None
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("must not contain NaN or infinite numbers")
        elif isinstance(item, datetime):
            try:
                item.astimezone(UTC)
            except OverflowError:
                raise ValueError("is out of the supported range of instants") from None
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        check_storable(value)
        return value


FROM_RECORD = ConfigDict(from_attributes=True)
"""The configuration of an answer read from a record of the store or a service
(``Model.model_validate(record)``): each field from the attribute of its name, or of the
name its ``validation_alias`` gives; a value the answer derives is given beside the
record (``tickwork.api.answers.Overlay``)."""

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="pass as ?cursor= for the next page; null on the last page"
    )


class ProblemError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[ProblemError] | None = None
    # 403 (a key's scope): what the route needs and what the key has.
    required_scope: str | None = None
    key_scope: str | None = None
    # 429 quota-exceeded: which quota, its limit, the use before the request, and what
    # the request would add (the firing rate in slots per minute).
    quota: str | None = None
    limit: float | None = None
    used: float | None = None
    requested: float | None = None
