"""Validation of an agent's target definition (SPEC §6), at API time."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tickwork.domain.names import check_handler_name
from tickwork.errors import ValidationError

MAX_URL = 2048
MAX_SECRET = 512
TARGET_TYPES = ("webhook", "python")


def check_webhook_url(url: object, field: str = "target.url") -> str:
    if not isinstance(url, str) or not url:
        raise ValidationError(field, "must be an http or https URL")
    if len(url) > MAX_URL:
        raise ValidationError(field, f"is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValidationError(field, f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(field, "must use http or https")
    if not parts.hostname:
        raise ValidationError(field, "has no host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(field, "must not carry credentials; use the agent's secret")
    if any(c.isspace() for c in url):
        raise ValidationError(field, "must not contain whitespace")
    return url


def normalise_target(target: object, field: str = "target") -> dict[str, Any]:
    """Check a target definition and return it in canonical form."""
    if not isinstance(target, dict):
        raise ValidationError(field, "must be an object with a 'type'")
    kind = target.get("type")
    if kind == "webhook":
        extra = set(target) - {"type", "url", "secret"}
        if extra:
            raise ValidationError(f"{field}.{sorted(extra)[0]}", "is not a webhook target field")
        url = check_webhook_url(target.get("url"), f"{field}.url")
        secret = target.get("secret")
        if secret is not None and (
            not isinstance(secret, str) or not 1 <= len(secret) <= MAX_SECRET
        ):
            raise ValidationError(
                f"{field}.secret", f"must be a string of 1-{MAX_SECRET} characters"
            )
        return {"type": "webhook", "url": url, "secret": secret}
    if kind == "python":
        extra = set(target) - {"type", "handler"}
        if extra:
            raise ValidationError(f"{field}.{sorted(extra)[0]}", "is not a python target field")
        handler = check_handler_name(target.get("handler"), f"{field}.handler")
        return {"type": "python", "handler": handler}
    raise ValidationError(f"{field}.type", f"must be one of {', '.join(TARGET_TYPES)}")


def public_target(target: dict[str, Any]) -> dict[str, Any]:
    """The target as shown to API clients: secrets never leave the server."""
    shown = {k: v for k, v in target.items() if k != "secret"}
    if target.get("type") == "webhook":
        shown["has_secret"] = bool(target.get("secret"))
    return shown
