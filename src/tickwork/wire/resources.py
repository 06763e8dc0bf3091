"""Projects, refs, agents and their targets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

from tickwork.domain.names import HANDLER_PATTERN
from tickwork.domain.target_spec import (
    ENV_SECRET_PATTERN,
    MAX_INSTRUCTIONS,
    MAX_MODEL,
    MAX_SECRET,
    MAX_URL,
    check_secret,
)
from tickwork.errors import ValidationError as DomainValidationError
from tickwork.wire.base import FROM_RECORD, Description, Name, Strict


class ProjectIn(Strict):
    name: Name | None = None
    description: Description | None = None


class ProjectOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    paused: bool = Field(
        default=False, description="paused by an operator: none of its triggers dispatches a slot"
    )
    paused_reason: str | None = None
    paused_by: str | None = None
    paused_at: datetime | None = None
    paused_until: datetime | None = Field(default=None, description="the pause ends by itself then")


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


def _credential(value: Any) -> Any:
    try:
        return check_secret(value, signing=False)
    except DomainValidationError as exc:
        raise PydanticCustomError("invalid_secret", exc.message) from None


Credential = Annotated[
    str | dict[str, Any] | None,
    PlainValidator(_credential, json_schema_input_type=_SECRET_FORMS),
    PlainSerializer(lambda value: _secret_form(value), return_type=_SECRET_FORMS),
]


URL_PATTERN = r"^https?://\S+$"
HttpUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL, pattern=URL_PATTERN)]


class WebhookTargetIn(Strict):
    type: Literal["webhook"]
    url: HttpUrl
    secret: Secret = None


class PythonTargetIn(Strict):
    type: Literal["python"]
    handler: Annotated[str, Field(pattern=HANDLER_PATTERN)]


class A2ATargetIn(Strict):
    """An A2A agent, spoken to over JSON-RPC with the official a2a-sdk client."""

    type: Literal["a2a"]
    url: HttpUrl = Field(description="the agent's JSON-RPC endpoint")
    secret: Credential = Field(
        default=None, description="sent as 'Authorization: Bearer <secret>' (a token or API key)"
    )
    protocol_version: Literal["1.0", "0.3"] | None = Field(
        default=None,
        description="the A2A protocol version the agent speaks: 1.0 (SendMessage, GetTask, "
        "CancelTask; the default) or 0.3 (message/send, tasks/get, tasks/cancel)",
    )


class OpenAITargetIn(Strict):
    """An OpenAI-compatible server (OpenAI, vLLM, Ollama, LiteLLM, ...), spoken to with
    the official openai client."""

    type: Literal["openai"]
    base_url: HttpUrl = Field(description="the API's base URL, e.g. https://api.openai.com/v1")
    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL)]
    api: Literal["responses", "chat"] | None = Field(
        default=None,
        description="responses (the Responses API; the default) or chat (Chat Completions)",
    )
    instructions: Annotated[str, Field(max_length=MAX_INSTRUCTIONS)] | None = Field(
        default=None, description="the system instructions sent with every run"
    )
    secret: Credential = Field(default=None, description="the API key, sent as a bearer token")


TargetIn = Annotated[
    WebhookTargetIn | PythonTargetIn | A2ATargetIn | OpenAITargetIn, Field(discriminator="type")
]


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
        default=None,
        exclude_if=lambda value: value is None,
        description="shown only when the secret is a reference to a variable of the "
        "workers' environment (which names the secret without holding it)",
    )


class PythonTargetOut(BaseModel):
    type: Literal["python"]
    handler: str


def _absent(value: Any) -> bool:
    return value is None


class A2ATargetOut(BaseModel):
    """An A2A target as shown: its secret never is, only whether it has one."""

    type: Literal["a2a"]
    url: str
    protocol_version: Literal["1.0", "0.3"]
    has_secret: bool
    secret: SecretEnvRef | None = Field(
        default=None,
        exclude_if=_absent,
        description="shown only when the secret is a reference to a variable of the "
        "workers' environment",
    )


class OpenAITargetOut(BaseModel):
    """An OpenAI-compatible target as shown: its API key never is."""

    type: Literal["openai"]
    base_url: str
    model: str
    api: Literal["responses", "chat"]
    instructions: str | None
    has_secret: bool
    secret: SecretEnvRef | None = Field(
        default=None,
        exclude_if=_absent,
        description="shown only when the secret is a reference to a variable of the "
        "workers' environment",
    )


TargetOut = Annotated[
    WebhookTargetOut | PythonTargetOut | A2ATargetOut | OpenAITargetOut,
    Field(discriminator="type"),
]


class AgentOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    ref: str
    name: str
    target: TargetOut
    max_concurrency: int | None
    created_at: datetime
    updated_at: datetime


class RefOut(BaseModel):
    model_config = FROM_RECORD

    name: str
    revision: int
    created_at: datetime
    updated_at: datetime
