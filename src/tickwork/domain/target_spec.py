"""Validation of an agent's target definition (SPEC §6, §13), at API time.

Target types: ``webhook`` (url, secret), ``python`` (handler), ``a2a`` (url of the
agent's JSON-RPC endpoint, secret = the bearer token it needs, ``protocol_version``
"1.0" or "0.3") and ``openai`` (base_url, model, api "responses" or "chat",
instructions, secret = the API key).

A webhook's ``secret`` is a string (stored encrypted when ``TICKWORK_SECRET_KEY`` is set:
see :mod:`tickwork.services.secrets`) or a reference ``{"env": "NAME"}`` to a variable
of the workers' environment, read at call time. Referenced variables must be named
``TICKWORK_TARGET_SECRET_*``: a tenant can then name only variables the operator set for
targets, never the database URL, the secret key or cloud credentials.

The key that signs webhook calls is derived from the secret by :func:`signing_key`: a
secret written ``whsec_<base64>`` (the Standard Webhooks form) is that base64 decoded,
any other secret its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from tickwork.domain.names import check_handler_name
from tickwork.errors import ValidationError

MAX_URL = 2048
MAX_SECRET = 512
TARGET_TYPES = ("webhook", "python", "a2a", "openai")
# Target types whose secret is sent as a credential (a bearer token or API key) rather
# than signing: any string, never decoded.
CREDENTIAL_TYPES = ("a2a", "openai")
A2A_PROTOCOL_VERSIONS = ("1.0", "0.3")
OPENAI_APIS = ("responses", "chat")
MAX_MODEL = 200
MAX_INSTRUCTIONS = 32 * 1024
ENV_SECRET_PREFIX = "TICKWORK_TARGET_SECRET_"
ENV_SECRET_PATTERN = r"^TICKWORK_TARGET_SECRET_[A-Z0-9_]{1,64}$"
_ENV_SECRET = re.compile(ENV_SECRET_PATTERN)
STANDARD_SECRET_PREFIX = "whsec_"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def signing_key(secret: str) -> bytes:
    """The HMAC-SHA256 key a webhook secret signs with (both signature schemes).

    ``whsec_<base64>``: the standard base64 after the prefix, decoded (padding may be
    left out), exactly as Standard Webhooks libraries decode it. Any other secret: its
    UTF-8 bytes. Raises ValueError for a ``whsec_`` secret that is not valid base64 of
    at least one byte.
    """
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret[len(STANDARD_SECRET_PREFIX) :]
    try:
        if not _BASE64.fullmatch(encoded):
            raise ValueError
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(
            f"a secret starting with {STANDARD_SECRET_PREFIX} must be followed by standard "
            "base64 (A-Z, a-z, 0-9, +, /), as Standard Webhooks secrets are"
        ) from None
    if not key:
        raise ValueError(f"a {STANDARD_SECRET_PREFIX} secret must hold at least one byte")
    return key


def check_webhook_url(url: object, field: str = "target.url") -> str:
    """Check a webhook URL; return it unchanged. The one rule, applied when an agent is
    written and again by the webhook target before each call: a URL accepted here is
    one the transport can send to.

    Accepts absolute ``http``/``https`` URLs with a valid host, at most 2048 characters,
    with no credentials, whitespace or control characters; raises
    :class:`tickwork.errors.ValidationError` on ``field``. Whether the host is private is
    decided at call time, when the name is resolved.
    """
    if not isinstance(url, str) or not url:
        raise ValidationError(field, "a webhook URL is required")
    if len(url) > MAX_URL:
        raise ValidationError(field, f"must be at most {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValidationError(field, "must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise ValidationError(field, f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = f" (got {parts.scheme!r})" if parts.scheme else ""
        raise ValidationError(field, f"must be an absolute http or https URL{shown}")
    if "@" in parts.netloc:
        raise ValidationError(
            field, "must not contain credentials; the agent's secret signs every request instead"
        )
    if not host:
        raise ValidationError(field, "must include a host")
    if not _is_valid_host(host):
        raise ValidationError(field, f"has an invalid host {host!r}")
    if port == 0:
        raise ValidationError(field, "has an invalid port 0")
    try:
        # As the transport parses it (aiohttp sends what yarl makes of the URL).
        parsed = URL(url)
    except ValueError as exc:
        raise ValidationError(field, f"is not a valid URL ({exc})") from None
    if not parsed.absolute or parsed.raw_host is None:
        raise ValidationError(field, "is not a valid URL (not an absolute URL with a host)")
    return url


def _is_valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.split(".")
    return len(ascii_host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


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
        secret = check_secret(target.get("secret"), f"{field}.secret")
        return {"type": "webhook", "url": url, "secret": secret}
    if kind == "python":
        extra = set(target) - {"type", "handler"}
        if extra:
            raise ValidationError(f"{field}.{sorted(extra)[0]}", "is not a python target field")
        handler = check_handler_name(target.get("handler"), f"{field}.handler")
        return {"type": "python", "handler": handler}
    if kind == "a2a":
        extra = set(target) - {"type", "url", "secret", "protocol_version"}
        if extra:
            raise ValidationError(f"{field}.{sorted(extra)[0]}", "is not an a2a target field")
        version = target.get("protocol_version") or A2A_PROTOCOL_VERSIONS[0]
        if version not in A2A_PROTOCOL_VERSIONS:
            raise ValidationError(
                f"{field}.protocol_version", f"must be one of {', '.join(A2A_PROTOCOL_VERSIONS)}"
            )
        return {
            "type": "a2a",
            "url": check_webhook_url(target.get("url"), f"{field}.url"),
            "secret": check_secret(target.get("secret"), f"{field}.secret", signing=False),
            "protocol_version": version,
        }
    if kind == "openai":
        extra = set(target) - {"type", "base_url", "model", "api", "instructions", "secret"}
        if extra:
            raise ValidationError(f"{field}.{sorted(extra)[0]}", "is not an openai target field")
        model = target.get("model")
        if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL:
            raise ValidationError(
                f"{field}.model", f"must be a model name of 1-{MAX_MODEL} characters"
            )
        api = target.get("api") or OPENAI_APIS[0]
        if api not in OPENAI_APIS:
            raise ValidationError(f"{field}.api", f"must be one of {', '.join(OPENAI_APIS)}")
        instructions = target.get("instructions")
        if instructions is not None and (
            not isinstance(instructions, str) or len(instructions) > MAX_INSTRUCTIONS
        ):
            raise ValidationError(
                f"{field}.instructions",
                f"must be a string of at most {MAX_INSTRUCTIONS} characters",
            )
        return {
            "type": "openai",
            "base_url": check_webhook_url(target.get("base_url"), f"{field}.base_url"),
            "model": model,
            "api": api,
            "instructions": instructions or None,
            "secret": check_secret(target.get("secret"), f"{field}.secret", signing=False),
        }
    raise ValidationError(f"{field}.type", f"must be one of {', '.join(TARGET_TYPES)}")


KEEP_SECRET: dict[str, Any] = {"keep": True}
"""The secret form ``GET /definition`` exports for a stored secret it never shows: pushed
back, it keeps the secret stored for the agent (see tickwork.services.secrets.seal)."""


def check_secret(
    secret: object, field: str = "target.secret", *, signing: bool = True
) -> str | dict[str, str] | dict[str, Any] | None:
    """A secret as written by a client: None, a string, ``{"env": "NAME"}``, or
    ``{"keep": true}`` (the secret the agent has now). ``signing``: the secret signs (a
    webhook's), so a ``whsec_`` one must decode."""
    if secret is None:
        return None
    if isinstance(secret, dict) and set(secret) == {"keep"}:
        if secret["keep"] is not True:
            raise ValidationError(f"{field}.keep", "must be true: it keeps the stored secret")
        return dict(KEEP_SECRET)
    if isinstance(secret, str):
        if not 1 <= len(secret) <= MAX_SECRET:
            raise ValidationError(field, f"must be a string of 1-{MAX_SECRET} characters")
        if not signing and any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
            # Sent as a header value: control characters would break the request.
            raise ValidationError(field, "must not contain control characters")
        if signing:
            try:
                signing_key(secret)
            except ValueError as exc:
                raise ValidationError(field, str(exc)) from None
        return secret
    if isinstance(secret, dict) and set(secret) == {"env"}:
        name = secret["env"]
        if not isinstance(name, str) or not _ENV_SECRET.fullmatch(name):
            raise ValidationError(
                f"{field}.env",
                f"must name an environment variable {ENV_SECRET_PREFIX}<NAME>, NAME being "
                "1-64 upper-case letters, digits or '_'",
            )
        return {"env": name}
    raise ValidationError(
        field,
        f'must be a string of 1-{MAX_SECRET} characters, {{"env": "{ENV_SECRET_PREFIX}…"}} '
        'or {"keep": true}',
    )


def env_secret_name(secret: object) -> str | None:
    """The variable an ``{"env": "NAME"}`` secret refers to, else None."""
    if isinstance(secret, dict) and isinstance(secret.get("env"), str):
        return str(secret["env"])
    return None


def public_target(target: dict[str, Any]) -> dict[str, Any]:
    """The target as shown to API clients: secrets never leave the server. A reference
    to an environment variable is shown, since it names the secret without holding it
    (and a definition read back can be pushed again unchanged)."""
    shown = {k: v for k, v in target.items() if k != "secret"}
    if target.get("type") in ("webhook", *CREDENTIAL_TYPES):
        secret = target.get("secret")
        shown["has_secret"] = bool(secret)
        name = env_secret_name(secret)
        if name is not None:
            shown["secret"] = {"env": name}
    return shown
