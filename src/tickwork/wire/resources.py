"""Projects, refs, agents and their targets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

from tickwork.domain.names import HANDLER_PATTERN
from tickwork.domain.target_spec import ENV_SECRET_PATTERN, MAX_SECRET, MAX_URL, check_secret
from tickwork.errors import ValidationError as DomainValidationError
from tickwork.wire.base import Description, Name, Strict


class ProjectIn(Strict):
    name: Name | None = None
    description: Description | None = None


class ProjectOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class SecretEnvRef(Strict):
    """A secret read from the workers' environment at call time."""

    env: Annotated[str, Field(pattern=ENV_SECRET_PATTERN)]


class SecretKeep(Strict):
    """The secret the agent has now, unchanged: what ``GET /definition`` exports in
    place of a secret it never shows, so that the export can be pushed back as it is.
    On an agent without a stored secret it is refused."""

    keep: Literal[True]


def _secret(value: Any) -> Any:
    # One check, the domain's, so both forms fail with one clear message at target.secret
    # (a plain union would report each member's failure under its own name).
    try:
        return check_secret(value)
    except DomainValidationError as exc:
        raise PydanticCustomError("invalid_secret", exc.message) from None


_SECRET_FORMS = (
    Annotated[str, Field(min_length=1, max_length=MAX_SECRET)] | SecretEnvRef | SecretKeep | None
)
Secret = Annotated[
    str | dict[str, Any] | None,
    PlainValidator(_secret, json_schema_input_type=_SECRET_FORMS),
    # Written back out (GET /definition) in the forms it is read in, so that the schema
    # is one for requests and answers alike.
    PlainSerializer(lambda value: _secret_form(value), return_type=_SECRET_FORMS),
]


def _secret_form(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"env"}:
        return SecretEnvRef.model_validate(value)
    if isinstance(value, dict) and set(value) == {"keep"}:
        return SecretKeep.model_validate(value)
    return value


URL_PATTERN = r"^https?://\S+$"


class WebhookTargetIn(Strict):
    type: Literal["webhook"]
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL, pattern=URL_PATTERN)]
    secret: Secret = None


class PythonTargetIn(Strict):
    type: Literal["python"]
    handler: Annotated[str, Field(pattern=HANDLER_PATTERN)]


TargetIn = Annotated[WebhookTargetIn | PythonTargetIn, Field(discriminator="type")]


MaxConcurrency = Annotated[
    int,
    Field(
        ge=1,
        le=10_000,
        description="the most attempts of this agent that run at once, across all workers "
        "(default: no cap beyond the tenant's fair share)",
    ),
]


class AgentIn(Strict):
    name: Name | None = None
    target: TargetIn
    max_concurrency: MaxConcurrency | None = None


class WebhookTargetOut(BaseModel):
    """A webhook target as shown: its secret never is, only whether it has one."""

    type: Literal["webhook"]
    url: str
    has_secret: bool
    secret: SecretEnvRef | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="shown only when the secret is a reference to a variable of the "
        "workers' environment (which names the secret without holding it)",
    )


class PythonTargetOut(BaseModel):
    type: Literal["python"]
    handler: str


TargetOut = Annotated[WebhookTargetOut | PythonTargetOut, Field(discriminator="type")]


class AgentOut(BaseModel):
    id: str
    ref: str
    name: str
    target: TargetOut
    max_concurrency: int | None
    created_at: datetime
    updated_at: datetime


class RefOut(BaseModel):
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime
