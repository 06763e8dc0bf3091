"""The web UI's session: a signed cookie naming who signed in, with an expiry and the
CSRF token every form carries.

The cookie holds no key: only the digest of the API key the user signed in with
(looked up again on every request, so a revoked key ends its sessions at once), or the
mark of an admin sign-in. It is signed (itsdangerous) with a timestamp, HttpOnly,
SameSite=Strict and ``Secure`` when the request came over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from tickwork.domain.scopes import OPERATE, covers
from tickwork.services import tenants
from tickwork.services.context import Context
from tickwork.settings import Settings

COOKIE = "tickwork_session"
LOGIN_COOKIE = "tickwork_login"  # the sign-in form's CSRF token, before any session
_SALT = "tickwork.ui.session"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a tenant's key (its scope decides the buttons) or the admin."""

    tenant: str | None
    key_id: str | None
    scope: str | None
    admin: bool
    csrf: str

    @property
    def can_operate(self) -> bool:
        return self.scope is not None and covers(self.scope, OPERATE)


def _secret(settings: Settings, fallback: str) -> str:
    if settings.session_secret is not None and settings.session_secret.get_secret_value():
        return settings.session_secret.get_secret_value()
    if settings.secret_keys:
        # A key of its own, derived: the Fernet key itself never signs anything.
        return hmac.new(settings.secret_keys[0].encode(), _SALT.encode(), "sha256").hexdigest()
    return fallback


class Sessions:
    """Makes and reads the session cookie with the settings' secret and lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.max_age = int(settings.session_hours * 3600)
        self._serializer = URLSafeTimedSerializer(
            _secret(settings, secrets.token_urlsafe(32)), salt=_SALT
        )
        self._admin_token = (
            settings.admin_token.get_secret_value() if settings.admin_token is not None else ""
        )

    def is_admin_token(self, given: str) -> bool:
        if not self._admin_token:
            return False
        digest = hashlib.sha256
        return hmac.compare_digest(
            digest(given.encode()).digest(), digest(self._admin_token.encode()).digest()
        )

    def start(self, response: Response, request: Request, *, digest: str | None) -> None:
        """Sign in: ``digest`` of the API key, or None for the admin."""
        data = {"k": digest, "admin": digest is None, "csrf": secrets.token_urlsafe(24)}
        value = self._serializer.dumps(data)
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/ui/login")

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")

    def viewer(self, ctx: Context, request: Request) -> Viewer | None:
        """The signed-in viewer, or None: no cookie, a bad signature, an expired
        session, a revoked key, or admin sign-in turned off since."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        if data.get("admin") is True:
            if not self._admin_token:
                return None
            return Viewer(None, None, None, True, data["csrf"])
        digest = data.get("k")
        if not isinstance(digest, str):
            return None
        key = tenants.authenticate_digest(ctx, digest)
        if key is None:
            return None
        return Viewer(key.tenant_id, key.id, key.scope, False, data["csrf"])


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def login_token(request: Request) -> str:
    """The sign-in form's token: the one in its cookie, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_login_token(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
