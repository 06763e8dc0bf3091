"""The client's core, against scripted answers (httpx.MockTransport): what is retried
and how long it waits, what is raised, what is sent. No server, no real waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tickwork.client import (
    ApiConnectionError,
    ApiError,
    AsyncClient,
    Client,
    ClientError,
    RetryPolicy,
)
from tickwork.client._async import client as async_module
from tickwork.client._sync import client as sync_module
from tickwork.wire import TriggerCreate, TriggerPatch

URL = "http://tickwork.example"
PROBLEM = {"content-type": "application/problem+json"}
TRIGGER: dict[str, Any] = {
    "id": "trg_01jnv3x7k2q9c8d4f6g5h3j2kq",
    "tenant": "default",
    "project": "p",
    "agent": "a",
    "ref": "main",
    "name": "t",
    "description": "",
    "enabled": True,
    "cron_expression": "0 9 * * *",
    "run_at": None,
    "timezone": "UTC",
    "payload": {},
    "message_template": None,
    "max_retries": 1,
    "retry_delay_seconds": 60,
    "timeout_seconds": 780,
    "catchup": "latest",
    "catchup_window_seconds": 3600,
    "overlap": "allow",
    "jitter_seconds": 0,
    "next_run_at": "2026-03-03T09:00:00Z",
    "last_error": None,
    "created_by": None,
    "created_at": "2026-03-02T09:00:00Z",
    "updated_at": "2026-03-02T09:00:00Z",
}

Answer = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers requests in turn; records each request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off waits, recorded instead of waited."""
    recorded: list[float] = []

    async def pause(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(sync_module, "blocking_pause", recorded.append)
    monkeypatch.setattr(async_module, "pause", pause)
    return recorded


def client(script: Script, **options: Any) -> Client:
    http = httpx.Client(transport=httpx.MockTransport(script))
    return Client(URL, "tw_key", project="p", http_client=http, **options)


def async_client(script: Script, **options: Any) -> AsyncClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    return AsyncClient(URL, "tw_key", project="p", http_client=http, **options)


def ok(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def problem(status: int, detail: str, **extra: Any) -> httpx.Response:
    headers = {**PROBLEM, **extra.pop("headers", {})}
    body = {
        "type": f"urn:tickwork:problem:{extra.pop('kind', 'x')}",
        "title": "T",
        "status": status,
    }
    return httpx.Response(status, json={**body, "detail": detail, **extra}, headers=headers)


# --- retries ---------------------------------------------------------------------------


def test_it_retries_a_503_with_back_off_and_the_same_idempotency_key(waits: list[float]) -> None:
    script = Script(problem(503, "database unavailable"), httpx.Response(502), ok(TRIGGER, 201))
    created = client(script).triggers.create("a", name="t", cron_expression="0 9 * * *")
    assert created.id == TRIGGER["id"]
    assert len(script.requests) == 3
    keys = {r.headers["idempotency-key"] for r in script.requests}
    assert len(keys) == 1
    assert keys.pop().startswith("tw-")
    assert len(waits) == 2
    assert 0.25 <= waits[0] <= 0.5  # the first back-off, less up to half of it
    assert 0.5 <= waits[1] <= 1.0


def test_each_call_gets_its_own_idempotency_key_unless_given_one(waits: list[float]) -> None:
    script = Script(ok(TRIGGER, 201), ok(TRIGGER, 201), ok(TRIGGER, 201))
    c = client(script)
    c.triggers.create("a", name="t", cron_expression="0 9 * * *")
    c.triggers.create("a", name="t", cron_expression="0 9 * * *")
    c.triggers.create("a", name="t", cron_expression="0 9 * * *", idempotency_key="deploy-42")
    first, second, third = (r.headers["idempotency-key"] for r in script.requests)
    assert first != second
    assert third == "deploy-42"


def test_reads_and_puts_carry_no_idempotency_key(waits: list[float]) -> None:
    script = Script(ok(TRIGGER), ok({"id": "p", "name": "p", "description": "",
                                     "created_at": "2026-03-02T09:00:00Z",
                                     "updated_at": "2026-03-02T09:00:00Z"}))  # fmt: skip
    c = client(script)
    c.triggers.get("a", TRIGGER["id"])
    c.projects.put(name="P")
    assert all("idempotency-key" not in r.headers for r in script.requests)


def test_a_429_with_retry_after_waits_as_told(waits: list[float]) -> None:
    script = Script(problem(429, "slow down", headers={"Retry-After": "2"}), ok(TRIGGER))
    client(script).triggers.get("a", TRIGGER["id"])
    assert waits == [2.0]


def test_retry_after_may_be_an_http_date(waits: list[float]) -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    script = Script(
        problem(503, "busy", headers={"Retry-After": format_datetime(later, usegmt=True)}),
        ok(TRIGGER),
    )
    client(script).triggers.get("a", TRIGGER["id"])
    assert 20 <= waits[0] <= 31


def test_a_quota_429_is_not_retried_and_carries_the_quota(waits: list[float]) -> None:
    answer = problem(
        429,
        "quota 'triggers' exceeded",
        kind="quota-exceeded",
        quota="triggers",
        limit=1,
        used=1,
        requested=1,
    )
    script = Script(answer)
    with pytest.raises(ApiError) as raised:
        client(script).triggers.create("a", name="t", cron_expression="0 9 * * *")
    error = raised.value
    assert (error.status, error.type) == (429, "urn:tickwork:problem:quota-exceeded")
    assert (error.quota, error.limit, error.used, error.requested) == ("triggers", 1, 1, 1)
    assert waits == []
    assert len(script.requests) == 1


def test_a_429_asking_for_a_long_wait_is_raised_with_it(waits: list[float]) -> None:
    script = Script(problem(429, "too many failures", headers={"Retry-After": "600"}))
    with pytest.raises(ApiError) as raised:
        client(script).projects.get()
    assert raised.value.retry_after == 600
    assert waits == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 500])
