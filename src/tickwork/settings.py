"""Settings, from ``TICKWORK_*`` environment variables (flags override them)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from tickwork.domain.fairshare import default_tenant_cap
from tickwork.errors import ValidationError

DEFAULT_DATABASE_URL = "sqlite:///./tickwork.db"


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValidationError(name, f"expected 1/0, true/false, yes/no or on/off, got {raw!r}")


def _env_number(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(name, f"expected a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ValidationError(name, f"{raw} is out of range {low:g}-{high:g}")
    return value


def _env_int_or_none(name: str, low: int, high: int) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = _env_number(name, 0, low, high)
    if value != int(value):
        raise ValidationError(name, f"expected a whole number, got {raw!r}")
    return int(value)


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


def _env_proxies(name: str) -> str:
    raw = os.environ.get(name) or ""
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


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    deployment_id: str = field(default_factory=lambda: "dep_" + secrets.token_hex(6))
    version: str = "dev"
    # Workers.
    worker_concurrency: int = 10
    worker_lease_seconds: float = 30.0
    worker_poll_seconds: float = 5.0
    # Scheduler.
    scheduler_max_sleep_seconds: float = 30.0
    scheduler_batch_size: int = 500
    scheduler_lease_seconds: float = 10.0
    # Targets.
    # The older spelling of TICKWORK_ALLOWED_TARGET_NETWORKS=*.
    allow_private_targets: bool = False
    # Checked entries: "*", CIDRs, host names (parse_allowed_networks).
    allowed_target_networks: tuple[str, ...] = ()
    webhook_max_response_bytes: int = 64 * 1024
    # Containment (SPEC §9).
    max_message_bytes: int = 1024 * 1024
    # The most attempts one tenant runs at once in one process (None: the default share).
    tenant_concurrency: int | None = None
    # Security.
    # Fernet keys for target secrets at rest: the first encrypts, all decrypt.
    secret_keys: tuple[str, ...] = ()
    deploy_secret: str | None = None
    admin_token: str | None = None
    # Failed authentication, per client address: after this many failures within the
    # window, the address is refused (429) until the window ends; 0 turns it off.
    auth_failure_limit: int = 20
    auth_failure_window_seconds: float = 60.0
    auth_failure_max_clients: int = 50_000
    # Proxies whose X-Forwarded-For names the client (addresses or CIDRs, comma-separated;
    # empty: none, the peer address is the client).
    trusted_proxies: str = ""
    # Per-tenant quota defaults (each overridable per tenant through the admin API).
    quota_projects: int = QUOTA_DEFAULTS["projects"]
    quota_agents: int = QUOTA_DEFAULTS["agents"]
    quota_triggers: int = QUOTA_DEFAULTS["triggers"]
    quota_api_keys: int = QUOTA_DEFAULTS["api_keys"]
    quota_slots_per_minute: int = QUOTA_DEFAULTS["slots_per_minute"]
    # Operations.
    log_format: str = "text"
    log_level: str = "INFO"
    app_module: str | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        values: dict[str, Any] = {
            "database_url": env.get("TICKWORK_DATABASE_URL") or DEFAULT_DATABASE_URL,
            "host": env.get("TICKWORK_HOST") or "127.0.0.1",
            "port": int(_env_number("TICKWORK_PORT", 8080, 0, 65535)),
            "version": env.get("TICKWORK_VERSION") or package_version(),
            "worker_concurrency": int(_env_number("TICKWORK_WORKER_CONCURRENCY", 10, 0, 10_000)),
            "worker_lease_seconds": _env_number("TICKWORK_WORKER_LEASE_SECONDS", 30, 2, 3600),
            "scheduler_max_sleep_seconds": _env_number(
                "TICKWORK_SCHEDULER_MAX_SLEEP_SECONDS", 30, 0.05, 3600
            ),
            "scheduler_batch_size": int(
                _env_number("TICKWORK_SCHEDULER_BATCH_SIZE", 500, 1, 100_000)
            ),
            "scheduler_lease_seconds": _env_number("TICKWORK_SCHEDULER_LEASE_SECONDS", 10, 1, 3600),
            "allow_private_targets": _env_bool("TICKWORK_ALLOW_PRIVATE_TARGETS", False),
            "tenant_concurrency": _env_int_or_none("TICKWORK_TENANT_CONCURRENCY", 1, 10_000),
            "max_message_bytes": int(
                _env_number("TICKWORK_MAX_MESSAGE_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024)
            ),
            "allowed_target_networks": parse_allowed_networks(
                env.get("TICKWORK_ALLOWED_TARGET_NETWORKS") or ""
            ),
            "secret_keys": parse_secret_keys(env.get("TICKWORK_SECRET_KEY") or ""),
            "auth_failure_limit": int(_env_number("TICKWORK_AUTH_FAILURE_LIMIT", 20, 0, 1e6)),
            "auth_failure_window_seconds": _env_number(
                "TICKWORK_AUTH_FAILURE_WINDOW_SECONDS", 60, 1, 86400
            ),
            "auth_failure_max_clients": int(
                _env_number("TICKWORK_AUTH_FAILURE_MAX_CLIENTS", 50_000, 1, 10_000_000)
            ),
            "trusted_proxies": _env_proxies("TICKWORK_TRUSTED_PROXIES"),
            **{
                f"quota_{name}": int(_env_number(f"TICKWORK_QUOTA_{name.upper()}", default, 0, 1e9))
                for name, default in QUOTA_DEFAULTS.items()
            },
            "deploy_secret": env.get("TICKWORK_DEPLOY_SECRET") or None,
            "admin_token": env.get("TICKWORK_ADMIN_TOKEN") or None,
            "log_format": env.get("TICKWORK_LOG_FORMAT") or "text",
            "log_level": (env.get("TICKWORK_LOG_LEVEL") or "INFO").upper(),
            "app_module": env.get("TICKWORK_APP") or None,
        }
        if env.get("TICKWORK_DEPLOYMENT_ID"):
            values["deployment_id"] = env["TICKWORK_DEPLOYMENT_ID"]
        if values["log_format"] not in ("text", "json"):
            raise ValidationError("TICKWORK_LOG_FORMAT", "expected 'text' or 'json'")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def tenant_cap(self) -> int:
        """The most attempts one tenant runs at once in this process (SPEC §9)."""
        if self.tenant_concurrency is not None:
            return self.tenant_concurrency
        return default_tenant_cap(self.worker_concurrency)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tickwork")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "dev"
