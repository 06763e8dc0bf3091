"""Safe retries of creating requests (SPEC §10): the same ``Idempotency-Key`` and request
within 24 hours answer the first answer again and create nothing more; another request
with the key is 422; keys are per tenant; concurrent requests with one key create one
thing; a failed request gives its key up; expired keys are pruned."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, field_error, make_scope, problem
from tickwork.errors import Conflict
from tickwork.services import idempotency, triggers
from tickwork.services.context import Context
from tickwork.testing import FakeClock

BODY = {"name": "report", "cron_expression": "*/15 * * * *"}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def trigger_names(api: TestClient, scope: Scope) -> list[str]:
    return [t["name"] for t in api.get(scope.triggers).json()["items"]]


def stored_keys(ctx: Context) -> int:
    with ctx.db.read() as tx:
        return tx.count_idempotency_keys()


def test_the_same_key_and_request_answer_the_first_answer_and_create_one_trigger(
    api: TestClient, scope: Scope
) -> None:
    first = api.post(scope.triggers, json=BODY, headers=key("k-1"))
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = api.post(scope.triggers, json=BODY, headers=key("k-1"))
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["content-type"] == "application/json"
    assert trigger_names(api, scope) == ["report"]


def test_the_same_json_written_otherwise_is_the_same_request(api: TestClient, scope: Scope) -> None:
    first = api.post(scope.triggers, json=BODY, headers=key("k-1"))
    spaced = '{ "cron_expression" : "*/15 * * * *",\n  "name": "report" }'
    again = api.post(
        scope.triggers,
        content=spaced,
        headers=key("k-1") | {"Content-Type": "application/json"},
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


@pytest.mark.parametrize(
    "change",
    [
        {"json": BODY | {"name": "other"}},
        {"json": BODY, "params": {"ref": "feature/x"}},
    ],
    ids=["another body", "another query"],
)
def test_the_same_key_with_another_request_is_422_and_creates_nothing(
    api: TestClient, scope: Scope, change: dict[str, Any]
) -> None:
    api.put(scope.agent_url, params={"ref": "feature/x"}, json={"target": PYTHON})
    api.post(scope.triggers, json=BODY, headers=key("k-1"))
    error = field_error(api.post(scope.triggers, headers=key("k-1"), **change))
    assert error["field"] == "header.Idempotency-Key"
    assert "another request" in error["message"]
    assert "new key" in error["message"]
    assert trigger_names(api, scope) == ["report"]
    listed = api.get(scope.triggers, params={"ref": "feature/x"}).json()["items"]
    assert listed == []


def test_the_same_key_on_another_route_is_422(api: TestClient, scope: Scope) -> None:
    created = api.post(scope.triggers, json=BODY, headers=key("k-1")).json()
    response = api.post(scope.trigger(created["id"]) + "/run", headers=key("k-1"))
    assert (
        "POST /api/v1/tenants/acme/projects/p/agents/a/scheduled-triggers"
        in (field_error(response)["message"])
    )
    assert api.get(scope.invocations(created["id"])).json()["items"] == []


PYTHON = {"type": "python", "handler": "agents.run"}


def test_without_a_key_every_request_is_its_own(api: TestClient, scope: Scope) -> None:
    assert api.post(scope.triggers, json=BODY).status_code == 201
    problem(api.post(scope.triggers, json=BODY), 409)  # the name is taken, not a replay


def test_run_now_and_rerun_are_made_once_per_key(api: TestClient, scope: Scope) -> None:
    trigger = api.post(scope.triggers, json=BODY).json()
    run = scope.trigger(trigger["id"]) + "/run"
    first = api.post(run, headers=key("run-1"))
    again = api.post(run, headers=key("run-1"))
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    other = api.post(run, headers=key("run-2"))
    assert other.json()["id"] != first.json()["id"]
    invocation = first.json()["id"]
    api.post(scope.invocation(trigger["id"], invocation) + "/cancel")
    rerun = scope.invocation(trigger["id"], invocation) + "/rerun"
    reruns = [api.post(rerun, headers=key("rerun-1")) for _ in range(3)]
    assert {r.status_code for r in reruns} == {202}
    assert len({r.json()["id"] for r in reruns}) == 1
    listed = api.get(scope.invocations(trigger["id"])).json()["items"]
    assert len(listed) == 3  # two runs and one rerun


def test_a_new_api_key_is_made_once_and_its_secret_is_never_stored_or_sent_again(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    url = f"{scope.tenant_url}/api-keys"
    first = api.post(url, json={"name": "ci"}, headers=key("key-1"))
    assert first.status_code == 201
    secret = first.json()["key"]
    again = api.post(url, json={"name": "ci"}, headers=key("key-1"))
    body = problem(again, 409)
    assert first.json()["id"] in body["detail"]
    assert "shown only once" in body["detail"]
    assert secret not in again.text
    with ctx.db.read() as tx:
        row = tx.idempotency_key("acme", "key-1")
    assert row is not None
    assert row.body is not None
    assert secret not in row.body
    assert [k["name"] for k in api.get(url).json()] == ["tests", "ci"]


def test_the_admin_route_for_keys_honours_the_key_too(
    client: TestClient, ctx: Context, acme: TenantKey
) -> None:
    ctx.settings = ctx.settings.with_(admin_token="admin-secret")
    admin = TestClient(client.app, headers={"Authorization": "Bearer admin-secret"})
    url = f"/api/v1/admin/tenants/{acme.tenant}/api-keys"
    first = admin.post(url, json={"name": "ops"}, headers=key("admin-1"))
    assert first.status_code == 201, first.text
    problem(admin.post(url, json={"name": "ops"}, headers=key("admin-1")), 409)
    missing = admin.post("/api/v1/admin/tenants/nosuch/api-keys", headers=key("admin-2"))
    problem(missing, 404)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("x" * 256, "at most 255 characters"),
        ("two words", "printable ASCII characters without spaces"),
        ("", "printable ASCII characters without spaces"),
        ("é", "printable ASCII characters without spaces"),
    ],
    ids=["too long", "a space", "empty", "not ASCII"],
)
def test_a_key_that_cannot_be_one_is_422_naming_the_header(
    api: TestClient, scope: Scope, value: str, says: str
) -> None:
    response = api.post(
        scope.triggers,
        json=BODY,
        headers={b"Idempotency-Key": value.encode("utf-8")},
    )
    error = field_error(response)
    assert error["field"] == "header.Idempotency-Key"
    assert says in error["message"]
    assert trigger_names(api, scope) == []


def test_a_huge_key_is_refused_without_being_stored(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    response = api.post(scope.triggers, json=BODY, headers=key("k" * 8000))
    assert field_error(response)["field"] == "header.Idempotency-Key"
    assert stored_keys(ctx) == 0


def test_a_key_at_the_limit_is_accepted(api: TestClient, scope: Scope) -> None:
    longest = "~" * 255
    assert api.post(scope.triggers, json=BODY, headers=key(longest)).status_code == 201
    assert api.post(scope.triggers, json=BODY, headers=key(longest)).headers[
        "Idempotent-Replayed"
    ] == ("true")


def test_another_tenant_with_the_same_key_gets_its_own_answer_never_this_one(
    client_for: Callable[[TenantKey], TestClient], acme: TenantKey, rival: TenantKey
) -> None:
    ours, theirs = client_for(acme), client_for(rival)
    our_scope, their_scope = make_scope(ours, acme.tenant), make_scope(theirs, rival.tenant)
    secret_payload = {"account": "acme-only"}
    mine = ours.post(
        our_scope.triggers, json=BODY | {"payload": secret_payload}, headers=key("shared")
    )
    assert mine.status_code == 201
    # The same key and the same body, sent by the other tenant to its own project.
    same = theirs.post(
        their_scope.triggers, json=BODY | {"payload": secret_payload}, headers=key("shared")
    )
    assert same.status_code == 201
    assert "Idempotent-Replayed" not in same.headers
    assert same.json()["tenant"] == "rival"
    assert same.json()["id"] != mine.json()["id"]
    # Aimed at this tenant's route, the other tenant's key is 404, and no replay.
    stolen = theirs.post(our_scope.triggers, json=BODY, headers=key("shared"))
    problem(stolen, 404)
    assert mine.json()["id"] not in stolen.text
    assert "acme-only" not in stolen.text
    # Another body under the same key: for the other tenant it is simply a new request.
    other = theirs.post(their_scope.triggers, json=BODY | {"name": "x"}, headers=key("shared2"))
    assert other.status_code == 201
    assert ours.post(our_scope.triggers, json=BODY | {"name": "x"}, headers=key("shared2")).json()[
        "tenant"
    ] == ("acme")


def test_a_request_that_fails_gives_its_key_up(api: TestClient, scope: Scope, ctx: Context) -> None:
    bad = BODY | {"cron_expression": "61 * * * *"}
    assert api.post(scope.triggers, json=bad, headers=key("k-1")).status_code == 422
    # Validation refused it before the key was claimed; a refusal found later also
    # gives it up: the agent does not exist yet.
    ghost = scope.project_url + "/agents/ghost/scheduled-triggers"
    problem(api.post(ghost, json=BODY, headers=key("k-2")), 404)
    assert stored_keys(ctx) == 0
    api.put(scope.project_url + "/agents/ghost", json={"target": PYTHON})
    assert api.post(ghost, json=BODY, headers=key("k-2")).status_code == 201


def test_keys_last_24_hours_then_are_pruned(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    first = api.post(scope.triggers, json=BODY, headers=key("k-1")).json()
    clock.advance(hours=23, minutes=59)
    again = api.post(scope.triggers, json=BODY, headers=key("k-1"))
    assert again.json()["id"] == first["id"]
    clock.advance(minutes=1)
    # Expired: the key names a new request (the name is taken: 409, not a replay).
    problem(api.post(scope.triggers, json=BODY, headers=key("k-1")), 409)
    assert stored_keys(ctx) == 0
    for n in range(3):
        api.post(scope.triggers, json=BODY | {"name": f"t{n}"}, headers=key(f"old-{n}"))
    assert stored_keys(ctx) == 3
    clock.advance(hours=25)
    api.post(scope.triggers, json=BODY | {"name": "new"}, headers=key("new"))
    assert stored_keys(ctx) == 1  # the expired ones went as the new one was claimed


def test_pruning_is_bounded_per_request(ctx: Context, clock: FakeClock, acme: TenantKey) -> None:
    now = clock.now()
    with ctx.db.write() as tx:
        for n in range(idempotency.PRUNE_BATCH + 5):
            tx.claim_idempotency_key(
                acme.tenant,
                f"k-{n}",
                fingerprint="f",
                method="POST",
                path="/",
                now=now,
                expires_at=now + timedelta(seconds=1),
            )
    clock.advance(seconds=2)
    with ctx.db.write() as tx:
        pruned = tx.prune_idempotency_keys(clock.now(), idempotency.PRUNE_BATCH)
        assert pruned == idempotency.PRUNE_BATCH
        assert tx.count_idempotency_keys() == 5


# --- concurrency -------------------------------------------------------------------------


@pytest.fixture
def held_create(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Hold the first create inside its work until released: (started, release)."""
    started, release = threading.Event(), threading.Event()
    real = triggers.create_trigger

    def slow(*args: Any, **kwargs: Any) -> Any:
        if not started.is_set():
            started.set()
            assert release.wait(10), "the test never released the first request"
        return real(*args, **kwargs)

    monkeypatch.setattr(triggers, "create_trigger", slow)
    yield started, release
    release.set()


