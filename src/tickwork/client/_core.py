"""The client's transport-agnostic core: request building, retry decisions, error
mapping and page reading, shared by :class:`~tickwork.client.Client` and
:class:`~tickwork.client.AsyncClient`, which differ only in how they send and wait.

One module, longer than most: everything the two clients share is here, so that the
generated synchronous client stays a plain copy of the asynchronous one."""

from __future__ import annotations

import contextlib
import json
import random
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from tickwork.client.errors import ApiError, ClientError
from tickwork.clock import SystemClock
from tickwork.wire import Problem

M = TypeVar("M", bound=BaseModel)

DEFAULT_TENANT = "default"
"""The tenant a client works in unless told otherwise: the one ``tickwork serve`` creates
on the first start of an empty embedded database."""
DEFAULT_TIMEOUT = 30.0
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
PROBLEM_MEDIA_TYPE = "application/problem+json"
Body = BaseModel | Mapping[str, Any] | None


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before sending a request again.

    Retried: connection failures and answers lost on the way (the request may or may not
    have reached the server), ``502``, ``503`` and ``504``, and ``429`` when the server
    says when to come back (``Retry-After`` of at most ``max_retry_after`` seconds). A
    quota's ``429`` carries no ``Retry-After`` and is not retried: waiting does not help.
    The n-th retry waits ``backoff × 2^(n-1)`` seconds, at most ``max_backoff``, less a
    random part of up to half of it (so that many clients do not retry in step), or what
    ``Retry-After`` asks for. Every retry of a POST carries the first try's
    ``Idempotency-Key``.
    """

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({502, 503, 504})

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must not be negative")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("backoff, max_backoff and max_retry_after must not be negative")

    def wait(self, retry: int) -> float:
        """The back-off before retry number ``retry`` (1 for the first)."""
        full = min(self.backoff * 2 ** (retry - 1), self.max_backoff)
        return float(full * (1 - random.random() / 2))

    def after_response(self, retry: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retry number ``retry`` after this answer, or None to
        accept it as it is."""
        if retry > self.retries:
            return None
        status = response.status_code
        after = retry_after(response)
        if status == 429:
            return after if after is not None and after <= self.max_retry_after else None
        if status in self.statuses:
            if after is not None:
                return min(after, self.max_retry_after)
            return self.wait(retry)
        return None

    def after_error(self, retry: int, error: httpx.HTTPError) -> float | None:
        """Seconds to wait before retry number ``retry`` after a transport failure, or
        None when retrying cannot help."""
        if retry > self.retries or not is_transient(error):
            return None
        return self.wait(retry)


def is_transient(error: httpx.HTTPError) -> bool:
    """Connection failures, timeouts and connections closed before the answer: the
    network, or a server starting or stopping. Not a malformed URL or an unsupported
    scheme, which fail the same way every time."""
    return isinstance(
        error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - SystemClock().now()).total_seconds())


def user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"tickwork-python/{version('tickwork')}"
    except PackageNotFoundError:  # a source tree that was never installed
        return "tickwork-python"


def retry_policy(retries: int | RetryPolicy) -> RetryPolicy:
    return retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries=retries)


# --- requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One API request, before it is sent: what the retry loop sends again as it is."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotency_key: str | None = None
    if_match: str | None = None

    def with_params(self, **params: Any) -> Call:
        return replace(self, params={**self.params, **params})


def creating(method: str, path: str, body: Any = None, key: str | None = None) -> Call:
    """A POST that creates something: it carries an ``Idempotency-Key`` (``key``, else a
    new one), the same on every retry."""
    return Call(method, path, json=body, idempotency_key=key or f"tw-{uuid.uuid4()}")


def params(**values: Any) -> dict[str, Any]:
    """Query parameters, leaving out those not given; instants as ISO-8601 text."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{name} must be an aware datetime (with a UTC offset)")
            value = value.isoformat()
        elif isinstance(value, list | tuple):
            value = [str(v) for v in value]
        out[name] = value
    return out


def body(given: Body, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A request body from a wire model (the fields it was given, as JSON), a mapping,
    and keyword fields (which win). The server validates it, and says what is wrong in
    its own words."""
    if isinstance(given, BaseModel):
        out: dict[str, Any] = given.model_dump(mode="json", exclude_unset=True)
    elif given is None:
        out = {}
    elif isinstance(given, Mapping):
        out = dict(given)
    else:
        raise TypeError(f"a body must be a wire model or a mapping, not {type(given).__name__}")
    out.update(fields)
    jsonable: dict[str, Any] = to_jsonable_python(out)
    return jsonable


def page_size(size: int) -> int:
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {size}")
    return size