def test_client_errors_and_500_are_not_retried(waits: list[float], status: int) -> None:
    script = Script(problem(status, "no"))
    with pytest.raises(ApiError):
        client(script).projects.get()
    assert len(script.requests) == 1


def test_connection_failures_are_retried_then_raised(waits: list[float]) -> None:
    refused = httpx.ConnectError("connection refused")
    script = Script(refused, refused, refused)
    with pytest.raises(ApiConnectionError) as raised:
        client(script, retries=2).projects.get()
    assert len(script.requests) == 3
    assert len(waits) == 2
    assert "GET http://tickwork.example/api/v1/tenants/default/projects/p" in str(raised.value)
    assert "3 times" in str(raised.value)
    assert "connection refused" in str(raised.value)


def test_a_lost_answer_is_retried(waits: list[float]) -> None:
    script = Script(httpx.RemoteProtocolError("Server disconnected"), ok(TRIGGER))
    assert client(script).triggers.get("a", TRIGGER["id"]).name == "t"


def test_retries_zero_sends_once(waits: list[float]) -> None:
    script = Script(httpx.Response(503))
    with pytest.raises(ApiError):
        client(script, retries=0).projects.get()
    assert len(script.requests) == 1


def test_the_back_off_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(retries=10, backoff=1.0, max_backoff=4.0)
    for retry, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (9, 4.0)]:
        for _ in range(50):
            assert full / 2 <= policy.wait(retry) <= full
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(retries=-1)


def test_the_async_client_retries_the_same_way(waits: list[float]) -> None:
    script = Script(httpx.ReadTimeout("slow"), problem(504, "gateway"), ok(TRIGGER, 201))

    async def scenario() -> str:
        async with async_client(script) as c:
            return (await c.triggers.create("a", name="t", cron_expression="0 9 * * *")).id

    assert asyncio.run(scenario()) == TRIGGER["id"]
    assert len({r.headers["idempotency-key"] for r in script.requests}) == 1
    assert len(waits) == 2


# --- errors ----------------------------------------------------------------------------


def test_a_problem_becomes_an_api_error_with_its_fields(waits: list[float]) -> None:
    errors = [{"field": "cron_expression", "message": "minute: 61 is out of range 0-59"}]
    script = Script(problem(422, "cron_expression: minute: 61 ...", errors=errors, extra=1))
    with pytest.raises(ApiError) as raised:
        client(script).triggers.create("a", name="t", cron_expression="61 * * * *")
    error = raised.value
    assert error.status == 422
    assert error.title == "T"
    assert error.errors[0].field == "cron_expression"
    assert error.body["extra"] == 1  # members this version does not know are kept
    assert error.method == "POST"
    assert error.url.endswith("/agents/a/scheduled-triggers")
    assert str(error) == "422 T: cron_expression: minute: 61 ..."


def test_an_error_that_is_not_a_problem_is_still_an_api_error(waits: list[float]) -> None:
    page = httpx.Response(502, text="<html><body>Bad   gateway</body></html>")
    script = Script(page, page, page, page)
    with pytest.raises(ApiError) as raised:
        client(script).projects.get()
    error = raised.value
    assert (error.status, error.type, error.title) == (502, "about:blank", "Bad Gateway")
    assert error.detail == "<html><body>Bad gateway</body></html>"


def test_a_success_that_is_not_json_or_not_the_model_is_a_client_error(
    waits: list[float],
) -> None:
    with pytest.raises(ClientError, match="not JSON"):
        client(Script(httpx.Response(200, text="<html>"))).projects.get()
    with pytest.raises(ClientError, match="not a ProjectOut"):
        client(Script(ok({"id": 1}))).projects.get()
    with pytest.raises(ClientError, match="not a page"):
        list(client(Script(ok({"nope": []}))).projects.list())


# --- requests --------------------------------------------------------------------------


