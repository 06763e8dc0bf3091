"""What every page shares: the templates, the security headers, the viewer, the CSRF
check on every form, and errors shown as pages with their 4xx status."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tickwork.domain.scopes import OPERATE
from tickwork.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    TickworkError,
    ValidationError,
)
from tickwork.services.context import Context
from tickwork.settings import package_version
from tickwork.ui import timefmt
from tickwork.ui.session import Sessions, Viewer, csrf_matches

HERE = Path(__file__).parent
STATIC = HERE / "static"
PREFIX = "/ui"

# No inline script or style anywhere: every script and style sheet is a file of tickwork's.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# Every form's body is small: a reason, two instants, a key.
MAX_FORM_BYTES = 16 * 1024

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["in_zone"] = timefmt.in_zone
templates.filters["utc"] = timefmt.utc
templates.globals["version"] = package_version()


class SecurityHeaders:
    """The CSP and anti-framing headers on every answer under ``/ui``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"cache-control"]
                static = path.startswith(PREFIX + "/static/")
                headers.append((b"cache-control", b"no-cache" if static else b"no-store"))
                message["headers"] = headers + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


class SignInRequired(Exception):
    """No live session: the page sends the browser to the sign-in form."""


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.ui_sessions
    return sessions


def viewer(request: Request) -> Viewer:
    """The signed-in viewer (a dependency of every page but sign-in)."""
    found = sessions_of(request).viewer(ctx_of(request), request)
    if found is None:
        raise SignInRequired
    return found


def tenant_of(who: Viewer) -> str:
    """The viewer's tenant; the admin has none and sees the scheduler view instead."""
    if who.tenant is None:
        raise PageError(
            403, "the admin sees the scheduler and deployments; sign in with an API key"
        )
    return who.tenant


def require_operate(who: Viewer) -> str:
    tenant = tenant_of(who)
    if not who.can_operate:
        raise Forbidden(
            f"this needs an API key with scope {OPERATE!r}; this key has scope {who.scope!r}",
            required_scope=OPERATE,
            key_scope=who.scope or "",
        )
    return tenant


async def form_of(request: Request) -> dict[str, str]:
    """The posted form (urlencoded), one value per field; 415/413 for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    if not body:
        return {}
    if kind != "application/x-www-form-urlencoded":
        raise PageError(415, "send the form as application/x-www-form-urlencoded")
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "the form is too large")
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "the form could not be read") from None
    return {name: values[-1] for name, values in parsed.items()}


async def checked_form(request: Request, who: Viewer) -> dict[str, str]:
    """The form of a signed-in viewer, after its CSRF token is checked (403 otherwise)."""
    form = await form_of(request)
    if not csrf_matches(who.csrf, form.get("csrf")):
        raise PageError(403, "the form's CSRF token is missing or wrong: reload the page")
    return form


def render(
    request: Request,
    name: str,
    who: Viewer | None,
    code: int = 200,
    **values: Any,
) -> HTMLResponse:
    page = templates.get_template(name).render(request=request, who=who, prefix=PREFIX, **values)
    return HTMLResponse(page, status_code=code)


def back(url: str, notice: str | None = None) -> RedirectResponse:
    """After a form: to the page it came from (303, so a reload does not post again)."""
    if notice:
        url += ("&" if "?" in url else "?") + urlencode({"notice": notice})
    return RedirectResponse(url, status_code=303)


def status_of(exc: TickworkError) -> int:
    if isinstance(exc, ValidationError):
        return 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, PreconditionFailed):
        return 412
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, QuotaExceeded):
        return 429
    return 400


def fail(status: int, message: str) -> NoReturn:
    raise PageError(status, message)


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    who = sessions_of(request).viewer(ctx_of(request), request)
    return render(request, "error.html", who, status, status=status, message=message)


class PageRoute(APIRoute):
    """A page's route: errors become pages (the API's problem+json stays the API's), an
    expired session goes to the sign-in form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return RedirectResponse(PREFIX + "/login", status_code=303)
            except PageError as exc:
                return _error_page(request, exc.status, exc.message)
            except TickworkError as exc:
                return _error_page(request, status_of(exc), str(exc))
            except RequestValidationError as exc:
                where = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()[:5]
                )
                return _error_page(request, 422, f"the address is not valid: {where}")
            except StarletteHTTPException as exc:
                return _error_page(request, exc.status_code, str(exc.detail))

        return page