def segment(value: str, what: str) -> str:
    """One path segment, percent-encoded. An empty, ``.`` or ``..`` value is refused
    here: sent, it would address another resource (``/agents/..`` is the project)."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise ValueError(f"{what} must be a non-empty name, got {value!r}")
    return quote(value, safe="")


class Paths:
    """The URL paths of one tenant and project."""

    def __init__(self, tenant: str, project: str | None) -> None:
        self.tenant = f"/api/v1/tenants/{segment(tenant, 'tenant')}"
        self._project = project

    @property
    def project(self) -> str:
        if self._project is None:
            raise ValueError("no project: pass project=... or create the client with project=...")
        return f"{self.tenant}/projects/{segment(self._project, 'project')}"

    def ref(self, ref: str) -> str:
        # A ref is a branch name; its slashes stay, each segment is encoded.
        parts = [segment(part, "ref segment") for part in ref.split("/")]
        return f"{self.project}/refs/{'/'.join(parts)}"

    def agent(self, agent: str) -> str:
        return f"{self.project}/agents/{segment(agent, 'agent')}"

    def triggers(self, agent: str) -> str:
        return f"{self.agent(agent)}/scheduled-triggers"

    def trigger(self, agent: str, trigger_id: str) -> str:
        return f"{self.triggers(agent)}/{segment(trigger_id, 'trigger_id')}"

    def invocation(self, agent: str, trigger_id: str, invocation_id: str) -> str:
        inv = segment(invocation_id, "invocation_id")
        return f"{self.trigger(agent, trigger_id)}/invocations/{inv}"


# --- answers ---------------------------------------------------------------------------


def api_error(response: httpx.Response) -> ApiError:
    """The error an answer of status 400 or above stands for."""
    request = response.request
    data: Any = None
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        data = response.json()
    status = response.status_code
    title = _title(status)
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        try:
            problem = Problem.model_validate({"title": title, "status": status, **data})
        except ValidationError:
            problem = None
        if problem is not None:
            return ApiError(
                problem,
                method=request.method,
                url=str(request.url),
                body=data,
                retry_after=retry_after(response),
            )
    text = " ".join(response.text.split())[:200] if data is None else json.dumps(data)[:200]
    problem = Problem(type="about:blank", title=title, status=status, detail=text or None)
    return ApiError(
        problem, method=request.method, url=str(request.url), retry_after=retry_after(response)
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def answer(response: httpx.Response) -> Any:
    """The JSON of a successful answer (None for 204), or the error it stands for."""
    if response.status_code >= 400:
        raise api_error(response)
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise ClientError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code} with a body that is not JSON"
        ) from None


def model(kind: type[M], data: Any, response: httpx.Response) -> M:
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise ClientError(
            f"{response.request.method} {response.request.url} answered with a body that is "
            f"not a {kind.__name__}: {exc.errors()[0].get('msg', exc)}"
        ) from None


# --- versions (ETag and If-Match) ---------------------------------------------------------

IfMatch = str | BaseModel | None
"""What ``if_match=`` takes: an ETag, or an object the client answered with one."""
# The ETag each answer came with, by the id of the object made from it; an entry goes
# when its object does. (Models are neither hashable nor meant to carry it as a field:
# the API's schemas are the client's, unchanged.)
_etags: dict[int, str] = {}


def tagged(made: M, response: httpx.Response) -> M:
    """``made``, remembering the ETag of the answer it was made from, if any."""
    tag = response.headers.get("etag")
    if tag:
        key = id(made)
        _etags[key] = tag
        weakref.finalize(made, _etags.pop, key, None)
    return made


def etag(obj: BaseModel) -> str | None:
    """The ETag of the answer the client made ``obj`` from: triggers, agents and
    definitions got, created or changed one at a time have one (the items of a list do
    not); None otherwise."""
    return _etags.get(id(obj))


def if_match(value: IfMatch) -> str | None:
    """The ``If-Match`` header for ``if_match=``."""
    if value is None or isinstance(value, str):
        return value
    tag = etag(value)
    if tag is None:
        raise ValueError(
            f"this {type(value).__name__} came with no ETag (an item of a list has none): "
            "get it on its own first, or pass the ETag itself"
        )
    return tag


def page(data: Any) -> tuple[list[Any], str | None]:
    """The items of a page and the cursor of the next one. A route that answers a plain
    JSON list (agents, refs and keys, until they are paginated too) is one page."""
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        cursor = data.get("next_cursor")
        return data["items"], cursor if isinstance(cursor, str) and cursor else None
    raise ClientError("the server answered a list request with something that is not a page")


@dataclass(frozen=True)
class Config:
    """What every request of one client shares."""

    base_url: str
    headers: Mapping[str, str]
    tenant: str
    project: str | None
    timeout: httpx.Timeout
    retry: RetryPolicy

    @classmethod
    def of(
        cls,
        url: str,
        api_key: str,
        *,
        tenant: str | None,
        project: str | None,
        timeout: float | httpx.Timeout | None,
        retries: int | RetryPolicy,
        headers: Mapping[str, str] | None,
        user_agent: str,
    ) -> Config:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not api_key:
            raise ValueError("api_key is required: a key of the tenant (tickwork keys create)")
        return cls(
            base_url=url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": f"application/json, {PROBLEM_MEDIA_TYPE}",
                "User-Agent": user_agent,
                **(headers or {}),
            },
            tenant=tenant or DEFAULT_TENANT,
            project=project,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            retry=retry_policy(retries),
        )

    def paths(self, project: str | None = None) -> Paths:
        return Paths(self.tenant, project or self.project)

    def request_args(self, call: Call) -> dict[str, Any]:
        headers = dict(self.headers)
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        if call.if_match is not None:
            headers["If-Match"] = call.if_match
        args: dict[str, Any] = {
            "method": call.method,
            "url": self.base_url + call.path,
            "params": dict(call.params),
            "headers": headers,
            "timeout": self.timeout,
        }
        if call.json is not None:
            args["json"] = call.json
        return args


def unreachable(call: Call, config: Config, error: httpx.HTTPError, tries: int) -> str:
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    times = "once" if tries == 1 else f"{tries} times"
    return f"{call.method} {config.base_url}{call.path} failed ({times}): {what}"
