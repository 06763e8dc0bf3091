"""Settings: one validated model, read from ``TICKWORK_*`` environment variables (flags
override them), on pydantic-settings.

:class:`Settings` is a plain frozen model: building one in code (tests, benchmarks) reads
no environment. :meth:`Settings.from_env` reads the environment, and a bad value stops
there with one :class:`tickwork.errors.ValidationError` naming the variable and what it
accepts. Secrets (the admin token, the deploy secret, the secret keys, a password in the
database URL) never appear in the model's repr.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tickwork.domain.fairshare import default_tenant_cap
from tickwork.errors import ValidationError

DEFAULT_DATABASE_URL = "sqlite:///./tickwork.db"
ENV_PREFIX = "TICKWORK_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def parse_allowed_networks(
    raw: str, name: str = "TICKWORK_ALLOWED_TARGET_NETWORKS"
) -> tuple[str, ...]:
    """The entries of ``TICKWORK_ALLOWED_TARGET_NETWORKS``, checked and canonical: ``*``,
    CIDRs (a bare address is its /32 or /128) and lower-case IDNA host names."""
    entries: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item == "*":
            entry = "*"
        elif "/" in item or ":" in item or re.fullmatch(r"[0-9.]+", item):
            try:
                entry = str(ipaddress.ip_network(item.removeprefix("[").removesuffix("]")))
            except ValueError as exc:
                raise ValidationError(name, f"{item!r} is not a valid network ({exc})") from None
        else:
            try:
                entry = item.rstrip(".").encode("idna").decode("ascii").lower()
            except UnicodeError:
                entry = ""
            labels = entry.split(".")
            if not entry or len(entry) > 253 or not all(_HOST_LABEL.fullmatch(x) for x in labels):
                raise ValidationError(
                    name, f"{item!r} is neither a network (CIDR), a host name nor '*'"
                )
        if entry not in entries:
            entries.append(entry)
    return tuple(entries)


def parse_secret_keys(raw: str, name: str = "TICKWORK_SECRET_KEY") -> tuple[str, ...]:
    """The Fernet keys of ``TICKWORK_SECRET_KEY`` (comma-separated, the first encrypts).
    A bad entry is named by its position: the message never repeats key material."""
    keys: list[str] = []
    for position, key in enumerate((part.strip() for part in raw.split(",")), start=1):
        if not key:
            continue
        try:
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
        except (binascii.Error, UnicodeError, ValueError):
            valid = False
        if not valid:
            raise ValidationError(
                name,
                f"entry {position} is not a Fernet key (44 URL-safe base64 characters); "
                "generate one with `tickwork secrets generate-key`",
            )
        keys.append(key)
    return tuple(keys)


def parse_proxies(raw: str, name: str = "TICKWORK_TRUSTED_PROXIES") -> str:
    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValidationError(
                name, f"{item!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
        # As uvicorn reads it: a single address plain, a network in canonical form.
        single = network.num_addresses == 1 and "/" not in item
        found.append(str(network.network_address) if single else str(network))
    return ",".join(found)


# The generous defaults of SPEC §9: a single-tenant installation never meets them.
QUOTA_DEFAULTS = {
    "projects": 10_000,
    "agents": 100_000,
    "triggers": 100_000,
    "api_keys": 10_000,
    "slots_per_minute": 100_000,
}

Quota = Annotated[int, Field(ge=0, le=1_000_000_000)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    deployment_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        default_factory=lambda: "dep_" + secrets.token_hex(6)
    )
    version: str = Field(default_factory=lambda: package_version())
    # Workers.
    worker_concurrency: Annotated[int, Field(ge=0, le=10_000)] = 10
    worker_lease_seconds: Annotated[float, Field(ge=2, le=3600)] = 30.0
    worker_poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    # Scheduler.
    scheduler_max_sleep_seconds: Annotated[float, Field(ge=0.05, le=3600)] = 30.0
    scheduler_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 500
    scheduler_lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 10.0
    # Targets.
    # The older spelling of TICKWORK_ALLOWED_TARGET_NETWORKS=*.
    allow_private_targets: bool = False
    # Checked entries: "*", CIDRs, host names (parse_allowed_networks).
    allowed_target_networks: tuple[str, ...] = ()
    webhook_max_response_bytes: Annotated[int, Field(ge=0, le=64 * 1024 * 1024)] = 64 * 1024
    # The most an A2A agent or model server may answer to one request (SPEC §13).
    agent_max_response_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    # Containment (SPEC §9).
    max_message_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # The most attempts one tenant runs at once in one process (None: the default share).
    tenant_concurrency: Annotated[int, Field(ge=1, le=10_000)] | None = None
    # Security.
    # Fernet keys for target secrets at rest: the first encrypts, all decrypt.
    secret_keys: tuple[str, ...] = Field(default=(), repr=False)
    deploy_secret: SecretStr | None = None
    admin_token: SecretStr | None = None
    # The web UI's session cookies are signed with this (unset: derived from the first
    # secret key, else a random one per process, so sessions end when it restarts).
    session_secret: SecretStr | None = None
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 8.0
    # Failed authentication, per client address: after this many failures within the
    # window, the address is refused (429) until the window ends; 0 turns it off.
    auth_failure_limit: Annotated[int, Field(ge=0, le=1_000_000)] = 20
    auth_failure_window_seconds: Annotated[float, Field(ge=1, le=86400)] = 60.0
    auth_failure_max_clients: Annotated[int, Field(ge=1, le=10_000_000)] = 50_000
    # Proxies whose X-Forwarded-For names the client (addresses or CIDRs, comma-separated;
    # empty: none, the peer address is the client).
    trusted_proxies: str = ""
    # Per-tenant quota defaults (each overridable per tenant through the admin API).
    quota_projects: Quota = QUOTA_DEFAULTS["projects"]
    quota_agents: Quota = QUOTA_DEFAULTS["agents"]
    quota_triggers: Quota = QUOTA_DEFAULTS["triggers"]
    quota_api_keys: Quota = QUOTA_DEFAULTS["api_keys"]
    quota_slots_per_minute: Quota = QUOTA_DEFAULTS["slots_per_minute"]
    # Retention of invocation history and audit events (SPEC §11), each overridable per
    # project: finished invocations older than the days, or beyond the newest N of their
    # trigger, are deleted by the active scheduler, a bounded batch at a time.
    history_retention_days: Annotated[int, Field(ge=1, le=36_500)] = 30
    history_max_per_trigger: Annotated[int, Field(ge=1, le=100_000_000)] = 10_000
    retention_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 500
    # How long the pruner rests once a pass found nothing more to delete.
    retention_interval_seconds: Annotated[float, Field(ge=0.01, le=86_400)] = 60.0
    # Health and notifications (SPEC §11).
    # A due slot or pending invocation this many seconds behind makes its trigger late.
    late_grace: Annotated[float, Field(ge=1, le=7 * 86400)] = 300.0
    # Pause a trigger after this many consecutive failed invocations (0: never); a
    # trigger's own pause_after_failures overrides it.
    pause_after_failures: Annotated[int, Field(ge=0, le=10_000)] = 0
    # Deliveries: tries per event and target, the first retry's delay (doubling, capped
    # at the maximum delay), and how often the sender looks for due deliveries.
    notification_max_attempts: Annotated[int, Field(ge=1, le=1000)] = 20
    notification_retry_seconds: Annotated[float, Field(ge=0.01, le=3600)] = 5.0
    notification_max_retry_seconds: Annotated[float, Field(ge=0.01, le=86400)] = 3600.0
    notification_timeout_seconds: Annotated[float, Field(ge=0.1, le=300)] = 10.0
    notification_poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    # Operations.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    app_module: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from the environment, ``overrides`` (flags; None = not given) winning.

        Raises :class:`tickwork.errors.ValidationError` naming the variable at fault."""
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            read = _FromEnv(**given)
        except PydanticValidationError as exc:
            raise _named(exc, given) from None
        except ValidationError:
            raise
        return cls(**{name: getattr(read, name) for name in cls.model_fields})

    @property
    def tenant_cap(self) -> int:
        """The most attempts one tenant runs at once in this process (SPEC §9)."""
        if self.tenant_concurrency is not None:
            return self.tenant_concurrency
        return default_tenant_cap(self.worker_concurrency)

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, validated like the original."""
        return type(self)(**{**{n: getattr(self, n) for n in type(self).model_fields}, **changes})

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (safe_url(value) if name == "database_url" else value)


class _FromEnv(BaseSettings, Settings):
    """The same fields, read from ``TICKWORK_<FIELD>`` (an empty variable is unset)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # Comma-separated lists, parsed and checked by tickwork rather than read as JSON.
    allowed_target_networks: Annotated[tuple[str, ...], NoDecode] = ()
    secret_keys: Annotated[tuple[str, ...], NoDecode] = Field(default=(), repr=False)
    # Read from TICKWORK_SECRET_KEY (singular: one key, or a list while rotating).
    secret_key: Annotated[str, Field(repr=False)] = ""
    app: str | None = None

    @field_validator("allowed_target_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        return parse_allowed_networks(value) if isinstance(value, str) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        return parse_proxies(value) if isinstance(value, str) else value

    def model_post_init(self, context: Any) -> None:
        if self.secret_key and not self.secret_keys:
            object.__setattr__(self, "secret_keys", parse_secret_keys(self.secret_key))
        if self.app and not self.app_module:
            object.__setattr__(self, "app_module", self.app)


_ACCEPTS = {
    "bool_parsing": "1/0, true/false, yes/no or on/off",
    "int_parsing": "a whole number",
    "float_parsing": "a number",
    "literal_error": "one of the listed values",
}


def _named(exc: PydanticValidationError, given: dict[str, Any]) -> ValidationError:
    """The first error of ``exc`` as the variable it came from and what it accepts."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "settings"
    variable = field if field in given else ENV_PREFIX + _ENV_NAMES.get(field, field).upper()
    shown = error.get("input")
    got = "" if isinstance(shown, dict) or field in _SECRET_FIELDS else f", got {shown!r}"
    message = str(error["msg"])
    if error["type"] == "literal_error":
        message = message.replace("Input should be", "expected")
    elif error["type"] in ("less_than_equal", "greater_than_equal", "greater_than"):
        message = message.replace("Input should be", "expected a value")
    elif error["type"] in _ACCEPTS:
        message = f"expected {_ACCEPTS[error['type']]}"
    return ValidationError(variable, message + got)


# Fields whose environment variable is not TICKWORK_<FIELD>.
_ENV_NAMES = {"app_module": "app", "secret_keys": "secret_key"}
_SECRET_FIELDS = frozenset(
    {"deploy_secret", "admin_token", "secret_keys", "secret_key", "session_secret"}
)


def safe_url(url: str) -> str:
    """A database URL with its password masked."""
    from tickwork.storage.urls import safe_url as masked

    return masked(url)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tickwork")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "dev"