def sent(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def test_bodies_are_models_mappings_or_fields(waits: list[float]) -> None:
    script = Script(*[ok(TRIGGER, 201)] * 3, ok(TRIGGER))
    c = client(script)
    run_at = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    c.triggers.create("a", TriggerCreate(name="t", run_at=run_at))
    c.triggers.create("a", {"name": "t", "payload": {"x": 1}}, timezone="Europe/Berlin")
    c.triggers.create("a", name="t", run_at=run_at)
    c.triggers.update("a", TRIGGER["id"], TriggerPatch(timezone=None))
    bodies = [sent(r) for r in script.requests]
    assert bodies[0] == {"name": "t", "run_at": "2026-03-08T07:00:00Z"}  # only what was set
    assert bodies[1] == {"name": "t", "payload": {"x": 1}, "timezone": "Europe/Berlin"}
    assert bodies[2] == {"name": "t", "run_at": "2026-03-08T07:00:00Z"}
    assert bodies[3] == {"timezone": None}  # an explicit null restores the default


def test_requests_carry_the_key_and_go_to_the_tenant_and_project(waits: list[float]) -> None:
    script = Script(ok(TRIGGER), ok(TRIGGER))
    c = client(script, tenant="acme")
    c.triggers.get("a", TRIGGER["id"])
    c.triggers.get("b", TRIGGER["id"], project="other")
    first, second = script.requests
    assert first.headers["authorization"] == "Bearer tw_key"
    assert first.headers["user-agent"].startswith("tickwork-python")
    assert (
        first.url.path
        == f"/api/v1/tenants/acme/projects/p/agents/a/scheduled-triggers/{TRIGGER['id']}"
    )
    assert second.url.path.startswith("/api/v1/tenants/acme/projects/other/agents/b/")


def test_filters_become_query_parameters(waits: list[float]) -> None:
    script = Script(ok({"items": [], "next_cursor": None}))
    since = datetime(2026, 3, 1, tzinfo=UTC)
    found = client(script).invocations.list(
        status=["failed", "cancelled"], from_=since, to="2026-03-02T00:00:00Z", page_size=7
    )
    assert list(found) == []
    query = script.requests[0].url.params
    assert query.get_list("status") == ["failed", "cancelled"]
    assert query["from"] == "2026-03-01T00:00:00+00:00"
    assert query["to"] == "2026-03-02T00:00:00Z"
    assert query["limit"] == "7"


def test_a_list_follows_the_cursor_to_the_last_page(waits: list[float]) -> None:
    project = {"name": "n", "description": "", "created_at": "2026-03-02T09:00:00Z",
               "updated_at": "2026-03-02T09:00:00Z"}  # fmt: skip
    script = Script(
        ok({"items": [{**project, "id": "a"}, {**project, "id": "b"}], "next_cursor": "b"}),
        ok({"items": [{**project, "id": "c"}], "next_cursor": None}),
    )
    assert [p.id for p in client(script).projects.list(page_size=2)] == ["a", "b", "c"]
    assert "cursor" not in script.requests[0].url.params
    assert script.requests[1].url.params["cursor"] == "b"


def test_a_plain_list_answer_is_one_page(waits: list[float]) -> None:
    ref = {"name": "main", "revision": 1, "created_at": "2026-03-02T09:00:00Z",
           "updated_at": "2026-03-02T09:00:00Z"}  # fmt: skip
    script = Script(ok([ref]))
    assert [r.name for r in client(script).refs.list()] == ["main"]


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_names_that_would_address_another_resource_are_refused(bad: str) -> None:
    script = Script()
    c = client(script)
    with pytest.raises(ValueError, match="non-empty name"):
        c.agents.delete(bad)
    with pytest.raises(ValueError, match="non-empty name"):
        c.triggers.get("a", bad)
    assert script.requests == []


def test_names_are_percent_encoded(waits: list[float]) -> None:
    script = Script(ok(TRIGGER), httpx.Response(204))
    c = client(script)
    c.triggers.get("a/b?c", TRIGGER["id"])
    c.refs.delete("feature/login")
    assert script.requests[0].url.raw_path.startswith(
        b"/api/v1/tenants/default/projects/p/agents/a%2Fb%3Fc/"
    )
    assert script.requests[1].url.path == "/api/v1/tenants/default/projects/p/refs/feature/login"


def test_a_client_needs_a_url_a_key_and_for_project_routes_a_project() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        Client("tickwork.example", "k")
    with pytest.raises(ValueError, match="api_key is required"):
        Client(URL, "")
    with Client(URL, "k") as c:
        assert c.tenant == "default"
        with pytest.raises(ValueError, match="no project"):
            c.projects.get()
        with pytest.raises(ValueError, match="page_size"):
            c.projects.list(page_size=500)


def test_low_level_requests_share_the_retries(waits: list[float]) -> None:
    script = Script(httpx.Response(503), ok({"tenant": "default"}))
    assert client(script).request("get", "/api/v1/tenants/default/quotas") == {"tenant": "default"}
