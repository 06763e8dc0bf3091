"""Every error is ``application/problem+json`` (RFC 9457) with a stable ``type``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickwork.api.access_log import route_of
from tickwork.domain.limits import DAY_PATTERN, RUN_AS_PATTERN
from tickwork.domain.names import HANDLER_PATTERN, REF_PATTERN, SLUG_PATTERN
from tickwork.domain.target_spec import ENV_SECRET_PATTERN
from tickwork.domain.trigger_spec import PayloadTooLarge
from tickwork.errors import (
    Conflict,
    Forbidden,
    NameConflict,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    ValidationError,
    ValidationErrors,
)
from tickwork.logging import get_logger, mark_logged
from tickwork.services.idempotency import KEY_PATTERN, InProgress
from tickwork.storage.errors import ConstraintViolation, StoreUnavailable, gave_way
from tickwork.wire import URL_PATTERN, Problem

log = get_logger("tickwork.api")

MEDIA_TYPE = "application/problem+json"
TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
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
    412: "Precondition failed",
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
    *,
    kind: str | None = None,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem answer; ``kind`` and ``title`` replace the status's own (a 429 that is
    a quota, not a rate), ``extra`` adds members (RFC 9457 extension members)."""
    body: dict[str, Any] = {
        "type": f"urn:tickwork:problem:{kind or TYPES.get(status, 'error')}",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_ABSENT = object()

OBJECT_ID_PATTERN = r"^[a-z]{1,16}_[0-9a-z]{26}$"
KEY_ID_PATTERN = r"^key_[0-9a-z]{26}$"
AUDIT_CURSOR_PATTERN = r"^aud_[0-9a-z]{26}$"
_SLUG_WORDS = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
# What each pattern of the API accepts, in words: a client is told what to send, never
# shown a regular expression. tests/api/test_errors_in_words.py checks every pattern of
# the OpenAPI document is here.
PATTERN_WORDS = {
    OBJECT_ID_PATTERN: "must be a tickwork id: a lower-case prefix, '_' and 26 lower-case "
    "letters or digits, e.g. trg_01jnv3x7k2q9c8d4f6g5h3j2kq",
    KEY_ID_PATTERN: "must be an API key id: 'key_' and 26 lower-case letters or digits",
    AUDIT_CURSOR_PATTERN: "must be the next_cursor of the previous page: 'aud_' and 26 "
    "lower-case letters or digits",
    SLUG_PATTERN: "must be " + _SLUG_WORDS,
    REF_PATTERN: "must be a ref name: 1 to 4 segments separated by '/', each "
    + _SLUG_WORDS
    + ", e.g. main or feature/reports",
    HANDLER_PATTERN: "must be a handler name: 1-100 letters, digits, '.', '_', ':' or '-'",
    URL_PATTERN: "must be an absolute http:// or https:// URL, without spaces",
    KEY_PATTERN: "must be 1-255 printable ASCII characters without spaces",
    ENV_SECRET_PATTERN: "must name an environment variable TICKWORK_TARGET_SECRET_<NAME>, "
    "NAME being 1-64 upper-case letters, digits or '_'",
    DAY_PATTERN: "must be a day, YYYY-MM-DD",
    RUN_AS_PATTERN: "must be 1-256 printable ASCII characters, without spaces at either end "
    "(it is sent as an HTTP header too)",
}
# Ids in a path name something tickwork made: one that cannot exist is not found.
_PATH_IDS = {
    "trigger_id": "trigger",
    "invocation_id": "invocation",
    "key_id": "API key",
    "backfill_id": "backfill",
}
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type"}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _message(err: Mapping[str, Any]) -> str:
    """A validation error in words a user understands."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type")
    if kind == "string_pattern_mismatch":
        if loc and loc[-1] == "cursor":
            return "must be the next_cursor of an earlier page, passed on unchanged"
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        return PATTERN_WORDS.get(pattern, "is not in a form this field accepts")
    if kind in _NOT_AN_OBJECT and loc == ("body",):
        return "must be a JSON object"
    return str(err.get("msg", "invalid"))


TENANT_ROUTES = "/api/v1/tenants/{tenant}"
# Why each status happens, where a route does not say it more precisely.
WHY = {
    400: "The request body is not valid JSON.",
    415: "The request body was not sent as JSON (Content-Type: application/json).",
    401: "The credentials are missing or not valid.",
    403: "The API key's scope does not allow this route (`required_scope`, `key_scope`).",
    404: "Not found, or it belongs to another tenant.",
    422: "A parameter or field is invalid; `errors` lists each one.",
    429: (
        "Too many failed authentications from this address (see `Retry-After`), or, "
        "on a route that creates or enables something, a tenant quota is reached "
        "(`type` ends with `:quota-exceeded`; `quota`, `limit`, `used`, `requested`)."
    ),
    503: "Admin routes are off: TICKWORK_ADMIN_TOKEN is not set.",
}


def _document(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers below make true: every error
    answer is problem+json. Each operation gets the statuses every route of its kind can
    give (401 where credentials are needed, 400 and 422 where there is input, 404 where
    the path names something, 503 on admin routes); a route declares its own further
    ones (409, 413)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare_problems(build())  # build() caches the document it returns
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_problems(spec: dict[str, Any]) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            statuses = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            schemes = {name for req in operation.get("security", []) for name in req}
            if schemes:
                statuses |= {401, 429}
            if path.startswith(TENANT_ROUTES):
                statuses.add(403)
            if "AdminToken" in schemes:
                statuses.add(503)
            if path.startswith(TENANT_ROUTES) or "{" in path:  # may name what is not there
                statuses.add(404)
            if "requestBody" in operation:
                statuses |= {400, 415, 422}
            if operation.get("parameters"):
                statuses.add(422)
            for status in sorted(statuses):
                response = responses.setdefault(str(status), {})
                if not response.get("description") or status == 422:
                    response["description"] = WHY.get(status, TITLES.get(status, "Error"))
                response["content"] = content
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


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
    _document(app)

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> JSONResponse:
        found = exc.errors if isinstance(exc, ValidationErrors) else [exc]
        # Too large anywhere: the request cannot be accepted as it is, whatever else.
        status = 413 if any(isinstance(e, PayloadTooLarge) for e in found) else 422
        errors = [{"field": e.field, "message": e.message} for e in found]
        detail = "; ".join(str(e) for e in found[:5])
        if len(found) > 5:
            detail += f"; and {len(found) - 5} more"
        return problem(status, detail, errors)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        scopes = {"required_scope": exc.required_scope, "key_scope": exc.key_scope}
        return problem(403, str(exc), extra=scopes)

    @app.exception_handler(QuotaExceeded)
    async def _quota(_: Request, exc: QuotaExceeded) -> JSONResponse:
        figures = {
            "quota": exc.quota,
            "limit": exc.limit,
            "used": exc.used,
            "requested": exc.requested,
        }
        return problem(429, str(exc), kind="quota-exceeded", title="Quota exceeded", extra=figures)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        if isinstance(exc, NameConflict):
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
            return problem(409, str(exc), errors)
        if isinstance(exc, InProgress):
            return problem(409, str(exc), headers={"Retry-After": str(exc.retry_after)})
        return problem(409, str(exc))

    @app.exception_handler(PreconditionFailed)
    async def _precondition(_: Request, exc: PreconditionFailed) -> JSONResponse:
        headers = {"ETag": exc.etag} if exc.etag else None
        return problem(412, str(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = exc.errors()
        for err in found:
            loc = tuple(err.get("loc", ()))
            if len(loc) == 2 and loc[0] == "path" and loc[1] in _PATH_IDS:
                return problem(404, f"{_PATH_IDS[loc[1]]} {err.get('input')!r} not found")
        content_type = request.headers.get("content-type", "")
        for err in found:
            if err.get("type") == "json_invalid":
                return problem(400, "the request body is not valid JSON")
            if (
                err.get("type") in _NOT_AN_OBJECT
                and tuple(err.get("loc", ())) == ("body",)
                and not _is_json(content_type)
            ):
                sent = f"it was sent as {content_type!r}" if content_type else "none was sent"
                return problem(
                    415,
                    "the request body must be JSON with the header Content-Type: "
                    f"application/json; {sent}",
                )
        errors = []
        for err in found:
            message = _message(err)
            errors.append({"field": _field(err.get("loc", ()), exc.body), "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(ConstraintViolation)
    async def _integrity(request: Request, exc: ConstraintViolation) -> JSONResponse:
        # A concurrent request changed what this one depends on (created the same
        # resource, deleted its parent) between its reads and its writes.
        log.info("request conflicted with a concurrent change", path=request.url.path)
        return problem(
            409, "the request conflicted with a concurrent change to the same resources; retry it"
        )

    @app.exception_handler(StoreUnavailable)
    async def _operational(request: Request, exc: StoreUnavailable) -> JSONResponse:
        if gave_way(exc):
            # Deadlock or serialization failure: the database chose this request to
            # give way to a concurrent one.
            return problem(
                409,
                "the request conflicted with a concurrent change to the same resources; retry it",
            )
        log.error("database unavailable", path=request.url.path, error=f"{type(exc.orig).__name__}")
        return problem(
            503, "the database is unavailable; retry shortly", headers={"Retry-After": "1"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        route, tenant = route_of(request.scope)
        log.error(
            "unhandled error",
            method=request.method,
            route=route,
            tenant=tenant,
            error=f"{type(exc).__name__}: {exc}",
            exc_info=exc,
        )
        mark_logged(exc)  # uvicorn, which sees it next, need not log it again
        return problem(500, "an internal error occurred; details are in the server log")
