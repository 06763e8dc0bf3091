"""Every error is ``application/problem+json`` (RFC 9457) with a stable ``type``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickwork.errors import Conflict, NotFound, ValidationError
from tickwork.logging import get_logger
from tickwork.services.triggers import PayloadTooLarge

log = get_logger("tickwork.api")

MEDIA_TYPE = "application/problem+json"
TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str | None = None,
    errors: Sequence[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:tickwork:problem:{TYPES.get(status, 'error')}",
        "title": TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_ABSENT = object()


def _child(value: Any, part: Any) -> Any:
    if isinstance(value, dict):
        return value.get(part, _ABSENT)
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return value[part]
    return _ABSENT


def _field(loc: Sequence[Any], body: Any = _ABSENT) -> str:
    """The field as the client wrote it: ``target.url``, ``payload``, ``query.limit``."""
    parts = list(loc)
    where: Any = _ABSENT
    if parts and parts[0] == "body":
        parts = parts[1:]
        where = body
    out = ""
    for part in parts:
        # A tagged union (an agent's target) puts the tag into the location
        # (target.webhook.url); the client never wrote that segment, so drop it.
        if (
            isinstance(where, dict)
            and isinstance(part, str)
            and part not in where
            and where.get("type") == part
        ):
            continue
        where = _child(where, part)
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> JSONResponse:
        status = 413 if isinstance(exc, PayloadTooLarge) else 422
        return problem(status, str(exc), [{"field": exc.field, "message": exc.message}])

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            message = str(err.get("msg", "invalid"))
            if err.get("type") == "json_invalid":
                return problem(400, "the request body is not valid JSON")
            errors.append({"field": _field(err.get("loc", ()), exc.body), "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error",
            method=request.method,
            path=request.url.path,
            error=f"{type(exc).__name__}: {exc}",
        )
        return problem(500, "an internal error occurred; details are in the server log")
