"""HTTP conventions shared by routes: ``Idempotency-Key`` on creating POSTs, ``ETag`` and
``If-Match`` on triggers, agents and definitions (SPEC §10)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from tickwork.errors import Conflict, ValidationError
from tickwork.services import idempotency
from tickwork.services.context import Context

REPLAYED = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        max_length=idempotency.MAX_KEY,
        pattern=idempotency.KEY_PATTERN,
        description="makes the request safe to retry: the same key with the same request "
        "within 24 hours answers what the first one answered (with `Idempotent-Replayed: "
        "true`) and creates nothing more; the same key with another request answers 422. "
        "Keys are the tenant's own.",
    ),
]
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1024,
        description="the ETag of the version this change is based on (from a GET); when "
        "the resource is no longer that version the answer is 412 and nothing changes. "
        "`*` matches any existing version.",
    ),
]


def _canonical_body(raw: bytes) -> bytes:
    # The same JSON written with other spacing or key order is the same request.
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


async def idempotent_request(
    request: Request, key: IdempotencyKeyHeader = None
) -> idempotency.Request | None:
    """The request's key and fingerprint, or None when it was sent without a key."""
    if key is None:
        return None
    idempotency.check_key(key)
    digest = hashlib.sha256()
    query = sorted(request.query_params.multi_items())
    for part in (request.method, request.url.path, json.dumps(query)):
        digest.update(part.encode() + b"\n")
    digest.update(_canonical_body(await request.body()))
    return idempotency.Request(key, digest.hexdigest(), request.method, request.url.path)


Idempotent = Annotated[idempotency.Request | None, Depends(idempotent_request)]

Produced = tuple[int, BaseModel, dict[str, str]]


def render(model: BaseModel) -> bytes:
    """A model's JSON exactly as FastAPI writes an answer."""
    return json.dumps(
        model.model_dump(mode="json", by_alias=True),
        ensure_ascii=False,
        allow_nan=False,
        indent=None,
        separators=(",", ":"),
    ).encode("utf-8")


def respond(
    ctx: Context,
    tenant_id: str,
    request: idempotency.Request | None,
    produce: Callable[[], Produced],
    *,
    shown_once: str | None = None,
) -> Response:
    """Do the work of a creating POST at most once per key: ``produce()`` returns the
    status, the answer and its headers. ``shown_once`` names a member of the answer that
    must never be stored (a new API key's secret): a replay of such an answer is refused
    with 409 naming what was created."""
    if request is None:
        status, model, headers = produce()
        return _answer(render(model), status, headers)
    stored = idempotency.begin(ctx, tenant_id, request)
    if stored is not None:
        if shown_once is not None:
            _refuse_secret_replay(stored.body, shown_once)
        headers = {**stored.headers, REPLAYED: "true"}
        return _answer(stored.body.encode("utf-8"), stored.status, headers)
    try:
        status, model, headers = produce()
    except BaseException:
        idempotency.abandon(ctx, tenant_id, request)
        raise
    body = render(model)
    kept = body
    if shown_once is not None:
        document: dict[str, Any] = json.loads(body)
        document.pop(shown_once, None)
        kept = json.dumps(document, separators=(",", ":")).encode()
    idempotency.finish(
        ctx, tenant_id, request, idempotency.Answer(status, headers, kept.decode("utf-8"))
    )
    return _answer(body, status, headers)


def _refuse_secret_replay(body: str, shown_once: str) -> None:
    document = json.loads(body) if body else {}
    what = document.get("id", "it")
    raise Conflict(
        f"the first request with this Idempotency-Key created {what}; its {shown_once} is "
        "shown only once and is not kept, so the answer cannot be sent again: if it was "
        f"lost, revoke {what} and create another"
    )


def _answer(body: bytes, status: int, headers: dict[str, str]) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="application/json")


_KNOWN: dict[int, frozenset[str]] = {}
# Paging parameters are let through everywhere: clients page every list the same way,
# and a list answered whole (agents, refs, keys) is a page with no next one, never an
# answer that looks filtered when it is not.
_PAGING = frozenset({"limit", "cursor"})


def known_query(request: Request) -> None:
    """422 for a query parameter the route does not take: a misspelt filter
    (``?stauts=failed``) would otherwise be ignored, and the answer look filtered."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):  # pragma: no cover - every API route is one
        return
    known = _KNOWN.get(id(route))
    if known is None:
        known = _KNOWN[id(route)] = frozenset(_query_names(route.dependant))
    unknown = sorted(set(request.query_params) - known - _PAGING)
    if unknown:
        takes = ", ".join(sorted(known)) if known else "none"
        raise ValidationError(
            f"query.{unknown[0]}",
            f"is not a parameter of this route (it takes: {takes})",
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


KnownQuery = Depends(known_query)
"""Router dependency: refuse query parameters the route does not declare."""

ETAG_HEADER = {
    "ETag": {
        "description": "the version of what the answer shows; send it as `If-Match` with "
        "a change to make sure nobody changed it meanwhile",
        "schema": {"type": "string"},
    }
}
REPLAY_HEADER = {
    REPLAYED: {
        "description": "`true` when this is the stored answer to an earlier request with "
        "the same `Idempotency-Key`",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
PRECONDITION: dict[int | str, dict[str, Any]] = {
    412: {"description": "`If-Match` does not name the current version."}
}