def test_a_request_while_the_first_with_its_key_runs_is_409_then_gets_its_answer(
    api: TestClient, scope: Scope, held_create: tuple[threading.Event, threading.Event]
) -> None:
    started, release = held_create
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.post, scope.triggers, json=BODY, headers=key("k-1"))
        assert started.wait(10)
        during = api.post(scope.triggers, json=BODY, headers=key("k-1"))
        body = problem(during, 409)
        assert "still being handled" in body["detail"]
        assert during.headers["Retry-After"] == "1"
        release.set()
        created = first.result(timeout=10)
    assert created.status_code == 201
    after = api.post(scope.triggers, json=BODY, headers=key("k-1"))
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.json()["id"] == created.json()["id"]
    assert trigger_names(api, scope) == ["report"]


def test_concurrent_requests_with_one_key_create_one_trigger(api: TestClient, scope: Scope) -> None:
    barrier = threading.Barrier(8)

    def send(_: int) -> Any:
        barrier.wait(10)
        return api.post(scope.triggers, json=BODY, headers=key("race"))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    created = [a for a in answers if a.status_code == 201]
    assert created
    assert {a.json()["id"] for a in created} == {created[0].json()["id"]}
    for answer in answers:
        if answer.status_code != 201:
            assert "still being handled" in problem(answer, 409)["detail"]
    assert sum("Idempotent-Replayed" not in a.headers for a in created) == 1
    assert trigger_names(api, scope) == ["report"]


def test_a_first_request_that_never_recorded_its_answer_is_not_done_twice(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    # Its process stopped between its work and its answer: the key stays claimed.
    request = idempotency.Request("k-lost", "f" * 64, "POST", scope.triggers)
    assert idempotency.begin(ctx, "acme", request) is None
    clock.advance(seconds=idempotency.IN_FLIGHT.total_seconds())
    with pytest.raises(Conflict, match="whether it took effect is unknown"):
        idempotency.begin(ctx, "acme", request)
